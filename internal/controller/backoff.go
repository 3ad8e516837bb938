package controller

import "time"

// Restart backoff of failed controllers.
const (
	// InitialBackoff is the wait before the first restart.
	InitialBackoff = 100 * time.Millisecond
	// BackoffFactor multiplies the wait after each failure in a row.
	BackoffFactor = 2
	// MaxBackoff caps the wait.
	MaxBackoff = 30 * time.Second
	// BackoffResetAfter is how long a run must last for the wait to start over from
	// InitialBackoff.
	BackoffResetAfter = time.Minute
)

// backoff computes restart delays.
type backoff struct {
	next time.Duration
}

// delay returns how long to wait after a run that lasted ranFor failed.
func (b *backoff) delay(ranFor time.Duration) time.Duration {
	if b.next == 0 || ranFor >= BackoffResetAfter {
		b.next = InitialBackoff
	}
	d := b.next
	b.next = min(b.next*BackoffFactor, MaxBackoff)
	return d
}
