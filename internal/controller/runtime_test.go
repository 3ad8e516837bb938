package controller

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/plinthos/plinth/internal/resource"
)

func newTestRuntime(f *fixture, name string, outputs ...string) *runtime {
	var outs []Output
	for _, o := range outputs {
		outs = append(outs, Output{Type: o})
	}
	return newRuntime(name, f.store, f.clk, outs)
}

func setN(n int) func(resource.Resource) error {
	return func(r resource.Resource) error {
		r.(*resource.Typed[num]).TypedSpec().N = n
		return nil
	}
}

func TestWritesToUndeclaredOutputsAreRefused(t *testing.T) {
	f := newFixture()
	rt := newTestRuntime(f, "A", "Y")
	for _, err := range []error{
		rt.Create(newNum("Z", "a", 1)),
		rt.Modify(t.Context(), newNum("Z", "a", 0), setN(1)),
		rt.Destroy(ns, "Z", "a"),
		rt.Cleanup(ns, "Z", func(resource.Resource) bool { return false }),
	} {
		if !errors.Is(err, ErrUndeclaredOutput) {
			t.Errorf("got %v, want ErrUndeclaredOutput", err)
		}
	}
	if items, _ := f.store.List(ns, "Z"); len(items) != 0 {
		t.Errorf("a refused write reached the store: %v", items)
	}
	// Reads reach any type.
	if err := f.store.Create(newNum("Z", "z", 5)); err != nil {
		t.Fatal(err)
	}
	if r, err := rt.Get(ns, "Z", "z"); err != nil || numOf(r) != 5 {
		t.Errorf("Get: %v, %v", r, err)
	}
	if l, err := rt.List(ns, "Z"); err != nil || len(l) != 1 {
		t.Errorf("List: %v, %v", l, err)
	}
}

func TestWritesToResourcesOfOthersAreRefused(t *testing.T) {
	f := newFixture()
	rt := newTestRuntime(f, "A", "Y")
	// A resource of an output type written by someone else (a user through the API).
	if err := f.store.Create(newNum("Y", "user", 1)); err != nil {
		t.Fatal(err)
	}
	if err := rt.Modify(t.Context(), newNum("Y", "user", 0), setN(2)); !errors.Is(err, resource.ErrOwnerMismatch) {
		t.Errorf("Modify: %v", err)
	}
	if err := rt.Destroy(ns, "Y", "user"); !errors.Is(err, resource.ErrOwnerMismatch) {
		t.Errorf("Destroy: %v", err)
	}
	if err := rt.Create(newNum("Y", "mine", 1)); err != nil {
		t.Fatal(err)
	}
	// Cleanup only considers the controller's own resources.
	if err := rt.Cleanup(ns, "Y", func(resource.Resource) bool { return false }); err != nil {
		t.Fatal(err)
	}
	items, _ := f.store.List(ns, "Y")
	if len(items) != 1 || items[0].Metadata().ID != "user" || numOf(items[0]) != 1 {
		t.Errorf("after cleanup: %v", items)
	}
}

