package resource

import (
	"testing"
	"time"

	"github.com/plinthos/plinth/internal/clock"
)

var epoch = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

type hostSpec struct {
	Hostname string
	Aliases  []string
}

func newTestStore(opts ...StoreOption) (*Store, *clock.Fake) {
	clk := clock.NewFake(epoch)
	return NewStore(clk, opts...), clk
}

func host(id, name string) *Typed[hostSpec] {
	return New("network", "Hostnames", id, hostSpec{Hostname: name})
}

func mustCreate(t testing.TB, s *Store, r Resource) {
	t.Helper()
	if err := s.Create(r); err != nil {
		t.Fatal(err)
	}
}

// recv waits for the next event; the timeout only bounds a broken test.
func recv(t testing.TB, ch <-chan Event) Event {
	t.Helper()
	select {
	case ev, ok := <-ch:
		if !ok {
			t.Fatal("watch channel closed unexpectedly")
		}
		return ev
	case <-time.After(5 * time.Second):
		t.Fatal("timed out waiting for an event")
	}
	return Event{}
}

// expectClosed waits for the channel to close, discarding events.
func expectClosed(t testing.TB, ch <-chan Event) {
	t.Helper()
	deadline := time.After(5 * time.Second)
	for {
		select {
		case _, ok := <-ch:
			if !ok {
				return
			}
		case <-deadline:
			t.Fatal("watch channel not closed")
		}
	}
}

// expectQuiet checks that no event is ready right now.
func expectQuiet(t testing.TB, ch <-chan Event) {
	t.Helper()
	select {
	case ev, ok := <-ch:
		t.Fatalf("unexpected event %+v (open=%v)", ev, ok)
	case <-time.After(20 * time.Millisecond):
	}
}

func spec(r Resource) *hostSpec { return r.(*Typed[hostSpec]).TypedSpec() }
