package controller

import (
	"time"

	"github.com/plinthos/plinth/internal/backoff"
)

// Restart backoff of failed controllers.
const (
	// InitialBackoff is the wait before the first restart.
	InitialBackoff = 100 * time.Millisecond
	// MaxBackoff caps the wait, which doubles after each failure in a row.
	MaxBackoff = 30 * time.Second
	// BackoffResetAfter is how long a run must last for the wait to start over from
	// InitialBackoff.
	BackoffResetAfter = time.Minute
)

// restartBackoff computes restart delays.
type restartBackoff struct {
	waits *backoff.Doubling
}

// delay returns how long to wait after a run that lasted ranFor failed.
func (b *restartBackoff) delay(ranFor time.Duration) time.Duration {
	if b.waits == nil {
		b.waits = backoff.New(InitialBackoff, MaxBackoff)
	} else if ranFor >= BackoffResetAfter {
		b.waits.Reset()
	}
	return b.waits.Next()
}
