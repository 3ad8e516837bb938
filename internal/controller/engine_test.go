package controller

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"strings"
	"testing"

	"github.com/plinthos/plinth/internal/resource"
	"go.uber.org/goleak"
)

// mapController reads every resource of type in and writes one resource of type out per
// input, with N = f(input N), and removes the outputs whose input is gone.
func mapController(name, in, out string, f func(int) int) *funcController {
	return &funcController{
		name:    name,
		inputs:  []Input{{Namespace: ns, Type: in}},
		outputs: []Output{{Type: out}},
		run: reconcileLoop(func(ctx context.Context, r Runtime) error {
			items, err := r.List(ns, in)
			if err != nil {
				return err
			}
			touched := map[string]bool{}
			for _, item := range items {
				n := f(numOf(item))
				err := r.Modify(ctx, newNum(out, item.Metadata().ID, 0), func(res resource.Resource) error {
					res.(*resource.Typed[num]).TypedSpec().N = n
					return nil
				})
				if err != nil {
					return err
				}
				touched[item.Metadata().ID] = true
			}
			return r.Cleanup(ns, out, func(res resource.Resource) bool { return touched[res.Metadata().ID] })
		}),
	}
}

// snapshot returns id -> N of the resources of typ.
func snapshot(t *testing.T, f *fixture, typ string) map[string]int {
	t.Helper()
	items, err := f.store.List(ns, typ)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]int{}
	for _, r := range items {
		out[r.Metadata().ID] = numOf(r)
	}
	return out
}

func waitFor(t *testing.T, f *fixture, typ string, want map[string]int) {
	t.Helper()
	waitUntil(t, fmt.Sprintf("%s == %v", typ, want), func() bool { return maps.Equal(snapshot(t, f, typ), want) })
}

func TestPipelineConverges(t *testing.T) {
	f := newFixture()
	if err := f.engine.Register(mapController("A", "X", "Y", func(n int) int { return n * 2 })); err != nil {
		t.Fatal(err)
	}
	if err := f.engine.Register(mapController("B", "Y", "Z", func(n int) int { return n + 1 })); err != nil {
		t.Fatal(err)
	}
	// One input exists before the start: the initial signal must pick it up.
	if err := f.store.Create(newNum("X", "a", 1)); err != nil {
		t.Fatal(err)
	}
	f.start(t)
	if err := f.store.Create(newNum("X", "b", 2)); err != nil {
		t.Fatal(err)
	}
	waitFor(t, f, "Z", map[string]int{"a": 3, "b": 5})

	a, _ := f.store.Get(ns, "X", "a")
	a.(*resource.Typed[num]).TypedSpec().N = 10
	if err := f.store.Update(a); err != nil {
		t.Fatal(err)
	}
	waitFor(t, f, "Z", map[string]int{"a": 21, "b": 5})

	if err := f.store.Destroy(ns, "X", "b", ""); err != nil {
		t.Fatal(err)
	}
	waitFor(t, f, "Z", map[string]int{"a": 21})
	waitFor(t, f, "Y", map[string]int{"a": 20})

	y, _ := f.store.Get(ns, "Y", "a")
	z, _ := f.store.Get(ns, "Z", "a")
	if y.Metadata().Owner != "A" || z.Metadata().Owner != "B" {
		t.Errorf("owners: Y %q, Z %q", y.Metadata().Owner, z.Metadata().Owner)
	}
	for _, s := range f.engine.Status() {
		if !s.Running || s.Restarts != 0 || s.LastError != "" {
			t.Errorf("status %+v", s)
		}
	}
}

func TestInputByID(t *testing.T) {
	f := newFixture()
	reconciles := make(chan int, 100)
	c := &funcController{
		name:    "one",
		inputs:  []Input{{Namespace: ns, Type: "X", ID: "watched"}},
		outputs: []Output{{Type: "Y"}},
		run: reconcileLoop(func(ctx context.Context, r Runtime) error {
			res, err := r.Get(ns, "X", "watched")
			n := -1
			if err == nil {
				n = numOf(res)
			}
			reconciles <- n
			return nil
		}),
	}
	if err := f.engine.Register(c); err != nil {
		t.Fatal(err)
	}
	f.start(t)
	if n := <-reconciles; n != -1 {
		t.Fatalf("initial reconcile saw %d", n)
	}
	if err := f.store.Create(newNum("X", "watched", 7)); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, "the controller sees the watched resource", func() bool { return <-reconciles == 7 })
}

