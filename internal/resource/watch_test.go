package resource

import (
	"context"
	"fmt"
	"testing"
)

func TestWatchWithoutBootstrap(t *testing.T) {
	s, _ := newTestStore()
	mustCreate(t, s, host("before", "x"))
	ch, err := s.Watch(t.Context(), "network", "Hostnames", WatchOptions{})
	if err != nil {
		t.Fatal(err)
	}
	expectNothingBefore(t, s, ch, host("marker", "m")) // no event for what existed before

	r := host("h", "a")
	mustCreate(t, s, r)
	mustCreate(t, s, New("network", "Other", "h", hostSpec{})) // another type: not seen
	spec(r).Hostname = "b"
	if err := s.Update(r); err != nil {
		t.Fatal(err)
	}
	if err := s.Destroy("network", "Hostnames", "h", ""); err != nil {
		t.Fatal(err)
	}

	ev := recv(t, ch)
	if ev.Type != Created || ev.Resource.Metadata().ID != "h" || spec(ev.Resource).Hostname != "a" || ev.Old != nil {
		t.Errorf("created event %+v", ev)
	}
	ev = recv(t, ch)
	if ev.Type != Updated || spec(ev.Resource).Hostname != "b" || spec(ev.Old).Hostname != "a" || ev.Resource.Metadata().Version != 2 {
		t.Errorf("updated event %+v", ev)
	}
	ev = recv(t, ch)
	if ev.Type != Destroyed || spec(ev.Resource).Hostname != "b" {
		t.Errorf("destroyed event %+v", ev)
	}
	expectNothingBefore(t, s, ch, host("marker2", "m"))
}

func TestWatchBootstrap(t *testing.T) {
	s, _ := newTestStore()
	for _, id := range []string{"c", "a", "b"} {
		mustCreate(t, s, host(id, id))
	}
	ch, err := s.Watch(t.Context(), "network", "Hostnames", WatchOptions{Bootstrap: true})
	if err != nil {
		t.Fatal(err)
	}
	mustCreate(t, s, host("d", "d"))
	for _, want := range []string{"a", "b", "c"} {
		ev := recv(t, ch)
		if ev.Type != Created || ev.Resource.Metadata().ID != want {
			t.Fatalf("bootstrap event %v %s, want created %s", ev.Type, ev.Resource.Metadata().ID, want)
		}
	}
	if ev := recv(t, ch); ev.Type != Bootstrapped || ev.Resource != nil {
		t.Fatalf("got %+v, want bootstrapped", ev)
	}
	if ev := recv(t, ch); ev.Type != Created || ev.Resource.Metadata().ID != "d" {
		t.Fatalf("got %+v, want created d", ev)
	}

	// Bootstrap of an empty type is just the marker.
	empty, err := s.Watch(t.Context(), "network", "Empty", WatchOptions{Bootstrap: true})
	if err != nil {
		t.Fatal(err)
	}
	if ev := recv(t, empty); ev.Type != Bootstrapped {
		t.Fatalf("got %v", ev.Type)
	}
}

func TestWatchID(t *testing.T) {
	s, _ := newTestStore()
	mustCreate(t, s, host("a", "a"))
	mustCreate(t, s, host("b", "b"))

	ch, err := s.WatchID(t.Context(), "network", "Hostnames", "b")
	if err != nil {
		t.Fatal(err)
	}
	if ev := recv(t, ch); ev.Type != Created || ev.Resource.Metadata().ID != "b" {
		t.Fatalf("got %+v", ev)
	}
	if ev := recv(t, ch); ev.Type != Bootstrapped {
		t.Fatalf("got %+v", ev)
	}
	a, _ := s.Get("network", "Hostnames", "a")
	spec(a).Hostname = "a2"
	if err := s.Update(a); err != nil {
		t.Fatal(err)
	}
	if err := s.Destroy("network", "Hostnames", "b", ""); err != nil {
		t.Fatal(err)
	}
	if ev := recv(t, ch); ev.Type != Destroyed || ev.Resource.Metadata().ID != "b" {
		t.Fatalf("got %+v", ev)
	}
	// Nothing of a, nothing more of b: the next event is b's creation again.
	expectNothingBefore(t, s, ch, host("b", "b again"))

	// A missing resource: only the marker, then its creation.
	missing, err := s.WatchID(t.Context(), "network", "Hostnames", "later")
	if err != nil {
		t.Fatal(err)
	}
	if ev := recv(t, missing); ev.Type != Bootstrapped {
		t.Fatalf("got %+v", ev)
	}
	mustCreate(t, s, host("later", "l"))
	if ev := recv(t, missing); ev.Type != Created || ev.Resource.Metadata().ID != "later" {
		t.Fatalf("got %+v", ev)
	}
}

