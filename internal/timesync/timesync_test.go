package timesync

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"
	"golang.org/x/sys/unix"

	"github.com/plinthos/plinth/internal/clock"
	"github.com/plinthos/plinth/internal/ntptest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// recorder is an Adjuster that records the corrections instead of making them.
type recorder struct {
	mu     sync.Mutex
	steps  []time.Duration
	slews  []time.Duration
	failed error
}

func (r *recorder) Step(d time.Duration) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.steps = append(r.steps, d)
	return r.failed
}

func (r *recorder) Slew(d, _ time.Duration) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.slews = append(r.slews, d)
	return r.failed
}

func quiet() *slog.Logger { return slog.New(slog.DiscardHandler) }

func TestPollStepsAFarClock(t *testing.T) {
	srv := ntptest.Start(t, 10*time.Minute)
	rec := &recorder{}
	s := &Syncer{Servers: []string{srv.Addr()}, Adjuster: rec, Log: quiet()}
	st, err := s.Poll(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if !st.Synced || !st.Stepped || st.Server != srv.Addr() || st.LastSync.IsZero() {
		t.Errorf("status %+v", st)
	}
	// The offset is measured, so it is near the skew, not equal to it.
	if len(rec.steps) != 1 || (rec.steps[0]-10*time.Minute).Abs() > time.Second || len(rec.slews) != 0 {
		t.Errorf("steps %v, slews %v; want one step of about 10m", rec.steps, rec.slews)
	}
}

func TestPollSlewsANearClock(t *testing.T) {
	srv := ntptest.Start(t, -50*time.Millisecond)
	rec := &recorder{}
	s := &Syncer{Servers: []string{srv.Addr()}, Adjuster: rec, Log: quiet()}
	st, err := s.Poll(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if !st.Synced || st.Stepped || st.Offset >= 0 {
		t.Errorf("status %+v", st)
	}
	if len(rec.slews) != 1 || len(rec.steps) != 0 || rec.slews[0] >= 0 {
		t.Errorf("steps %v, slews %v; want one negative slew", rec.steps, rec.slews)
	}
}

func TestPollFallsBackToTheNextServer(t *testing.T) {
	silent := ntptest.Start(t, 0)
	silent.Silent.Store(true)
	kiss := ntptest.Start(t, 0)
	kiss.Kiss.Store(true)
	good := ntptest.Start(t, 2*time.Second)
	rec := &recorder{}
	s := &Syncer{Servers: []string{silent.Addr(), kiss.Addr(), good.Addr()}, Adjuster: rec, QueryTimeout: 200 * time.Millisecond, Log: quiet()}
	st, err := s.Poll(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if st.Server != good.Addr() || !st.Stepped {
		t.Errorf("status %+v", st)
	}
	if silent.Queries.Load() == 0 || kiss.Queries.Load() == 0 {
		t.Error("the first servers were not asked")
	}

	// Without the good one the poll fails, naming every server.
	s.Servers = s.Servers[:2]
	st, err = s.Poll(context.Background())
	if err == nil || st.Synced {
		t.Fatalf("status %+v, error %v", st, err)
	}
	for _, want := range []string{silent.Addr(), kiss.Addr(), "kiss of death"} {
		if !strings.Contains(err.Error(), want) || !strings.Contains(st.Error, want) {
			t.Errorf("error %q does not mention %q", err, want)
		}
	}
}

func TestPollReportsAdjusterErrors(t *testing.T) {
	srv := ntptest.Start(t, time.Hour)
	rec := &recorder{failed: errors.New("operation not permitted")}
	s := &Syncer{Servers: []string{srv.Addr()}, Adjuster: rec, Log: quiet()}
	st, err := s.Poll(context.Background())
	if err == nil || st.Synced || !strings.Contains(st.Error, "not permitted") {
		t.Errorf("status %+v, error %v", st, err)
	}
}

func TestPollStopsWithItsContext(t *testing.T) {
	srv := ntptest.Start(t, 0)
	srv.Silent.Store(true)
	s := &Syncer{Servers: []string{srv.Addr()}, Adjuster: &recorder{}, QueryTimeout: time.Minute, Log: quiet()}
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		for srv.Queries.Load() == 0 {
			time.Sleep(time.Millisecond)
		}
		cancel()
	}()
	start := time.Now()
	if _, err := s.Poll(ctx); !errors.Is(err, context.Canceled) {
		t.Errorf("error %v, want context.Canceled", err)
	}
	if time.Since(start) > 30*time.Second {
		t.Error("the query outlived its context")
	}
}

// TestRunBacksOffAndRecovers drives Run with a fake clock: failed polls are retried after
// 2 s, 4 s, 8 s; once the server answers, polls are MinPoll apart, doubling.
func TestRunBacksOffAndRecovers(t *testing.T) {
	srv := ntptest.Start(t, 0)
	srv.Silent.Store(true)
	clk := clock.NewFake(time.Now())
	statuses := make(chan Status, 16)
	// The query timeout is real time: long enough for a loaded machine's loopback.
	s := &Syncer{Servers: []string{srv.Addr()}, Adjuster: &recorder{}, Clock: clk, QueryTimeout: 500 * time.Millisecond,
		MinPoll: time.Minute, MaxPoll: 4 * time.Minute, Log: quiet(), OnStatus: func(st Status) { statuses <- st }}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	next := func() Status {
		t.Helper()
		select {
		case st := <-statuses:
			return st
		case <-time.After(30 * time.Second):
			t.Fatal("no status")
			return Status{}
		}
	}
	advance := func(d time.Duration) {
		t.Helper()
		for clk.Pending() == 0 {
			time.Sleep(time.Millisecond)
		}
		clk.Advance(d)
	}
	var waits []time.Duration
	for i := range 3 {
		st := next()
		if st.Synced || st.Error == "" {
			t.Fatalf("status %+v", st)
		}
		waits = append(waits, st.NextPoll)
		if i == 2 {
			// The server answers from the next poll on: it must before the clock moves,
			// or that poll may be sent while the server is still silent.
			srv.Silent.Store(false)
		}
		advance(st.NextPoll)
	}
	for range 4 {
		st := next()
		if !st.Synced {
			t.Fatalf("status %+v", st)
		}
		waits = append(waits, st.NextPoll)
		advance(st.NextPoll)
	}
	want := []time.Duration{2 * time.Second, 4 * time.Second, 8 * time.Second, time.Minute, 2 * time.Minute, 4 * time.Minute, 4 * time.Minute}
	if !equalDurations(waits, want) {
		t.Errorf("waits %v, want %v", waits, want)
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("Run: %v", err)
	}
}

func equalDurations(a, b []time.Duration) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestRunNeedsServers(t *testing.T) {
	if err := (&Syncer{Adjuster: &recorder{}}).Run(context.Background()); err == nil {
		t.Error("ran without servers")
	}
}

func TestTimexRequests(t *testing.T) {
	for _, c := range []struct {
		offset    time.Duration
		sec, nsec int64
	}{
		{1500 * time.Millisecond, 1, 500_000_000},
		{-1500 * time.Millisecond, -2, 500_000_000},
		{-time.Second, -1, 0},
		{10 * time.Minute, 600, 0},
	} {
		tx := stepTimex(c.offset)
		if tx.Modes != unix.ADJ_SETOFFSET|unix.ADJ_NANO || tx.Time.Sec != c.sec || tx.Time.Usec != c.nsec {
			t.Errorf("step %v: modes %#x, time %d s %d ns; want %d s %d ns", c.offset, tx.Modes, tx.Time.Sec, tx.Time.Usec, c.sec, c.nsec)
		}
	}
	tx := slewTimex(-20*time.Millisecond, 30*time.Millisecond)
	if tx.Offset != -20_000_000 || tx.Status != unix.STA_PLL || tx.Maxerror != 30_000 || tx.Esterror != 20_000 || tx.Modes&unix.ADJ_NANO == 0 {
		t.Errorf("slew: %+v", tx)
	}
	if tx := slewTimex(2*time.Second, 0); tx.Offset != int64(maxSlew) {
		t.Errorf("slew of 2s: offset %d, want it clamped to %d", tx.Offset, maxSlew)
	}
}