func TestRegisterValidation(t *testing.T) {
	f := newFixture()
	noop := func(context.Context, Runtime, *slog.Logger) error { return nil }
	ctrl := func(name string, outputs ...string) *funcController {
		c := &funcController{name: name, run: noop, inputs: []Input{{Namespace: ns, Type: "X"}}}
		for _, o := range outputs {
			c.outputs = append(c.outputs, Output{Type: o})
		}
		return c
	}
	if err := f.engine.Register(ctrl("LinkController", "Links")); err != nil {
		t.Fatal(err)
	}

	err := f.engine.Register(ctrl("OtherLinkController", "Addresses", "Links"))
	if !errors.Is(err, ErrOutputTaken) || !strings.Contains(err.Error(), "LinkController") || !strings.Contains(err.Error(), "OtherLinkController") || !strings.Contains(err.Error(), "Links") {
		t.Errorf("second owner of Links: %v", err)
	}
	// The refused controller did not take Addresses either.
	if err := f.engine.Register(ctrl("AddressController", "Addresses")); err != nil {
		t.Errorf("Addresses after a refused registration: %v", err)
	}
	if err := f.engine.Register(ctrl("LinkController", "Routes")); !errors.Is(err, ErrDuplicateName) {
		t.Errorf("duplicate name: %v", err)
	}
	for _, bad := range []*funcController{
		ctrl(""),
		ctrl("dup-output", "R", "R"),
		ctrl("empty-output", ""),
		{name: "bad-input", run: noop, inputs: []Input{{Type: "X"}}},
	} {
		if err := f.engine.Register(bad); !errors.Is(err, ErrInvalidController) {
			t.Errorf("Register(%s): %v", bad.name, err)
		}
	}

	stop := f.start(t)
	waitUntil(t, "the engine runs", func() bool {
		f.engine.mu.Lock()
		defer f.engine.mu.Unlock()
		return f.engine.running
	})
	if err := f.engine.Register(ctrl("late", "Late")); !errors.Is(err, ErrEngineRunning) {
		t.Errorf("Register while running: %v", err)
	}
	if err := f.engine.Run(context.Background()); !errors.Is(err, ErrEngineRunning) {
		t.Errorf("second Run: %v", err)
	}
	stop()
}

// TestCancelStopsEverything cancels an engine with a reconciling controller, a controller
// waiting to restart and a finished one, and checks that nothing is left behind.
func TestCancelStopsEverything(t *testing.T) {
	f := newFixture()
	for _, c := range []Controller{
		mapController("A", "X", "Y", func(n int) int { return n }),
		&funcController{name: "failing", outputs: []Output{{Type: "F"}}, run: func(context.Context, Runtime, *slog.Logger) error {
			return errors.New("always")
		}},
		&funcController{name: "done", run: func(context.Context, Runtime, *slog.Logger) error { return nil }},
		&funcController{name: "waiting", inputs: []Input{{Namespace: ns, Type: "Y", ID: "a"}}, run: func(ctx context.Context, r Runtime, _ *slog.Logger) error {
			_, err := r.WatchFor(ctx, ns, "Never", "x", nil)
			return err
		}},
	} {
		if err := f.engine.Register(c); err != nil {
			t.Fatal(err)
		}
	}
	stop := f.start(t)
	if err := f.store.Create(newNum("X", "a", 1)); err != nil {
		t.Fatal(err)
	}
	waitFor(t, f, "Y", map[string]int{"a": 1})
	waitUntil(t, "the failing controller waits for its restart", func() bool { return f.clk.Pending() == 1 })
	waitUntil(t, "the finished controller stopped", func() bool {
		s := f.status(t, "done")
		return !s.Running && s.Restarts == 0 && s.LastError == ""
	})

	stop()
	if n := f.clk.Pending(); n != 0 {
		t.Errorf("%d timers left after cancel", n)
	}
	for _, s := range f.engine.Status() {
		if s.Running {
			t.Errorf("%s still running", s.Name)
		}
	}
	goleak.VerifyNone(t)
}

func TestRunWithCancelledContextReturns(t *testing.T) {
	f := newFixture()
	if err := f.engine.Register(mapController("A", "X", "Y", func(n int) int { return n })); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := f.engine.Run(ctx); err != nil {
		t.Errorf("Run = %v", err)
	}
}
