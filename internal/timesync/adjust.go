package timesync

import (
	"fmt"
	"time"

	"golang.org/x/sys/unix"
)

// Adjuster steers the system clock. Kernel does it through adjtimex(2); tests record the
// calls instead of changing the host's clock.
type Adjuster interface {
	// Step moves the clock by offset at once.
	Step(offset time.Duration) error
	// Slew makes the kernel correct offset gradually; maxError is the estimate's bound
	// (the server's root distance), which the kernel reports to other programs.
	Slew(offset, maxError time.Duration) error
}

// Kernel steers the clock of this machine with adjtimex(2). It needs CAP_SYS_TIME.
type Kernel struct{}

// Step implements Adjuster.
func (Kernel) Step(offset time.Duration) error {
	tx := stepTimex(offset)
	if _, err := unix.Adjtimex(&tx); err != nil {
		return fmt.Errorf("step the clock by %v: adjtimex: %w", offset, err)
	}
	return nil
}

// Slew implements Adjuster.
func (Kernel) Slew(offset, maxError time.Duration) error {
	tx := slewTimex(offset, maxError)
	if _, err := unix.Adjtimex(&tx); err != nil {
		return fmt.Errorf("slew the clock by %v: adjtimex: %w", offset, err)
	}
	return nil
}

// stepTimex is the adjtimex request that adds offset to the clock in one go
// (ADJ_SETOFFSET, in nanoseconds: the kernel wants a non-negative fraction).
func stepTimex(offset time.Duration) unix.Timex {
	sec, nsec := int64(offset/time.Second), int64(offset%time.Second)
	if nsec < 0 {
		sec--
		nsec += int64(time.Second)
	}
	return unix.Timex{Modes: unix.ADJ_SETOFFSET | unix.ADJ_NANO, Time: unix.Timeval{Sec: sec, Usec: nsec}}
}

// maxSlew is the largest offset the kernel's phase-locked loop takes (MAXPHASE); larger
// ones are clamped by the kernel.
const maxSlew = 500 * time.Millisecond

// slewTimex is the adjtimex request that hands offset to the kernel's phase-locked loop
// (STA_PLL) and marks the clock synchronised (STA_UNSYNC cleared, which also lets the
// kernel copy the time to the hardware clock every eleven minutes).
func slewTimex(offset, maxError time.Duration) unix.Timex {
	offset = max(min(offset, maxSlew), -maxSlew)
	us := func(d time.Duration) int64 { return max(d.Abs().Microseconds(), 0) }
	return unix.Timex{
		Modes:    unix.ADJ_OFFSET | unix.ADJ_NANO | unix.ADJ_STATUS | unix.ADJ_MAXERROR | unix.ADJ_ESTERROR,
		Offset:   offset.Nanoseconds(),
		Status:   unix.STA_PLL,
		Maxerror: us(maxError),
		Esterror: us(offset),
	}
}
