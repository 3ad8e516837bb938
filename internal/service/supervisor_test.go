package service

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/plinthos/plinth/internal/clock"
	"github.com/plinthos/plinth/internal/events"
	"github.com/plinthos/plinth/internal/logstore"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

var epoch = time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)

type harness struct {
	t      *testing.T
	clk    *clock.Fake
	logs   *logstore.Store
	events *events.Stream
	sup    *Supervisor
}

// newHarness returns a supervisor on a fake clock whose Run is stopped at cleanup.
func newHarness(t *testing.T) *harness {
	t.Helper()
	h := &harness{t: t, clk: clock.NewFake(epoch)}
	var err error
	h.logs, err = logstore.Open("", logstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	h.events = events.New(1000, h.clk)
	h.sup = New(h.clk, h.logs, h.events, nil)
	ctx, cancel := context.WithCancel(context.Background())
	runDone := make(chan error, 1)
	go func() { runDone <- h.sup.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-runDone:
			if err != nil {
				t.Errorf("Run: %v", err)
			}
		case <-time.After(10 * time.Second):
			t.Error("Run did not return")
		}
		h.logs.Close()
	})
	return h
}

func (h *harness) add(svc Service) {
	h.t.Helper()
	if err := h.sup.Add(svc); err != nil {
		h.t.Fatal(err)
	}
}

func (h *harness) start(id string) {
	h.t.Helper()
	if err := h.sup.Start(id); err != nil {
		h.t.Fatal(err)
	}
}

func (h *harness) status(id string) Status {
	h.t.Helper()
	st, err := h.sup.Status(id)
	if err != nil {
		h.t.Fatal(err)
	}
	return st
}

// waitFor polls cond until it holds, failing after 5 s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

// waitState waits until the service is in state and its message contains msg.
func (h *harness) waitState(id string, state State, msg string) Status {
	h.t.Helper()
	var st Status
	waitFor(h.t, fmt.Sprintf("%s to be %s %q", id, state, msg), func() bool {
		st = h.status(id)
		return st.State == state && strings.Contains(st.Message, msg)
	})
	return st
}

// waitPending waits until the fake clock has n timers.
func (h *harness) waitPending(n int) {
	h.t.Helper()
	waitFor(h.t, fmt.Sprintf("%d pending timers", n), func() bool { return h.clk.Pending() == n })
}

// waitLoopEnd waits until the started life of service id has ended: its run loop has
// returned, so no restart and no timer of it can come any more.
func (h *harness) waitLoopEnd(id string) {
	h.t.Helper()
	h.sup.mu.Lock()
	loop := h.sup.svcs[id].loop
	h.sup.mu.Unlock()
	if loop == nil {
		return // already ended
	}
	select {
	case <-loop.done:
	case <-time.After(5 * time.Second):
		h.t.Fatalf("the run loop of %s did not end", id)
	}
}

// untilStopped is a runner that runs until stopped.
func untilStopped(name string) Runner {
	return GoroutineRunner{Name: name, Func: func(ctx context.Context, logs io.Writer) error {
		fmt.Fprintf(logs, "%s up\n", name)
		<-ctx.Done()
		return ctx.Err()
	}}
}

func states(history []Transition) string {
	var parts []string
	for _, tr := range history {
		parts = append(parts, string(tr.To))
	}
	return strings.Join(parts, ",")
}

