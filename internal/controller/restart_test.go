package controller

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// expectRestartAfter checks that the controller's pending restart fires exactly after d, and
// waits until it happened and the controller (failing again) waits for the next one.
func expectRestartAfter(t *testing.T, f *fixture, name string, d time.Duration, restartsBefore int) {
	t.Helper()
	f.clk.Advance(d - time.Millisecond)
	if f.clk.Pending() != 1 || f.status(t, name).Restarts != restartsBefore {
		t.Fatalf("restart %d fired before %v", restartsBefore+1, d)
	}
	f.clk.Advance(time.Millisecond)
	waitUntil(t, fmt.Sprintf("restart %d", restartsBefore+1), func() bool {
		return f.status(t, name).Restarts == restartsBefore+1
	})
}

func TestBackoffGrowsAndCaps(t *testing.T) {
	f := newFixture()
	var runs atomic.Int32
	c := &funcController{name: "flaky", outputs: []Output{{Type: "F"}}, run: func(context.Context, Runtime, *slog.Logger) error {
		return fmt.Errorf("attempt %d: boom", runs.Add(1))
	}}
	if err := f.engine.Register(c); err != nil {
		t.Fatal(err)
	}
	f.start(t)

	delays := []time.Duration{100, 200, 400, 800, 1600, 3200, 6400, 12800, 25600, 30000, 30000}
	for i, d := range delays {
		waitUntil(t, "the next failure", func() bool { return f.clk.Pending() == 1 && runs.Load() == int32(i+1) })
		s := f.status(t, "flaky")
		if s.Running || s.Restarts != i || s.LastError != fmt.Sprintf("attempt %d: boom", i+1) {
			t.Fatalf("status before restart %d: %+v", i+1, s)
		}
		expectRestartAfter(t, f, "flaky", d*time.Millisecond, i)
	}
}

func TestBackoffResetsAfterAMinuteOfRunning(t *testing.T) {
	f := newFixture()
	var runs atomic.Int32
	c := &funcController{name: "flaky", run: func(ctx context.Context, r Runtime, _ *slog.Logger) error {
		if runs.Add(1) == 4 {
			// This run lasts a minute before failing.
			select {
			case <-r.Clock().After(time.Minute):
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		return errors.New("boom")
	}}
	if err := f.engine.Register(c); err != nil {
		t.Fatal(err)
	}
	f.start(t)

	for i, d := range []time.Duration{100, 200, 400} {
		waitUntil(t, "the next failure", func() bool { return f.clk.Pending() == 1 && runs.Load() == int32(i+1) })
		expectRestartAfter(t, f, "flaky", d*time.Millisecond, i)
	}
	// Run 4 is waiting on its own one-minute timer.
	waitUntil(t, "run 4 waits", func() bool { return runs.Load() == 4 && f.clk.Pending() == 1 })
	if !f.status(t, "flaky").Running {
		t.Fatal("run 4 not reported running")
	}
	f.clk.Advance(time.Minute)
	// Back to the initial backoff, then growing again.
	for i, d := range []time.Duration{100, 200} {
		waitUntil(t, "the next failure", func() bool { return f.clk.Pending() == 1 && runs.Load() == int32(i+4) })
		expectRestartAfter(t, f, "flaky", d*time.Millisecond, i+3)
	}
}

func TestPanicIsRecoveredAndRestarted(t *testing.T) {
	f := newFixture()
	var runs atomic.Int32
	c := &funcController{name: "panicky", run: func(ctx context.Context, _ Runtime, _ *slog.Logger) error {
		if runs.Add(1) == 1 {
			panic("kaboom")
		}
		<-ctx.Done()
		return nil
	}}
	if err := f.engine.Register(c); err != nil {
		t.Fatal(err)
	}
	f.start(t)

	waitUntil(t, "the restart is scheduled", func() bool { return f.clk.Pending() == 1 })
	s := f.status(t, "panicky")
	if s.Running || !strings.Contains(s.LastError, "panicky panicked") || !strings.Contains(s.LastError, "kaboom") {
		t.Fatalf("status after panic: %+v", s)
	}
	f.clk.Advance(InitialBackoff)
	waitUntil(t, "the controller runs again", func() bool {
		s := f.status(t, "panicky")
		return s.Running && s.Restarts == 1 && runs.Load() == 2
	})
}

func TestBackoffPolicy(t *testing.T) {
	var b restartBackoff
	var got []time.Duration
	for range 12 {
		got = append(got, b.delay(0))
	}
	want := []time.Duration{100, 200, 400, 800, 1600, 3200, 6400, 12800, 25600, 30000, 30000, 30000}
	for i := range want {
		if got[i] != want[i]*time.Millisecond {
			t.Fatalf("delays %v", got)
		}
	}
	if d := b.delay(59 * time.Second); d != MaxBackoff {
		t.Errorf("a 59s run reset the backoff: %v", d)
	}
	if d := b.delay(time.Minute); d != InitialBackoff {
		t.Errorf("a one-minute run did not reset the backoff: %v", d)
	}
	if d := b.delay(0); d != 2*InitialBackoff {
		t.Errorf("after reset: %v", d)
	}
}