func TestModifyCreatesUpdatesAndSkipsNoops(t *testing.T) {
	f := newFixture()
	rt := newTestRuntime(f, "A", "Y")
	empty := newNum("Y", "a", 0)
	empty.Metadata().Owner = "someone else" // ignored: the controller owns what it writes
	if err := rt.Modify(t.Context(), empty, setN(1)); err != nil {
		t.Fatal(err)
	}
	if numOf(empty) != 0 {
		t.Error("Modify changed the template")
	}
	r, _ := f.store.Get(ns, "Y", "a")
	if numOf(r) != 1 || r.Metadata().Version != 1 || r.Metadata().Owner != "A" {
		t.Fatalf("created %+v N=%d", r.Metadata(), numOf(r))
	}
	if err := rt.Modify(t.Context(), empty, setN(2)); err != nil {
		t.Fatal(err)
	}
	if err := rt.Modify(t.Context(), empty, setN(2)); err != nil {
		t.Fatal(err)
	}
	r, _ = f.store.Get(ns, "Y", "a")
	if numOf(r) != 2 || r.Metadata().Version != 2 {
		t.Errorf("after update and no-op: version %d N=%d", r.Metadata().Version, numOf(r))
	}
	// Label changes count as changes.
	err := rt.Modify(t.Context(), empty, func(r resource.Resource) error {
		r.Metadata().Labels = map[string]string{"k": "v"}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if r, _ = f.store.Get(ns, "Y", "a"); r.Metadata().Version != 3 {
		t.Errorf("label change not written: %+v", r.Metadata())
	}

	boom := errors.New("boom")
	if err := rt.Modify(t.Context(), empty, func(resource.Resource) error { return boom }); !errors.Is(err, boom) {
		t.Errorf("mutate error: %v", err)
	}
	err = rt.Modify(t.Context(), newNum("Y", "b", 0), func(r resource.Resource) error {
		r.Metadata().ID = "elsewhere"
		return nil
	})
	if !errors.Is(err, resource.ErrInvalid) {
		t.Errorf("identity change: %v", err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if err := rt.Modify(ctx, empty, setN(9)); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled Modify: %v", err)
	}
}

func TestModifyRetriesConflicts(t *testing.T) {
	f := newFixture()
	rt := newTestRuntime(f, "A", "Y")
	if err := rt.Create(newNum("Y", "a", 1)); err != nil {
		t.Fatal(err)
	}
	calls := 0
	err := rt.Modify(t.Context(), newNum("Y", "a", 0), func(r resource.Resource) error {
		calls++
		if calls == 1 {
			// Another writer gets in between the read and the write.
			other, _ := f.store.Get(ns, "Y", "a")
			other.(*resource.Typed[num]).TypedSpec().N = 100
			if err := f.store.Update(other); err != nil {
				t.Fatal(err)
			}
		}
		r.(*resource.Typed[num]).TypedSpec().N++
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	r, _ := f.store.Get(ns, "Y", "a")
	if calls != 2 || numOf(r) != 101 || r.Metadata().Version != 3 {
		t.Errorf("calls=%d N=%d version=%d, want a retry on top of the other write", calls, numOf(r), r.Metadata().Version)
	}

	// A resource created between the read and the create is retried as an update.
	calls = 0
	err = rt.Modify(t.Context(), newNum("Y", "new", 0), func(r resource.Resource) error {
		calls++
		if calls == 1 {
			if err := rt.Create(newNum("Y", "new", 50)); err != nil {
				t.Fatal(err)
			}
		}
		r.(*resource.Typed[num]).TypedSpec().N++
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if r, _ := f.store.Get(ns, "Y", "new"); calls != 2 || numOf(r) != 51 {
		t.Errorf("calls=%d N=%d", calls, numOf(r))
	}

	// A writer that always wins: Modify gives up with the conflict.
	err = rt.Modify(t.Context(), newNum("Y", "a", 0), func(r resource.Resource) error {
		other, _ := f.store.Get(ns, "Y", "a")
		other.(*resource.Typed[num]).TypedSpec().N++
		if err := f.store.Update(other); err != nil {
			t.Fatal(err)
		}
		r.(*resource.Typed[num]).TypedSpec().N = -1
		return nil
	})
	if !errors.Is(err, resource.ErrConflict) {
		t.Errorf("endless conflicts: %v", err)
	}
}

func TestWatchFor(t *testing.T) {
	f := newFixture()
	rt := newTestRuntime(f, "A")
	got := make(chan resource.Resource, 1)
	go func() {
		r, err := rt.WatchFor(t.Context(), ns, "X", "a", func(r resource.Resource) bool { return numOf(r) >= 3 })
		if err != nil {
			t.Error(err)
		}
		got <- r
	}()
	x := newNum("X", "a", 1)
	if err := f.store.Create(x); err != nil {
		t.Fatal(err)
	}
	for n := 2; n <= 4; n++ {
		x.TypedSpec().N = n
		if err := f.store.Update(x); err != nil {
			t.Fatal(err)
		}
	}
	select {
	case r := <-got:
		if numOf(r) < 3 {
			t.Errorf("WatchFor returned N=%d, which does not match", numOf(r))
		}
	case <-time.After(5 * time.Second):
		t.Fatal("WatchFor did not return")
	}

	// Already true: returns at once.
	if r, err := rt.WatchFor(t.Context(), ns, "X", "a", nil); err != nil || numOf(r) != 4 {
		t.Errorf("WatchFor existing: %v, %v", r, err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if _, err := rt.WatchFor(ctx, ns, "X", "missing", nil); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled WatchFor: %v", err)
	}
}

func TestEventChCoalesces(t *testing.T) {
	f := newFixture()
	rt := newTestRuntime(f, "A")
	for range 5 {
		rt.signal()
	}
	<-rt.EventCh()
	select {
	case <-rt.EventCh():
		t.Error("signals were not coalesced")
	default:
	}
	if rt.Clock() != f.clk {
		t.Error("Clock is not the engine's clock")
	}
}