func TestGoroutineRunnerLifecycle(t *testing.T) {
	h := newHarness(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	evs := h.events.Subscribe(ctx, events.SubscribeOptions{})

	h.add(Service{ID: "hello", Restart: RestartOnce, Runner: GoroutineRunner{Name: "hello", Func: func(ctx context.Context, logs io.Writer) error {
		fmt.Fprintln(logs, "hello from the service")
		fmt.Fprint(logs, "no newline")
		return nil
	}}})
	if st := h.status("hello"); st.State != Initialized || st.Runner != "goroutine hello" {
		t.Fatalf("after Add: %+v", st)
	}
	h.start("hello")
	st := h.waitState("hello", Finished, "exited")
	if got, want := states(st.History), "Preparing,Waiting,Running,Finished"; got != want {
		t.Fatalf("history %s, want %s", got, want)
	}
	if st.History[0].From != Initialized || st.History[3].From != Running {
		t.Fatalf("history %+v", st.History)
	}
	if st.Healthy != nil || st.Restarts != 0 {
		t.Fatalf("status %+v", st)
	}
	if got := h.logs.Log("hello").Tail(-1); len(got) != 2 || got[0] != "hello from the service" || got[1] != "no newline" {
		t.Fatalf("log %q", got)
	}

	// One event per transition, in order.
	for _, want := range []State{Preparing, Waiting, Running, Finished} {
		select {
		case e := <-evs:
			if e.Type != events.TypeService || e.Data["id"] != "hello" || e.Data["state"] != string(want) || !strings.Contains(e.Message, string(want)) {
				t.Fatalf("event %+v, want state %s", e, want)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("no event for %s", want)
		}
	}
}

func TestGoroutineRunnerPanic(t *testing.T) {
	h := newHarness(t)
	h.add(Service{ID: "panics", Restart: RestartOnce, Runner: GoroutineRunner{Name: "p", Func: func(context.Context, io.Writer) error {
		panic("oops")
	}}})
	h.start("panics")
	h.waitState("panics", Failed, "panicked: oops")
}

func TestAddValidation(t *testing.T) {
	h := newHarness(t)
	h.add(Service{ID: "a", Runner: untilStopped("a")})
	if err := h.sup.Add(Service{ID: "a", Runner: untilStopped("a")}); err == nil {
		t.Fatal("duplicate ID accepted")
	}
	if err := h.sup.Add(Service{ID: "Bad/ID", Runner: untilStopped("x")}); err == nil {
		t.Fatal("invalid ID accepted")
	}
	if err := h.sup.Add(Service{ID: "norunner"}); err == nil {
		t.Fatal("service without runner accepted")
	}
	if err := h.sup.Start("missing"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Start(missing) = %v", err)
	}
	if _, err := h.sup.Status("missing"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Status(missing) = %v", err)
	}
	// Unknown dependencies are fine until start.
	h.add(Service{ID: "b", DependsOn: []string{"later"}, Runner: untilStopped("b")})
	if err := h.sup.Start("b"); err == nil || !strings.Contains(err.Error(), "unknown service later") {
		t.Fatalf("Start with unknown dependency = %v", err)
	}
	h.add(Service{ID: "later", Runner: untilStopped("later")})
	if err := h.sup.StartAll(); err != nil {
		t.Fatal(err)
	}
	h.waitState("b", Running, "")
	// Starting a started service does nothing.
	if err := h.sup.Start("b"); err != nil {
		t.Fatal(err)
	}
	if got := states(h.status("b").History); got != "Preparing,Waiting,Running" {
		t.Fatalf("history %s", got)
	}
	if ids := h.sup.List(); len(ids) != 3 || ids[0].ID != "a" || ids[1].ID != "b" || ids[2].ID != "later" {
		t.Fatalf("List = %+v", ids)
	}
}

func TestDependencyCycle(t *testing.T) {
	h := newHarness(t)
	h.add(Service{ID: "x", Runner: untilStopped("x")})
	h.add(Service{ID: "a", DependsOn: []string{"x", "b"}, Runner: untilStopped("a")})
	h.add(Service{ID: "b", DependsOn: []string{"c"}, Runner: untilStopped("b")})
	h.add(Service{ID: "c", DependsOn: []string{"a"}, Runner: untilStopped("c")})
	err := h.sup.StartAll()
	if err == nil || !strings.Contains(err.Error(), "dependency cycle: a -> b -> c -> a") {
		t.Fatalf("StartAll = %v", err)
	}
	if err := h.sup.Start("b"); err == nil || !strings.Contains(err.Error(), "dependency cycle: b -> c -> a -> b") {
		t.Fatalf("Start = %v", err)
	}
	for _, st := range h.sup.List() {
		if st.State != Initialized {
			t.Fatalf("%s started: %s", st.ID, st.State)
		}
	}
}

func TestDependenciesWait(t *testing.T) {
	h := newHarness(t)
	var healthy sync.Mutex
	ok := false
	h.add(Service{ID: "kubelet", DependsOn: []string{"etcd", "containerd"}, Runner: untilStopped("kubelet")})
	h.add(Service{ID: "containerd", Runner: untilStopped("containerd")})
	h.add(Service{ID: "etcd", Runner: untilStopped("etcd"), Health: &HealthCheck{
		InitialDelay: time.Second, Period: time.Second,
		Check: func(context.Context) error {
			healthy.Lock()
			defer healthy.Unlock()
			if !ok {
				return errors.New("not yet")
			}
			return nil
		},
	}})
	h.start("kubelet")
	h.waitState("kubelet", Waiting, "waiting for etcd (Initialized), containerd (Initialized)")
	h.start("containerd")
	h.waitState("containerd", Running, "")
	h.waitState("kubelet", Waiting, "waiting for etcd (Initialized)")
	h.start("etcd")
	h.waitState("etcd", Running, "")
	h.waitState("kubelet", Waiting, "waiting for etcd (not healthy yet)")

	// First check fails: still waiting.
	h.waitPending(1)
	h.clk.Advance(time.Second)
	waitFor(t, "etcd unhealthy", func() bool { st := h.status("etcd"); return st.Healthy != nil && !*st.Healthy })
	if st := h.status("kubelet"); st.State != Waiting {
		t.Fatalf("kubelet %s before etcd is healthy", st.State)
	}
	healthy.Lock()
	ok = true
	healthy.Unlock()
	h.waitPending(1)
	h.clk.Advance(time.Second)
	h.waitState("kubelet", Running, "")
}

func TestOneShotDependency(t *testing.T) {
	h := newHarness(t)
	release := make(chan struct{})
	h.add(Service{ID: "setup", Restart: RestartOnce, Runner: GoroutineRunner{Name: "setup", Func: func(ctx context.Context, _ io.Writer) error {
		select {
		case <-release:
		case <-ctx.Done():
		}
		return nil
	}}})
	h.add(Service{ID: "main", DependsOn: []string{"setup"}, Runner: untilStopped("main")})
	if err := h.sup.StartAll(); err != nil {
		t.Fatal(err)
	}
	// While the one-shot task runs, its dependent waits for it to finish: main has seen
	// setup Running (its message says so) and still waits. It is woken again only by a
	// state change, and none comes until release.
	h.waitState("setup", Running, "")
	h.waitState("main", Waiting, "waiting for setup (not healthy yet)")
	if st := h.status("setup"); st.State != Running {
		t.Fatalf("setup %s", st.State)
	}
	close(release)
	h.waitState("main", Running, "")
	if st := h.status("setup"); st.State != Finished {
		t.Fatalf("setup %s", st.State)
	}
}

func TestCondition(t *testing.T) {
	h := newHarness(t)
	release := make(chan error)
	h.add(Service{ID: "cond", Runner: untilStopped("cond"), Condition: func(ctx context.Context) error {
		select {
		case err := <-release:
			return err
		case <-ctx.Done():
			return ctx.Err()
		}
	}})
	h.start("cond")
	h.waitState("cond", Waiting, "waiting for the start condition")
	release <- nil
	h.waitState("cond", Running, "")

	// A failing condition fails the service; ErrSkip skips it.
	h.add(Service{ID: "fails", Runner: untilStopped("fails"), Condition: func(context.Context) error { return errors.New("no disk") }})
	h.add(Service{ID: "skips", Runner: untilStopped("skips"), Condition: func(context.Context) error { return fmt.Errorf("not a control plane: %w", ErrSkip) }})
	h.start("fails")
	h.start("skips")
	h.waitState("fails", Failed, "start condition: no disk")
	h.waitState("skips", Skipped, "not a control plane")

	// Stop while waiting for the condition.
	h.add(Service{ID: "blocked", Runner: untilStopped("blocked"), Condition: func(ctx context.Context) error {
		<-ctx.Done()
		return ctx.Err()
	}})
	h.start("blocked")
	h.waitState("blocked", Waiting, "condition")
	if err := h.sup.Stop(context.Background(), "blocked"); err != nil {
		t.Fatal(err)
	}
	if st := h.status("blocked"); st.State != Finished || st.Message != "stopped before start" {
		t.Fatalf("blocked: %s %q", st.State, st.Message)
	}
}

func TestHealthCheckTransitions(t *testing.T) {
	h := newHarness(t)
	var mu sync.Mutex
	var result error
	block := false
	h.add(Service{ID: "api", Runner: untilStopped("api"), Health: &HealthCheck{
		InitialDelay: 5 * time.Second, Period: 10 * time.Second, Timeout: 3 * time.Second,
		Check: func(ctx context.Context) error {
			mu.Lock()
			err, b := result, block
			mu.Unlock()
			if b {
				<-ctx.Done()
				return ctx.Err()
			}
			return err
		},
	}})
	set := func(err error, b bool) {
		mu.Lock()
		result, block = err, b
		mu.Unlock()
	}
	healthIs := func(want bool, msg string) Status {
		t.Helper()
		var st Status
		waitFor(t, fmt.Sprintf("healthy=%v %q", want, msg), func() bool {
			st = h.status("api")
			return st.Healthy != nil && *st.Healthy == want && strings.Contains(st.Health.LastMessage, msg)
		})
		return st
	}

	h.start("api")
	h.waitState("api", Running, "")
	h.waitPending(1)
	if st := h.status("api"); st.Healthy != nil {
		t.Fatal("health known before the first check")
	}
	h.clk.Advance(4 * time.Second)
	if st := h.status("api"); st.Healthy != nil {
		t.Fatal("checked before the initial delay")
	}
	h.clk.Advance(time.Second)
	st := healthIs(true, "ok")
	if !st.Health.LastChange.Equal(epoch.Add(5 * time.Second)) {
		t.Fatalf("LastChange %v", st.Health.LastChange)
	}

	set(errors.New("connection refused"), false)
	h.waitPending(1)
	h.clk.Advance(10 * time.Second)
	st = healthIs(false, "connection refused")
	if !st.Health.LastChange.Equal(epoch.Add(15 * time.Second)) {
		t.Fatalf("LastChange %v", st.Health.LastChange)
	}

	set(nil, false)
	h.waitPending(1)
	h.clk.Advance(10 * time.Second)
	healthIs(true, "ok")

	// A check that hangs times out.
	set(nil, true)
	h.waitPending(1)
	h.clk.Advance(10 * time.Second)
	h.waitPending(1) // the timeout
	h.clk.Advance(3 * time.Second)
	healthIs(false, "timed out after 3s")
	set(nil, false)

	// Health events were published.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var msgs []string
	for e := range h.events.Subscribe(ctx, events.SubscribeOptions{TailEvents: -1}) {
		if e.Data["healthy"] != "" {
			msgs = append(msgs, e.Data["healthy"])
		}
		if len(msgs) == 4 {
			break
		}
	}
	if strings.Join(msgs, ",") != "true,false,true,false" {
		t.Fatalf("health events %v", msgs)
	}

	// Leaving Running forgets the health.
	if err := h.sup.Stop(context.Background(), "api"); err != nil {
		t.Fatal(err)
	}
	if st := h.status("api"); st.Healthy != nil || st.Health != nil {
		t.Fatalf("health kept after stop: %+v", st)
	}
}

// TestHealthStartPeriod: until a check passes, StartPeriod paces the checks and the
// failures before InitialDelay + Period are not recorded; after, Period paces them.
func TestHealthStartPeriod(t *testing.T) {
	h := newHarness(t)
	var mu sync.Mutex
	result := errors.New("connection refused")
	checks := 0
	h.add(Service{ID: "api", Runner: untilStopped("api"), Health: &HealthCheck{
		InitialDelay: 100 * time.Millisecond, StartPeriod: 200 * time.Millisecond, Period: 5 * time.Second,
		Check: func(context.Context) error {
			mu.Lock()
			defer mu.Unlock()
			checks++
			return result
		},
	}})
	count := func() int {
		mu.Lock()
		defer mu.Unlock()
		return checks
	}
	h.start("api")
	h.waitState("api", Running, "")
	// Checks at 0.1 s, then every 0.2 s: failing, but not recorded yet.
	for i := 1; i <= 3; i++ {
		h.waitPending(1)
		if i == 1 {
			h.clk.Advance(100 * time.Millisecond)
		} else {
			h.clk.Advance(200 * time.Millisecond)
		}
		waitFor(t, fmt.Sprintf("check %d", i), func() bool { return count() == i })
	}
	if st := h.status("api"); st.Healthy != nil {
		t.Fatalf("a failure in the start period was recorded: %+v", st.Health)
	}
	mu.Lock()
	result = nil
	mu.Unlock()
	h.waitPending(1)
	h.clk.Advance(200 * time.Millisecond)
	st := h.status("api")
	waitFor(t, "healthy", func() bool { st = h.status("api"); return st.Healthy != nil && *st.Healthy })
	if !st.Health.LastChange.Equal(epoch.Add(700 * time.Millisecond)) {
		t.Fatalf("healthy at %v, want 0.7 s after the start", st.Health.LastChange.Sub(epoch))
	}
	// Once passed, Period paces the checks, and a failure is recorded at once.
	mu.Lock()
	result = errors.New("gone")
	mu.Unlock()
	h.waitPending(1)
	h.clk.Advance(200 * time.Millisecond)
	if n := count(); n != 4 {
		t.Fatalf("%d checks 0.2 s after passing, want 4 (Period paces them now)", n)
	}
	h.clk.Advance(4800 * time.Millisecond)
	waitFor(t, "unhealthy", func() bool { st = h.status("api"); return st.Healthy != nil && !*st.Healthy })
}

// TestHealthStartPeriodRecordsLastingFailure: a service that never passes is reported
// unhealthy once InitialDelay + Period have gone by, as without a StartPeriod.
func TestHealthStartPeriodRecordsLastingFailure(t *testing.T) {
	h := newHarness(t)
	h.add(Service{ID: "api", Runner: untilStopped("api"), Health: &HealthCheck{
		InitialDelay: time.Second, StartPeriod: time.Second, Period: 2 * time.Second,
		Check: func(context.Context) error { return errors.New("connection refused") },
	}})
	h.start("api")
	h.waitState("api", Running, "")
	for range 2 {
		h.waitPending(1)
		h.clk.Advance(time.Second)
	}
	if st := h.status("api"); st.Healthy != nil {
		t.Fatalf("a failure in the start period was recorded: %+v", st.Health)
	}
	h.waitPending(1)
	h.clk.Advance(time.Second)
	var st Status
	waitFor(t, "unhealthy", func() bool { st = h.status("api"); return st.Healthy != nil && !*st.Healthy })
	if !st.Health.LastChange.Equal(epoch.Add(3 * time.Second)) {
		t.Fatalf("unhealthy at %v, want 3 s", st.Health.LastChange.Sub(epoch))
	}
}

// exitRunner returns a runner that exits with whatever is sent on exits (or stops).
func exitRunner(exits <-chan error) Runner {
	return GoroutineRunner{Name: "exits", Func: func(ctx context.Context, _ io.Writer) error {
		select {
		case err := <-exits:
			return err
		case <-ctx.Done():
			return ctx.Err()
		}
	}}
}

func TestRestartForeverBackoff(t *testing.T) {
	h := newHarness(t)
	exits := make(chan error)
	h.add(Service{ID: "flaky", Runner: exitRunner(exits)})
	h.start("flaky")
	for i, wait := range []time.Duration{1, 2, 4, 8, 16, 30, 30} {
		wait *= time.Second
		h.waitState("flaky", Running, "")
		exits <- fmt.Errorf("crash %d", i)
		st := h.waitState("flaky", Waiting, fmt.Sprintf("restarting in %s", wait))
		last := st.History[len(st.History)-2]
		if last.To != Failed || last.Message != fmt.Sprintf("crash %d", i) {
			t.Fatalf("transition before waiting: %+v", last)
		}
		h.clk.Advance(wait - time.Millisecond)
		if st := h.status("flaky"); st.State != Waiting {
			t.Fatalf("restarted before %s", wait)
		}
		h.clk.Advance(time.Millisecond)
		waitFor(t, "restart", func() bool { return h.status("flaky").Restarts == i+1 })
	}
	// A successful exit restarts as well.
	h.waitState("flaky", Running, "")
	exits <- nil
	h.waitState("flaky", Waiting, "restarting in 30s")
	h.clk.Advance(30 * time.Second)
	// After a minute of uptime the backoff starts over.
	h.waitState("flaky", Running, "")
	h.clk.Advance(BackoffReset)
	exits <- errors.New("late crash")
	h.waitState("flaky", Waiting, "restarting in 1s")
}

func TestRestartOnce(t *testing.T) {
	h := newHarness(t)
	exits := make(chan error)
	h.add(Service{ID: "once", Restart: RestartOnce, Runner: exitRunner(exits)})
	h.start("once")
	h.waitState("once", Running, "")
	exits <- errors.New("exit status 2")
	h.waitState("once", Failed, "exit status 2")
	h.waitLoopEnd("once")
	if h.clk.Pending() != 0 || h.status("once").State != Failed {
		t.Fatal("RestartOnce restarts")
	}
	// Started again by hand, it ends Finished on success.
	h.start("once")
	h.waitState("once", Running, "")
	exits <- nil
	st := h.waitState("once", Finished, "exited")
	if st.Restarts != 0 {
		t.Fatalf("Restarts = %d", st.Restarts)
	}
}

func TestRestartUntilSuccess(t *testing.T) {
	h := newHarness(t)
	exits := make(chan error)
	h.add(Service{ID: "job", Restart: RestartUntilSuccess, Runner: exitRunner(exits)})
	h.start("job")
	h.waitState("job", Running, "")
	exits <- errors.New("not yet")
	h.waitState("job", Waiting, "restarting in 1s")
	h.clk.Advance(time.Second)
	h.waitState("job", Running, "")
	exits <- errors.New("still not")
	h.waitState("job", Waiting, "restarting in 2s")
	h.clk.Advance(2 * time.Second)
	h.waitState("job", Running, "")
	exits <- nil
	st := h.waitState("job", Finished, "exited")
	if st.Restarts != 2 {
		t.Fatalf("Restarts = %d", st.Restarts)
	}
	h.waitLoopEnd("job")
	if h.clk.Pending() != 0 || h.status("job").State != Finished {
		t.Fatal("restart scheduled after success")
	}
}

func TestStopAndRestart(t *testing.T) {
	h := newHarness(t)
	h.add(Service{ID: "svc", Runner: untilStopped("svc")})
	h.start("svc")
	h.waitState("svc", Running, "")
	if err := h.sup.Stop(context.Background(), "svc"); err != nil {
		t.Fatal(err)
	}
	st := h.status("svc")
	if st.State != Finished || st.Message != "stopped" {
		t.Fatalf("after Stop: %s %q", st.State, st.Message)
	}
	if got := states(st.History); got != "Preparing,Waiting,Running,Stopping,Finished" {
		t.Fatalf("history %s", got)
	}
	if h.clk.Pending() != 0 {
		t.Fatal("stop timer left pending")
	}
	// Stopping a stopped service does nothing.
	if err := h.sup.Stop(context.Background(), "svc"); err != nil {
		t.Fatal(err)
	}

	if err := h.sup.Restart(context.Background(), "svc"); err != nil {
		t.Fatal(err)
	}
	st = h.waitState("svc", Running, "")
	if st.Restarts != 1 {
		t.Fatalf("Restarts = %d", st.Restarts)
	}
	if err := h.sup.Restart(context.Background(), "svc"); err != nil {
		t.Fatal(err)
	}
	st = h.waitState("svc", Running, "")
	if st.Restarts != 2 || !strings.HasSuffix(states(st.History), "Running,Stopping,Finished,Preparing,Waiting,Running") {
		t.Fatalf("after Restart: %d %s", st.Restarts, states(st.History))
	}
	if got := h.logs.Log("svc").Tail(-1); len(got) != 3 {
		t.Fatalf("log %q", got)
	}
}

func TestStopDuringBackoff(t *testing.T) {
	h := newHarness(t)
	exits := make(chan error)
	h.add(Service{ID: "svc", Runner: exitRunner(exits)})
	h.start("svc")
	h.waitState("svc", Running, "")
	exits <- errors.New("boom")
	h.waitState("svc", Waiting, "restarting")
	if err := h.sup.Stop(context.Background(), "svc"); err != nil {
		t.Fatal(err)
	}
	if st := h.status("svc"); st.State != Finished || h.clk.Pending() != 0 {
		t.Fatalf("after stop in backoff: %s, %d timers", st.State, h.clk.Pending())
	}
}

func TestStopTimeout(t *testing.T) {
	h := newHarness(t)
	release := make(chan struct{})
	h.add(Service{ID: "stubborn", StopTimeout: 5 * time.Second, Runner: GoroutineRunner{Name: "stubborn", Func: func(context.Context, io.Writer) error {
		<-release // ignores ctx
		return nil
	}}})
	h.start("stubborn")
	h.waitState("stubborn", Running, "")
	stopErr := make(chan error, 1)
	go func() { stopErr <- h.sup.Stop(context.Background(), "stubborn") }()
	h.waitState("stubborn", Stopping, "")
	h.waitPending(1)
	h.clk.Advance(5 * time.Second)
	select {
	case err := <-stopErr:
		if err == nil || !strings.Contains(err.Error(), "did not stop within 5s") {
			t.Fatalf("Stop = %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Stop did not return")
	}
	if st := h.status("stubborn"); st.State != Failed || st.Message != "did not stop within 5s" {
		t.Fatalf("%s %q", st.State, st.Message)
	}
	close(release)

	// A Stop whose context ends first returns its error.
	release2 := make(chan struct{})
	h.add(Service{ID: "slow", Runner: GoroutineRunner{Name: "slow", Func: func(ctx context.Context, _ io.Writer) error {
		<-ctx.Done()
		<-release2
		return nil
	}}})
	h.start("slow")
	h.waitState("slow", Running, "")
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := h.sup.Stop(ctx, "slow"); !errors.Is(err, context.Canceled) {
		t.Fatalf("Stop = %v", err)
	}
	close(release2)
	h.waitState("slow", Finished, "stopped")
}

func TestHistoryKeepsLast16(t *testing.T) {
	h := newHarness(t)
	exits := make(chan error)
	h.add(Service{ID: "svc", Runner: exitRunner(exits)})
	h.start("svc")
	for i := range 8 { // 3 transitions per cycle after the first 3
		h.waitState("svc", Running, "")
		exits <- fmt.Errorf("crash %d", i)
		st := h.waitState("svc", Waiting, "restarting")
		h.clk.Advance(BackoffMax)
		waitFor(t, "restart", func() bool { return h.status("svc").Restarts == st.Restarts+1 })
	}
	st := h.waitState("svc", Running, "")
	if len(st.History) != HistoryLen {
		t.Fatalf("history has %d entries", len(st.History))
	}
	lastTo := st.History[len(st.History)-1]
	if lastTo.To != Running || lastTo.From != Waiting {
		t.Fatalf("last transition %+v", lastTo)
	}
	// 3 + 8*3 = 27 transitions; the first kept is the 12th: Running after crash 2's backoff.
	if first := st.History[0]; first.To != Running || st.History[1].Message != "crash 3" {
		t.Fatalf("first kept %+v, then %+v", first, st.History[1])
	}
	for i := 1; i < len(st.History); i++ {
		if st.History[i].From != st.History[i-1].To {
			t.Fatalf("history broken at %d: %+v", i, st.History)
		}
	}
}

func TestStopAllReverseDependencyOrder(t *testing.T) {
	h := newHarness(t)
	var mu sync.Mutex
	var stopped []string
	runner := func(name string) Runner {
		return GoroutineRunner{Name: name, Func: func(ctx context.Context, _ io.Writer) error {
			<-ctx.Done()
			mu.Lock()
			stopped = append(stopped, name)
			mu.Unlock()
			return nil
		}}
	}
	h.add(Service{ID: "kubelet", DependsOn: []string{"containerd", "etcd"}, Runner: runner("kubelet")})
	h.add(Service{ID: "etcd", DependsOn: []string{"containerd"}, Runner: runner("etcd")})
	h.add(Service{ID: "containerd", Runner: runner("containerd")})
	h.add(Service{ID: "apid", Runner: runner("apid")})
	if err := h.sup.StartAll(); err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"kubelet", "etcd", "containerd", "apid"} {
		h.waitState(id, Running, "")
	}
	if err := h.sup.StopAll(context.Background()); err != nil {
		t.Fatal(err)
	}
	pos := map[string]int{}
	for i, id := range stopped {
		pos[id] = i
	}
	if len(stopped) != 4 || pos["kubelet"] > pos["etcd"] || pos["etcd"] > pos["containerd"] {
		t.Fatalf("stop order %v", stopped)
	}
	for _, st := range h.sup.List() {
		if st.State != Finished {
			t.Fatalf("%s is %s", st.ID, st.State)
		}
	}
}

func TestSubscribe(t *testing.T) {
	h := newHarness(t)
	h.add(Service{ID: "a", Restart: RestartOnce, Runner: GoroutineRunner{Name: "a", Func: func(context.Context, io.Writer) error { return nil }}})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ch := h.sup.Subscribe(ctx)
	next := func() Status {
		t.Helper()
		select {
		case st := <-ch:
			return st
		case <-time.After(5 * time.Second):
			t.Fatal("no status")
		}
		return Status{}
	}
	if st := next(); st.ID != "a" || st.State != Initialized {
		t.Fatalf("snapshot %+v", st)
	}
	h.start("a")
	for _, want := range []State{Preparing, Waiting, Running, Finished} {
		if st := next(); st.State != want {
			t.Fatalf("got %s, want %s", st.State, want)
		}
	}
	cancel()
	for range ch {
	}
}

func TestSubscribeSlowReaderCollapses(t *testing.T) {
	h := newHarness(t)
	exits := make(chan error)
	h.add(Service{ID: "a", Runner: exitRunner(exits)})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ch := h.sup.Subscribe(ctx) // not read for a while
	h.start("a")
	for range 40 { // 120 transitions
		h.waitState("a", Running, "")
		exits <- errors.New("x")
		h.waitState("a", Waiting, "restarting")
		h.clk.Advance(BackoffMax)
	}
	final := h.waitState("a", Running, "")
	var got []Status
	for st := range ch {
		got = append(got, st)
		if st.Restarts == final.Restarts && st.State == Running {
			break
		}
	}
	if len(got) > statusQueueMax+2 {
		t.Fatalf("%d statuses queued for a slow reader", len(got))
	}
}

func TestRunShutsDown(t *testing.T) {
	clk := clock.NewFake(epoch)
	sup := New(clk, nil, nil, nil)
	for _, id := range []string{"a", "b", "c"} {
		if err := sup.Add(Service{ID: id, Runner: untilStopped(id), Health: &HealthCheck{Check: func(context.Context) error { return nil }}}); err != nil {
			t.Fatal(err)
		}
	}
	if err := sup.StartAll(); err != nil {
		t.Fatal(err)
	}
	sub := sup.Subscribe(context.Background())
	ctx, cancel := context.WithCancel(context.Background())
	runDone := make(chan error, 1)
	go func() { runDone <- sup.Run(ctx) }()
	waitFor(t, "all running", func() bool {
		for _, st := range sup.List() {
			if st.State != Running {
				return false
			}
		}
		return true
	})
	cancel()
	select {
	case err := <-runDone:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Run did not return")
	}
	for _, st := range sup.List() {
		if st.State != Finished {
			t.Fatalf("%s is %s after Run", st.ID, st.State)
		}
	}
	if err := sup.Start("a"); !errors.Is(err, ErrClosed) {
		t.Fatalf("Start after Run = %v", err)
	}
	for range sub { // closed by the shutdown
	}
	if _, ok := <-sup.Subscribe(context.Background()); ok {
		t.Fatal("Subscribe after shutdown is open")
	}
}

func TestStopRightAfterStart(t *testing.T) {
	h := newHarness(t)
	ran := make(chan struct{}, 1)
	h.add(Service{ID: "svc", Runner: GoroutineRunner{Name: "svc", Func: func(ctx context.Context, _ io.Writer) error {
		ran <- struct{}{}
		<-ctx.Done()
		return nil
	}}})
	h.start("svc")
	if err := h.sup.Stop(context.Background(), "svc"); err != nil {
		t.Fatal(err)
	}
	st := h.status("svc")
	if st.State != Finished || st.Message != "stopped before start" || len(ran) != 0 {
		t.Fatalf("%s %q, ran %d", st.State, st.Message, len(ran))
	}
}
