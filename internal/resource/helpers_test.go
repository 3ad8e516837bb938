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

// expectNothingBefore creates marker, which ch watches, and checks that the next event
// of ch is its creation: a watch delivers in order, so an event pending on it would come
// first.
func expectNothingBefore(t testing.TB, s *Store, ch <-chan Event, marker Resource) {
	t.Helper()
	mustCreate(t, s, marker)
	if ev := recv(t, ch); ev.Type != Created || ev.Resource.Metadata().ID != marker.Metadata().ID {
		t.Fatalf("unexpected event %+v before the creation of the marker %s", ev, marker.Metadata().ID)
	}
}

func spec(r Resource) *hostSpec { return r.(*Typed[hostSpec]).TypedSpec() }
