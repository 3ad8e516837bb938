// Package watchdog arms and feeds the kernel's watchdog device (/dev/watchdog: softdog, the
// kernel's software watchdog, where the machine has no hardware one). Stage 0 arms it just
// before it starts machined, and machined feeds it: a boot whose machined never starts or
// hangs before it takes the device over resets the machine. On a trial boot the firmware
// then boots the default slot, and the upgrade rolls back by itself.
package watchdog

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"time"

	"golang.org/x/sys/unix"
)

// Device is the kernel's first watchdog.
const Device = "/dev/watchdog"

// Timeout is how long the machine may go unfed: from stage 0's exec of machined to
// machined's first feed, and between two feeds.
const Timeout = 60 * time.Second

// Arm starts the watchdog at path with timeout and leaves it running: the device is closed
// without the magic character, which leaves it armed, so whoever opens it next must feed it
// within timeout.
func Arm(path string, timeout time.Duration) error {
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	defer f.Close()
	if err := unix.IoctlSetPointerInt(int(f.Fd()), unix.WDIOC_SETTIMEOUT, int(timeout/time.Second)); err != nil {
		return fmt.Errorf("set the watchdog's timeout: %w", err)
	}
	if _, err := f.Write([]byte{0}); err != nil {
		return fmt.Errorf("feed the watchdog: %w", err)
	}
	return nil
}

// Feed opens the watchdog at path and feeds it every period until ctx ends; then it stops
// the watchdog (the magic close: "V", then close), so that an orderly shutdown that takes
// long is not cut short.
func Feed(ctx context.Context, path string, period time.Duration, log *slog.Logger) error {
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	t := time.NewTicker(period)
	defer t.Stop()
	failing := false
	for {
		if _, err := f.Write([]byte{0}); err != nil && !failing {
			log.Warn("the watchdog cannot be fed: the machine will reset", "error", err)
			failing = true
		} else if err == nil {
			failing = false
		}
		select {
		case <-ctx.Done():
			_, err := f.Write([]byte("V"))
			if cerr := f.Close(); err == nil {
				err = cerr
			}
			if err != nil {
				return fmt.Errorf("stop the watchdog: %w", err)
			}
			return nil
		case <-t.C:
		}
	}
}