func TestWatchCancelClosesChannel(t *testing.T) {
	s, _ := newTestStore()
	ctx, cancel := context.WithCancel(t.Context())
	idle, err := s.Watch(ctx, "network", "Hostnames", WatchOptions{})
	if err != nil {
		t.Fatal(err)
	}
	byID, err := s.WatchID(ctx, "network", "Hostnames", "h")
	if err != nil {
		t.Fatal(err)
	}
	// A watcher blocked on a full channel must stop too.
	blocked, err := s.Watch(ctx, "network", "Hostnames", WatchOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for i := range watchChanBuffer + 10 {
		mustCreate(t, s, host(fmt.Sprint(i), "x"))
	}
	cancel()
	expectClosed(t, idle)
	expectClosed(t, byID)
	expectClosed(t, blocked)

	if _, err := s.Watch(ctx, "network", "Hostnames", WatchOptions{}); err == nil {
		t.Error("Watch with a cancelled context succeeded")
	}
}

func TestWatchEventsAreCopiesPerWatcher(t *testing.T) {
	s, _ := newTestStore()
	w1, _ := s.Watch(t.Context(), "network", "Hostnames", WatchOptions{})
	w2, _ := s.Watch(t.Context(), "network", "Hostnames", WatchOptions{})
	r := New("network", "Hostnames", "h", hostSpec{Aliases: []string{"x"}})
	mustCreate(t, s, r)
	e1 := recv(t, w1)
	spec(e1.Resource).Aliases[0] = "mutated"
	e2 := recv(t, w2)
	if spec(e2.Resource).Aliases[0] != "x" {
		t.Error("watchers share event values")
	}
	got, _ := s.Get("network", "Hostnames", "h")
	if spec(got).Aliases[0] != "x" {
		t.Error("an event value is shared with the store")
	}
}

// TestSlowWatcherOverflows checks the documented policy: a watcher that lags by more than the
// event log gets the events still available, in order, then Overflow, then a closed channel;
// the store does not wait for it, and other watchers lose nothing.
func TestSlowWatcherOverflows(t *testing.T) {
	const logSize = 4
	s, _ := newTestStore(WithEventLogSize(logSize))
	r := host("h", "v1")
	mustCreate(t, s, r)

	slow, _ := s.Watch(t.Context(), "network", "Hostnames", WatchOptions{})
	fast, _ := s.Watch(t.Context(), "network", "Hostnames", WatchOptions{})
	otherType, _ := s.Watch(t.Context(), "network", "Quiet", WatchOptions{})

	const updates = 100
	for i := range updates {
		spec(r).Hostname = fmt.Sprint("v", i+2)
		if err := s.Update(r); err != nil {
			t.Fatal(err)
		}
		// The fast watcher keeps up: it reads each event as it comes.
		ev := recv(t, fast)
		if ev.Type != Updated || ev.Resource.Metadata().Version != uint64(i+2) {
			t.Fatalf("fast watcher got %v v%d, want update to v%d", ev.Type, ev.Resource.Metadata().Version, i+2)
		}
	}

	// The slow watcher gets a gap-free prefix, then Overflow, then the channel closes.
	want := uint64(2)
	for {
		ev := recv(t, slow)
		if ev.Type == Overflow {
			break
		}
		if ev.Type != Updated || ev.Resource.Metadata().Version != want {
			t.Fatalf("slow watcher got %v v%d, want v%d", ev.Type, ev.Resource.Metadata().Version, want)
		}
		want++
	}
	if want > updates+1 {
		t.Fatalf("slow watcher received every event and still overflowed")
	}
	if _, ok := <-slow; ok {
		t.Fatal("channel not closed after Overflow")
	}

	// Changes to other types never overflow a watcher.
	mustCreate(t, s, New("network", "Quiet", "q", hostSpec{}))
	if ev := recv(t, otherType); ev.Type != Created {
		t.Fatalf("got %v", ev.Type)
	}

	// Recovery: watch again with bootstrap.
	again, _ := s.Watch(t.Context(), "network", "Hostnames", WatchOptions{Bootstrap: true})
	if ev := recv(t, again); ev.Type != Created || spec(ev.Resource).Hostname != fmt.Sprint("v", updates+1) {
		t.Fatalf("resync got %+v", ev)
	}
}
