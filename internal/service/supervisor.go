package service

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/plinthos/plinth/internal/clock"
	"github.com/plinthos/plinth/internal/events"
	"github.com/plinthos/plinth/internal/logstore"
)

// ErrNotFound is returned for an unknown service ID.
var ErrNotFound = errors.New("service not found")

// ErrClosed is returned once the supervisor is shutting down.
var ErrClosed = errors.New("supervisor is shutting down")

// statusQueueMax is how many status changes may wait for a slow Subscribe reader before
// the waiting ones are collapsed to the latest status of each service.
const statusQueueMax = 64

// Supervisor runs services. Its methods are safe for concurrent use.
//
// Lifecycle: call Run in a goroutine of its own; when its context is cancelled it stops
// every service (StopAll), ends the Subscribe channels and returns once every goroutine
// the supervisor started has ended. The only exception is a runner (or a health check)
// that ignores the cancellation of its context: once a service is reported Failed "did
// not stop", its runner is abandoned.
type Supervisor struct {
	clk    clock.Clock
	logs   *logstore.Store
	events *events.Stream
	log    *slog.Logger

	mu       sync.Mutex
	svcs     map[string]*instance
	order    []string      // IDs in the order they were added
	changed  chan struct{} // closed and replaced on every state or health change
	subs     map[*statusSub]struct{}
	closed   bool          // no more starts
	shutdown bool          // subscribers ended
	stopped  chan struct{} // closed with shutdown

	wg sync.WaitGroup
}

type instance struct {
	svc       Service
	logw      io.Writer
	flush     func()
	state     State
	message   string
	since     time.Time
	restarts  int
	history   []Transition
	health    *HealthStatus
	gen       uint64 // number of the current run, to ignore late health results
	completed bool   // a one-shot run exited successfully
	loop      *loopHandle
}

// loopHandle is one started life of a service, from Start until it ends.
type loopHandle struct {
	cancel context.CancelFunc
	done   chan struct{}
	err    error // set before done is closed when the service did not stop
}

// New returns a supervisor. Runner output goes to logs (discarded when nil), state
// changes are published on events (when not nil) and logged to log (when not nil). A nil
// clk is the real clock.
func New(clk clock.Clock, logs *logstore.Store, events *events.Stream, log *slog.Logger) *Supervisor {
	if clk == nil {
		clk = clock.Real{}
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Supervisor{
		clk:     clk,
		logs:    logs,
		events:  events,
		log:     log,
		svcs:    make(map[string]*instance),
		changed: make(chan struct{}),
		subs:    make(map[*statusSub]struct{}),
		stopped: make(chan struct{}),
	}
}

// Add registers a service in state Initialized. Its ID must be new and a valid log name;
// its dependencies need not be known until it is started.
func (s *Supervisor) Add(svc Service) error {
	if err := logstore.ValidName(svc.ID); err != nil {
		return fmt.Errorf("add service: %w", err)
	}
	if svc.Runner == nil {
		return fmt.Errorf("add service %s: no runner", svc.ID)
	}
	svc.DependsOn = slices.Clone(svc.DependsOn)
	if svc.StopTimeout <= 0 {
		svc.StopTimeout = DefaultStopTimeout
		if g, ok := svc.Runner.(interface{ gracePeriod() time.Duration }); ok {
			svc.StopTimeout = max(svc.StopTimeout, g.gracePeriod()+stopTimeoutMargin)
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return fmt.Errorf("add service %s: %w", svc.ID, ErrClosed)
	}
	if _, ok := s.svcs[svc.ID]; ok {
		return fmt.Errorf("add service %s: a service with this ID exists already", svc.ID)
	}
	inst := &instance{svc: svc, logw: io.Discard, flush: func() {}, state: Initialized, message: "added", since: s.clk.Now()}
	if s.logs != nil {
		l := s.logs.Log(svc.ID)
		inst.logw = l
		inst.flush = func() { _ = l.Flush() }
	}
	s.svcs[svc.ID] = inst
	s.order = append(s.order, svc.ID)
	return nil
}

// Start starts a service: it goes through Preparing and Waiting to Running in the
// background. Starting a service that is already started (and has not ended) does
// nothing. It fails for an unknown service, an unknown dependency or a dependency cycle.
func (s *Supervisor) Start(id string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	inst, err := s.startableLocked(id)
	if err != nil {
		return err
	}
	if inst.loop == nil {
		s.startLocked(inst)
	}
	return nil
}

// StartAll starts every service that is not started, after checking that all
// dependencies are known and that there is no dependency cycle (the error names it).
func (s *Supervisor) StartAll() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return ErrClosed
	}
	if err := s.checkDepsLocked(s.order); err != nil {
		return err
	}
	for _, id := range s.topoOrderLocked() {
		if inst := s.svcs[id]; inst.loop == nil {
			s.startLocked(inst)
		}
	}
	return nil
}

