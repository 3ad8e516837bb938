// Package backoff computes the waits between tries of something that fails: the first
// wait is short, and each failure in a row doubles it, up to a cap.
package backoff

import "time"

// Doubling is a wait that doubles after each use, from Initial up to Max. The zero value
// is not usable: build it with New.
type Doubling struct {
	initial, max time.Duration
	next         time.Duration
}

// New returns a Doubling that waits initial first, then twice as long each time, never
// longer than limit (a limit below initial is taken as initial).
func New(initial, limit time.Duration) *Doubling {
	return &Doubling{initial: initial, max: max(initial, limit), next: initial}
}

// Next returns the wait after one more failure in a row, and doubles the one after.
func (d *Doubling) Next() time.Duration {
	w := d.next
	d.next = min(2*d.next, d.max)
	return w
}

// Reset starts the waits over from the initial one (after a success, say).
func (d *Doubling) Reset() { d.next = d.initial }

// Max is the longest wait.
func (d *Doubling) Max() time.Duration { return d.max }
