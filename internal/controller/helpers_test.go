package controller

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/plinthos/plinth/internal/clock"
	"github.com/plinthos/plinth/internal/resource"
)

const ns = "test"

// num is the spec of the test types X, Y and Z.
type num struct{ N int }

func newNum(typ, id string, n int) *resource.Typed[num] {
	return resource.New(ns, typ, id, num{N: n})
}

func numOf(r resource.Resource) int { return r.(*resource.Typed[num]).TypedSpec().N }

// funcController is a Controller made of fields.
type funcController struct {
	name    string
	inputs  []Input
	outputs []Output
	run     func(ctx context.Context, r Runtime, log *slog.Logger) error
}

func (c *funcController) Name() string      { return c.name }
func (c *funcController) Inputs() []Input   { return c.inputs }
func (c *funcController) Outputs() []Output { return c.outputs }
func (c *funcController) Run(ctx context.Context, r Runtime, log *slog.Logger) error {
	return c.run(ctx, r, log)
}

// reconcileLoop is the usual controller body: call reconcile on every signal until ctx ends.
func reconcileLoop(reconcile func(ctx context.Context, r Runtime) error) func(context.Context, Runtime, *slog.Logger) error {
	return func(ctx context.Context, r Runtime, _ *slog.Logger) error {
		for {
			select {
			case <-ctx.Done():
				return nil
			case <-r.EventCh():
			}
			if err := reconcile(ctx, r); err != nil {
				return err
			}
		}
	}
}

type fixture struct {
	store  *resource.Store
	clk    *clock.Fake
	engine *Engine
}

func newFixture() *fixture {
	clk := clock.NewFake(time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC))
	store := resource.NewStore(clk)
	return &fixture{store: store, clk: clk, engine: NewEngine(store, clk, slog.New(slog.DiscardHandler))}
}

// start runs the engine until the test ends (or stop is called) and checks that Run returns.
func (f *fixture) start(t *testing.T) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- f.engine.Run(ctx) }()
	stopped := false
	stop = func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Run returned %v", err)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("Engine.Run did not return after cancel")
		}
	}
	t.Cleanup(stop)
	return stop
}

func (f *fixture) status(t *testing.T, name string) ControllerStatus {
	t.Helper()
	for _, s := range f.engine.Status() {
		if s.Name == name {
			return s
		}
	}
	t.Fatalf("no status for %s", name)
	return ControllerStatus{}
}

// waitUntil polls cond; the timeout only bounds a broken test.
func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting until %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}