// Stop stops a service: it cancels the runner's context and waits up to the service's
// StopTimeout for it to return. A runner that does not return in time leaves the service
// Failed "did not stop" and Stop returns an error. Stopping a service that is not started
// does nothing. If ctx ends first, Stop returns its error and the stop goes on in the
// background.
func (s *Supervisor) Stop(ctx context.Context, id string) error {
	s.mu.Lock()
	inst, ok := s.svcs[id]
	if !ok {
		s.mu.Unlock()
		return fmt.Errorf("stop service %s: %w", id, ErrNotFound)
	}
	h := inst.loop
	s.mu.Unlock()
	if h == nil {
		return nil
	}
	h.cancel()
	select {
	case <-h.done:
		return h.err
	case <-ctx.Done():
		return fmt.Errorf("stop service %s: %w", id, ctx.Err())
	}
}

// Restart stops the service (see Stop) and starts it again, counting a restart.
func (s *Supervisor) Restart(ctx context.Context, id string) error {
	if err := s.Stop(ctx, id); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	inst, err := s.startableLocked(id)
	if err != nil {
		return err
	}
	if inst.loop == nil {
		if inst.state != Initialized {
			inst.restarts++
		}
		s.startLocked(inst)
	}
	return nil
}

// StopAll stops every service in reverse dependency order: a service is stopped once the
// services that depend on it have stopped; independent services stop in parallel. It
// returns the errors of the services that did not stop. If ctx ends, the remaining stops
// are requested without waiting.
func (s *Supervisor) StopAll(ctx context.Context) error {
	s.mu.Lock()
	order := s.topoOrderLocked()
	pos := make(map[string]int, len(order))
	for i, id := range order {
		pos[id] = i
	}
	dependents := make(map[string][]string)
	for _, id := range order {
		for _, dep := range s.svcs[id].svc.DependsOn {
			if p, ok := pos[dep]; ok && p < pos[id] { // edges closing a cycle are ignored
				dependents[dep] = append(dependents[dep], id)
			}
		}
	}
	s.mu.Unlock()

	done := make(map[string]chan struct{}, len(order))
	for _, id := range order {
		done[id] = make(chan struct{})
	}
	var (
		wg   sync.WaitGroup
		emu  sync.Mutex
		errs []error
	)
	for _, id := range order {
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer close(done[id])
			for _, d := range dependents[id] {
				select {
				case <-done[d]:
				case <-ctx.Done():
				}
			}
			if err := s.Stop(ctx, id); err != nil {
				emu.Lock()
				errs = append(errs, err)
				emu.Unlock()
			}
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

// Run waits for ctx to be cancelled, then refuses new starts, stops every service
// (StopAll), ends the Subscribe channels, and returns once every goroutine of the
// supervisor has ended. It returns the errors of services that did not stop.
func (s *Supervisor) Run(ctx context.Context) error {
	<-ctx.Done()
	s.mu.Lock()
	s.closed = true
	s.mu.Unlock()
	err := s.StopAll(context.Background())
	s.mu.Lock()
	if !s.shutdown {
		s.shutdown = true
		close(s.stopped)
	}
	s.mu.Unlock()
	s.wg.Wait()
	return err
}

// Status returns the status of one service.
func (s *Supervisor) Status(id string) (Status, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	inst, ok := s.svcs[id]
	if !ok {
		return Status{}, fmt.Errorf("service %s: %w", id, ErrNotFound)
	}
	return s.statusLocked(inst), nil
}

// List returns the status of every service, in the order they were added.
func (s *Supervisor) List() []Status {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Status, 0, len(s.order))
	for _, id := range s.order {
		out = append(out, s.statusLocked(s.svcs[id]))
	}
	return out
}

// Subscribe returns a channel that first receives the current status of every service
// and then a status on every state change and every change of health, until ctx is
// cancelled or the supervisor shuts down; then it is closed.
//
// Slow readers never block the supervisor: up to 64 changes wait for the reader; beyond
// that the waiting changes are collapsed to the latest status of each service (whose
// History still records every transition).
func (s *Supervisor) Subscribe(ctx context.Context) <-chan Status {
	out := make(chan Status)
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.shutdown {
		close(out)
		return out
	}
	sub := &statusSub{wake: make(chan struct{}, 1)}
	for _, id := range s.order {
		sub.queue = append(sub.queue, s.statusLocked(s.svcs[id]))
	}
	s.subs[sub] = struct{}{}
	s.wg.Add(1)
	go s.deliver(ctx, sub, out)
	return out
}

type statusSub struct {
	queue []Status // guarded by Supervisor.mu
	wake  chan struct{}
}

func (s *Supervisor) deliver(ctx context.Context, sub *statusSub, out chan<- Status) {
	defer s.wg.Done()
	defer close(out)
	defer func() {
		s.mu.Lock()
		delete(s.subs, sub)
		s.mu.Unlock()
	}()
	for {
		s.mu.Lock()
		queue := sub.queue
		sub.queue = nil
		s.mu.Unlock()
		for _, st := range queue {
			select {
			case out <- st:
			case <-ctx.Done():
				return
			case <-s.stopped:
				return
			}
		}
		if len(queue) > 0 {
			continue
		}
		select {
		case <-sub.wake:
		case <-ctx.Done():
			return
		case <-s.stopped:
			return
		}
	}
}

// notifyLocked queues st for every subscriber. s.mu is held.
func (s *Supervisor) notifyLocked(st Status) {
	for sub := range s.subs {
		sub.queue = append(sub.queue, st)
		if len(sub.queue) > statusQueueMax {
			sub.queue = collapse(sub.queue)
		}
		select {
		case sub.wake <- struct{}{}:
		default:
		}
	}
}

// collapse keeps the latest status of each service, in the order of those latest ones.
func collapse(queue []Status) []Status {
	seen := make(map[string]bool)
	var out []Status
	for i := len(queue) - 1; i >= 0; i-- {
		if !seen[queue[i].ID] {
			seen[queue[i].ID] = true
			out = append(out, queue[i])
		}
	}
	slices.Reverse(out)
	return out
}

// startableLocked returns the service if it may be started. s.mu is held.
func (s *Supervisor) startableLocked(id string) (*instance, error) {
	if s.closed {
		return nil, fmt.Errorf("start service %s: %w", id, ErrClosed)
	}
	inst, ok := s.svcs[id]
	if !ok {
		return nil, fmt.Errorf("start service %s: %w", id, ErrNotFound)
	}
	if err := s.checkDepsLocked([]string{id}); err != nil {
		return nil, fmt.Errorf("start service %s: %w", id, err)
	}
	return inst, nil
}

// startLocked starts the life of a service. s.mu is held.
func (s *Supervisor) startLocked(inst *instance) {
	ctx, cancel := context.WithCancel(context.Background())
	h := &loopHandle{cancel: cancel, done: make(chan struct{})}
	inst.loop = h
	inst.completed = false
	s.transitionLocked(inst, Preparing, "starting")
	s.wg.Add(1)
	go s.runLoop(ctx, inst, h)
}

// checkDepsLocked checks that the services reachable from roots depend only on known
// services and form no cycle. s.mu is held.
func (s *Supervisor) checkDepsLocked(roots []string) error {
	const (
		visiting = 1
		visited  = 2
	)
	color := make(map[string]int)
	var stack []string
	var visit func(id string) error
	visit = func(id string) error {
		color[id] = visiting
		stack = append(stack, id)
		for _, dep := range s.svcs[id].svc.DependsOn {
			if _, ok := s.svcs[dep]; !ok {
				return fmt.Errorf("service %s depends on unknown service %s", id, dep)
			}
			switch color[dep] {
			case visiting:
				i := slices.Index(stack, dep)
				cycle := append(slices.Clone(stack[i:]), dep)
				return fmt.Errorf("dependency cycle: %s", strings.Join(cycle, " -> "))
			case 0:
				if err := visit(dep); err != nil {
					return err
				}
			}
		}
		stack = stack[:len(stack)-1]
		color[id] = visited
		return nil
	}
	for _, id := range roots {
		if color[id] == 0 {
			if err := visit(id); err != nil {
				return err
			}
		}
	}
	return nil
}

// topoOrderLocked returns every service ID, dependencies before their dependents; edges
// that would close a cycle and unknown dependencies are ignored. s.mu is held.
func (s *Supervisor) topoOrderLocked() []string {
	seen := make(map[string]bool, len(s.svcs))
	order := make([]string, 0, len(s.svcs))
	var visit func(id string)
	visit = func(id string) {
		seen[id] = true
		for _, dep := range s.svcs[id].svc.DependsOn {
			if _, ok := s.svcs[dep]; ok && !seen[dep] {
				visit(dep)
			}
		}
		order = append(order, id)
	}
	for _, id := range s.order {
		if !seen[id] {
			visit(id)
		}
	}
	return order
}

// transition changes the state of a service.
func (s *Supervisor) transition(inst *instance, to State, msg string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.transitionLocked(inst, to, msg)
}

// transitionLocked changes the state of a service, records it and tells everyone. s.mu
// is held.
func (s *Supervisor) transitionLocked(inst *instance, to State, msg string) {
	now := s.clk.Now()
	from := inst.state
	if len(inst.history) == HistoryLen {
		copy(inst.history, inst.history[1:])
		inst.history = inst.history[:HistoryLen-1]
	}
	inst.history = append(inst.history, Transition{Time: now, From: from, To: to, Message: msg})
	inst.state, inst.message, inst.since = to, msg, now
	if to != Running {
		inst.health = nil
	}
	s.broadcastLocked()
	s.notifyLocked(s.statusLocked(inst))
	if s.events != nil {
		s.events.Publish(events.Event{
			Time:    now,
			Type:    events.TypeService,
			Message: fmt.Sprintf("%s: %s: %s", inst.svc.ID, to, msg),
			Data:    map[string]string{"id": inst.svc.ID, "state": string(to)},
		})
	}
	level := slog.LevelInfo
	if to == Failed {
		level = slog.LevelWarn
	}
	s.log.Log(context.Background(), level, "service state changed", "service", inst.svc.ID, "from", string(from), "to", string(to), "message", msg)
}

// setMessageLocked changes the message of the current state without a transition. s.mu
// is held.
func (s *Supervisor) setMessageLocked(inst *instance, msg string) {
	inst.message = msg
	s.notifyLocked(s.statusLocked(inst))
}

// broadcastLocked wakes everyone waiting for a change. s.mu is held.
func (s *Supervisor) broadcastLocked() {
	close(s.changed)
	s.changed = make(chan struct{})
}

// statusLocked returns a snapshot of a service. s.mu is held.
func (s *Supervisor) statusLocked(inst *instance) Status {
	st := Status{
		ID:        inst.svc.ID,
		State:     inst.state,
		Message:   inst.message,
		Since:     inst.since,
		Runner:    inst.svc.Runner.String(),
		Restarts:  inst.restarts,
		DependsOn: slices.Clone(inst.svc.DependsOn),
		Protected: inst.svc.Protected,
		History:   slices.Clone(inst.history),
	}
	if inst.health != nil {
		h := *inst.health
		healthy := h.Healthy
		st.Health, st.Healthy = &h, &healthy
	}
	return st
}

// satisfiedLocked reports whether dependents of inst may start. s.mu is held.
func satisfiedLocked(inst *instance) bool {
	if inst.completed {
		return true
	}
	if inst.svc.Restart != RestartForever {
		// A one-shot task (an import, a setup step) is ready once it has finished, not
		// while it runs.
		return false
	}
	return inst.state == Running && (inst.svc.Health == nil || (inst.health != nil && inst.health.Healthy))
}

// pendingDepsLocked describes the dependencies of inst that are not satisfied. s.mu is
// held.
func (s *Supervisor) pendingDepsLocked(inst *instance) []string {
	var pending []string
	for _, id := range inst.svc.DependsOn {
		dep, ok := s.svcs[id]
		switch {
		case !ok:
			pending = append(pending, id+" (unknown)")
		case satisfiedLocked(dep):
		case dep.state == Running:
			pending = append(pending, id+" (not healthy yet)")
		default:
			pending = append(pending, fmt.Sprintf("%s (%s)", id, dep.state))
		}
	}
	return pending
}

// runLoop is the life of a started service, until it ends or is stopped.
func (s *Supervisor) runLoop(ctx context.Context, inst *instance, h *loopHandle) {
	defer s.wg.Done()
	defer func() {
		s.mu.Lock()
		if inst.loop == h {
			inst.loop = nil
		}
		s.mu.Unlock()
		h.cancel()
		close(h.done)
	}()
	svc := inst.svc
	if !s.waitDeps(ctx, inst) {
		s.transition(inst, Finished, "stopped before start")
		return
	}
	if svc.Condition != nil {
		err := svc.Condition(ctx)
		switch {
		case ctx.Err() != nil:
			s.transition(inst, Finished, "stopped before start")
			return
		case errors.Is(err, ErrSkip):
			s.transition(inst, Skipped, err.Error())
			return
		case err != nil:
			s.transition(inst, Failed, "start condition: "+err.Error())
			return
		}
	}

	backoff := BackoffMin
	for {
		started, stopped, err := s.runOnce(ctx, inst, h)
		if stopped {
			return
		}
		if s.clk.Now().Sub(started) >= BackoffReset {
			backoff = BackoffMin
		}
		policy := svc.Restart
		s.mu.Lock()
		if err == nil {
			inst.completed = policy != RestartForever
			s.transitionLocked(inst, Finished, "exited")
		} else {
			s.transitionLocked(inst, Failed, err.Error())
		}
		s.mu.Unlock()
		if policy == RestartOnce || (policy == RestartUntilSuccess && err == nil) {
			return
		}

		t := s.clk.NewTimer(backoff)
		s.transition(inst, Waiting, fmt.Sprintf("restarting in %s", backoff))
		select {
		case <-t.C():
		case <-ctx.Done():
		}
		if ctx.Err() != nil {
			t.Stop()
			s.transition(inst, Finished, "stopped")
			return
		}
		s.mu.Lock()
		inst.restarts++
		inst.completed = false
		s.mu.Unlock()
		backoff = min(2*backoff, BackoffMax)
	}
}

// waitDeps moves the service to Waiting and waits until its dependencies are satisfied;
// it returns false when stopped first.
func (s *Supervisor) waitDeps(ctx context.Context, inst *instance) bool {
	first := true
	for {
		s.mu.Lock()
		pending := s.pendingDepsLocked(inst)
		var msg string
		switch {
		case len(pending) > 0:
			msg = "waiting for " + strings.Join(pending, ", ")
		case inst.svc.Condition != nil:
			msg = "waiting for the start condition"
		default:
			msg = "dependencies ready"
		}
		if first {
			s.transitionLocked(inst, Waiting, msg)
			first = false
		} else if msg != inst.message {
			s.setMessageLocked(inst, msg)
		}
		changed := s.changed
		s.mu.Unlock()
		if ctx.Err() != nil {
			return false
		}
		if len(pending) == 0 {
			return true
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return false
		}
	}
}

// runOnce runs the runner once, with its health check. It returns when the run started
// and the runner's error; stopped is true when a stop was requested, in which case the final
// state is already set.
func (s *Supervisor) runOnce(ctx context.Context, inst *instance, h *loopHandle) (started time.Time, stopped bool, err error) {
	svc := inst.svc
	runCtx, runCancel := context.WithCancel(context.Background())
	defer runCancel()

	s.mu.Lock()
	inst.gen++
	gen := inst.gen
	s.transitionLocked(inst, Running, svc.Runner.String())
	started = inst.since
	s.mu.Unlock()

	healthCtx, healthCancel := context.WithCancel(runCtx)
	var healthDone chan struct{}
	if svc.Health != nil && svc.Health.Check != nil {
		healthDone = make(chan struct{})
		s.wg.Add(1)
		go s.runHealth(healthCtx, inst, gen, svc.Health, healthDone)
	}
	stopHealth := func() {
		healthCancel()
		if healthDone != nil {
			<-healthDone
		}
	}

	runDone := make(chan error, 1)
	go func() { runDone <- svc.Runner.Run(runCtx, inst.logw) }()
	select {
	case err = <-runDone:
		stopHealth()
		inst.flush()
		return started, false, err
	case <-ctx.Done():
	}

	stopHealth()
	s.transition(inst, Stopping, "stopping")
	runCancel()
	t := s.clk.NewTimer(svc.StopTimeout)
	select {
	case err = <-runDone:
		t.Stop()
		inst.flush()
		msg := "stopped"
		if err != nil && !errors.Is(err, context.Canceled) {
			msg += ": " + err.Error()
		}
		s.transition(inst, Finished, msg)
	case <-t.C():
		inst.flush()
		msg := fmt.Sprintf("did not stop within %s", svc.StopTimeout)
		h.err = fmt.Errorf("stop service %s: %s", svc.ID, msg)
		s.transition(inst, Failed, msg)
	}
	return started, true, nil
}

// runHealth runs the health checks of one run of a service until ctx is cancelled.
func (s *Supervisor) runHealth(ctx context.Context, inst *instance, gen uint64, hc *HealthCheck, done chan<- struct{}) {
	defer s.wg.Done()
	defer close(done)
	period := hc.Period
	if period <= 0 {
		period = DefaultHealthPeriod
	}
	timeout := hc.Timeout
	if timeout <= 0 {
		timeout = period
	}
	delay := hc.InitialDelay
	// Until a check passes, StartPeriod paces them, and failures before quiet ends are
	// not recorded.
	starting := hc.StartPeriod > 0
	quiet := s.clk.Now().Add(hc.InitialDelay + period)
	for {
		t := s.clk.NewTimer(delay)
		select {
		case <-t.C():
		case <-ctx.Done():
			t.Stop()
			return
		}
		err := s.check(ctx, hc.Check, timeout)
		if ctx.Err() != nil {
			return
		}
		if err == nil {
			starting = false
		}
		delay = period
		if starting {
			delay = hc.StartPeriod
			if s.clk.Now().Before(quiet) {
				continue
			}
		}
		s.setHealth(inst, gen, err)
	}
}

// check runs one health check bounded by timeout. A check that ignores the cancellation
// of its context is left behind.
func (s *Supervisor) check(ctx context.Context, check func(context.Context) error, timeout time.Duration) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	res := make(chan error, 1)
	go func() {
		defer func() {
			if p := recover(); p != nil {
				res <- fmt.Errorf("health check panicked: %v", p)
			}
		}()
		res <- check(ctx)
	}()
	t := s.clk.NewTimer(timeout)
	defer t.Stop()
	select {
	case err := <-res:
		return err
	case <-t.C():
		return fmt.Errorf("health check timed out after %s", timeout)
	case <-ctx.Done():
		return ctx.Err()
	}
}

// setHealth records the result of a health check of run gen.
func (s *Supervisor) setHealth(inst *instance, gen uint64, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if inst.gen != gen || inst.state != Running {
		return
	}
	healthy := err == nil
	msg := "ok"
	if err != nil {
		msg = err.Error()
	}
	if inst.health != nil && inst.health.Healthy == healthy {
		if inst.health.LastMessage != msg {
			inst.health.LastMessage = msg
			s.notifyLocked(s.statusLocked(inst))
		}
		return
	}
	now := s.clk.Now()
	inst.health = &HealthStatus{Healthy: healthy, LastMessage: msg, LastChange: now}
	s.broadcastLocked()
	s.notifyLocked(s.statusLocked(inst))
	word := "healthy"
	if !healthy {
		word = "unhealthy: " + msg
	}
	if s.events != nil {
		s.events.Publish(events.Event{
			Time:    now,
			Type:    events.TypeService,
			Message: fmt.Sprintf("%s: %s: %s", inst.svc.ID, inst.state, word),
			Data:    map[string]string{"id": inst.svc.ID, "state": string(inst.state), "healthy": fmt.Sprint(healthy)},
		})
	}
	s.log.Info("service health changed", "service", inst.svc.ID, "healthy", healthy, "message", msg)
}
