package resource

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestCreateGet(t *testing.T) {
	s, clk := newTestStore()
	r := host("hostname", "node-1")
	r.Metadata().Owner = "HostnameController"
	mustCreate(t, s, r)
	if md := r.Metadata(); md.Version != 1 || !md.Created.Equal(epoch) || !md.Updated.Equal(epoch) || md.Phase != PhaseRunning {
		t.Errorf("caller metadata not synced: %+v", md)
	}
	clk.Advance(time.Second)
	got, err := s.Get("network", "Hostnames", "hostname")
	if err != nil {
		t.Fatal(err)
	}
	if md := got.Metadata(); md.Version != 1 || md.Owner != "HostnameController" || !md.Created.Equal(epoch) {
		t.Errorf("stored metadata %+v", md)
	}
	if spec(got).Hostname != "node-1" {
		t.Errorf("spec %+v", spec(got))
	}

	err = s.Create(host("hostname", "other"))
	if !errors.Is(err, ErrAlreadyExists) || !strings.Contains(err.Error(), "Hostnames network/hostname") {
		t.Errorf("duplicate Create: %v", err)
	}
	_, err = s.Get("network", "Hostnames", "missing")
	if !errors.Is(err, ErrNotFound) || !strings.Contains(err.Error(), "missing") {
		t.Errorf("Get missing: %v", err)
	}
	_, err = s.Get("other", "Hostnames", "hostname")
	if !errors.Is(err, ErrNotFound) {
		t.Errorf("Get in another namespace: %v", err)
	}
}

func TestInvalidArguments(t *testing.T) {
	s, _ := newTestStore()
	for _, err := range []error{
		s.Create(New("", "T", "id", 1)),
		s.Create(New("ns", "", "id", 1)),
		s.Create(New("ns", "T", "", 1)),
		s.Update(New("ns", "T", "", 1)),
		s.Destroy("ns", "T", "", ""),
		func() error { _, err := s.Get("ns", "", "id"); return err }(),
		func() error { _, err := s.List("", "T"); return err }(),
		func() error { _, err := s.Watch(t.Context(), "ns", "", WatchOptions{}); return err }(),
		func() error { _, err := s.WatchID(t.Context(), "ns", "T", ""); return err }(),
	} {
		if !errors.Is(err, ErrInvalid) {
			t.Errorf("got %v, want ErrInvalid", err)
		}
	}
	mustCreate(t, s, New("ns", "T", "id", 1))
	wrong := New("ns", "T", "id", "a string")
	wrong.Metadata().Version = 1
	if err := s.Update(wrong); !errors.Is(err, ErrInvalid) {
		t.Errorf("update with another Go type: %v", err)
	}
}

func TestUpdateVersions(t *testing.T) {
	s, clk := newTestStore()
	mustCreate(t, s, host("h", "a"))

	r, _ := s.Get("network", "Hostnames", "h")
	stale, _ := s.Get("network", "Hostnames", "h")
	spec(r).Hostname = "b"
	clk.Advance(time.Minute)
	if err := s.Update(r); err != nil {
		t.Fatal(err)
	}
	if md := r.Metadata(); md.Version != 2 || !md.Updated.Equal(epoch.Add(time.Minute)) || !md.Created.Equal(epoch) {
		t.Errorf("caller metadata after update: %+v", md)
	}
	spec(stale).Hostname = "c"
	err := s.Update(stale)
	if !errors.Is(err, ErrConflict) || !strings.Contains(err.Error(), "stored version is 2") {
		t.Errorf("stale update: %v", err)
	}
	// The caller's resource keeps working for the next update.
	spec(r).Hostname = "d"
	if err := s.Update(r); err != nil {
		t.Fatal(err)
	}
	got, _ := s.Get("network", "Hostnames", "h")
	if got.Metadata().Version != 3 || spec(got).Hostname != "d" {
		t.Errorf("got %+v %+v", got.Metadata(), spec(got))
	}
	if err := s.Update(host("missing", "x")); !errors.Is(err, ErrNotFound) {
		t.Errorf("update of a missing resource: %v", err)
	}
}

func TestOwnerMismatch(t *testing.T) {
	s, _ := newTestStore()
	r := host("h", "a")
	r.Metadata().Owner = "A"
	mustCreate(t, s, r)

	r.Metadata().Owner = "B"
	if err := s.Update(r); !errors.Is(err, ErrOwnerMismatch) {
		t.Errorf("update by another owner: %v", err)
	}
	if err := s.Destroy("network", "Hostnames", "h", "B"); !errors.Is(err, ErrOwnerMismatch) || !strings.Contains(err.Error(), `"A"`) {
		t.Errorf("destroy by another owner: %v", err)
	}
	if err := s.Destroy("network", "Hostnames", "h", ""); !errors.Is(err, ErrOwnerMismatch) {
		t.Errorf("destroy with empty owner: %v", err)
	}
	if err := s.Destroy("network", "Hostnames", "h", "A"); err != nil {
		t.Fatal(err)
	}
	if err := s.Destroy("network", "Hostnames", "h", "A"); !errors.Is(err, ErrNotFound) {
		t.Errorf("second destroy: %v", err)
	}
	if _, err := s.Get("network", "Hostnames", "h"); !errors.Is(err, ErrNotFound) {
		t.Errorf("get after destroy: %v", err)
	}
	// After destruction the ID can be created again, from version 1.
	r2 := host("h", "again")
	mustCreate(t, s, r2)
	if r2.Metadata().Version != 1 {
		t.Errorf("version after re-creation: %d", r2.Metadata().Version)
	}
}

func TestTeardownPhase(t *testing.T) {
	s, _ := newTestStore()
	r := host("h", "a")
	r.Metadata().Owner = "A"
	mustCreate(t, s, r)

	if err := s.Teardown("network", "Hostnames", "h", "B"); !errors.Is(err, ErrOwnerMismatch) {
		t.Errorf("teardown by another owner: %v", err)
	}
	if err := s.Teardown("network", "Hostnames", "nope", "A"); !errors.Is(err, ErrNotFound) {
		t.Errorf("teardown of a missing resource: %v", err)
	}
	if err := s.Teardown("network", "Hostnames", "h", "A"); err != nil {
		t.Fatal(err)
	}
	if err := s.Teardown("network", "Hostnames", "h", "A"); err != nil {
		t.Fatalf("second teardown: %v", err)
	}
	got, _ := s.Get("network", "Hostnames", "h")
	if got.Metadata().Phase != PhaseTearingDown || got.Metadata().Version != 2 {
		t.Errorf("after teardown: %+v", got.Metadata())
	}
	// Updating while tearing down is allowed, reviving is not.
	spec(got).Hostname = "b"
	if err := s.Update(got); err != nil {
		t.Fatalf("update in teardown: %v", err)
	}
	got.Metadata().Phase = PhaseRunning
	if err := s.Update(got); !errors.Is(err, ErrPhaseConflict) {
		t.Errorf("revive: %v", err)
	}
	td := host("x", "x")
	td.Metadata().Phase = PhaseTearingDown
	if err := s.Create(td); !errors.Is(err, ErrPhaseConflict) {
		t.Errorf("create tearing down: %v", err)
	}
}

func TestReturnedValuesAreCopies(t *testing.T) {
	s, _ := newTestStore()
	r := New("network", "Hostnames", "h", hostSpec{Hostname: "a", Aliases: []string{"x"}})
	r.Metadata().Labels = map[string]string{"k": "v"}
	mustCreate(t, s, r)
	// Mutating the argument after Create does not reach the store.
	r.TypedSpec().Aliases[0] = "mutated"
	r.Metadata().Labels["k"] = "mutated"

	g, _ := s.Get("network", "Hostnames", "h")
	spec(g).Aliases[0] = "mutated-get"
	g.Metadata().Labels["k"] = "mutated-get"
	g.Metadata().Version = 42
	l, _ := s.List("network", "Hostnames")
	spec(l[0]).Aliases[0] = "mutated-list"

	again, _ := s.Get("network", "Hostnames", "h")
	if spec(again).Aliases[0] != "x" || again.Metadata().Labels["k"] != "v" || again.Metadata().Version != 1 {
		t.Errorf("store was changed through a returned value: %+v %+v", again.Metadata(), spec(again))
	}

	// Mutating the argument after Update does not reach the store either.
	spec(again).Aliases[0] = "y"
	if err := s.Update(again); err != nil {
		t.Fatal(err)
	}
	spec(again).Aliases[0] = "mutated-after-update"
	final, _ := s.Get("network", "Hostnames", "h")
	if spec(final).Aliases[0] != "y" {
		t.Errorf("got %v", spec(final).Aliases)
	}
}

func TestListSortedByID(t *testing.T) {
	s, _ := newTestStore()
	ids := []string{"eth1", "bond0", "lo", "eth0", "eth10", "dummy0"}
	for _, i := range rand.Perm(len(ids)) {
		mustCreate(t, s, host(ids[i], ids[i]))
	}
	mustCreate(t, s, New("other", "Hostnames", "zzz", hostSpec{}))
	mustCreate(t, s, New("network", "Other", "aaa", hostSpec{}))
	got, err := s.List("network", "Hostnames")
	if err != nil {
		t.Fatal(err)
	}
	var gotIDs []string
	for _, r := range got {
		gotIDs = append(gotIDs, r.Metadata().ID)
	}
	if want := "bond0 dummy0 eth0 eth1 eth10 lo"; strings.Join(gotIDs, " ") != want {
		t.Errorf("List order %v, want %s", gotIDs, want)
	}
	empty, err := s.List("network", "Unknown")
	if err != nil || len(empty) != 0 {
		t.Errorf("List of an unknown type: %v, %v", empty, err)
	}
}

// TestConcurrentWriters runs writers that increment a shared counter with conflict retries,
// next to readers and a watcher, under the race detector.
func TestConcurrentWriters(t *testing.T) {
	s, _ := newTestStore(WithEventLogSize(100000))
	type counter struct{ N int }
	mustCreate(t, s, New("ns", "Counters", "c", counter{}))

	ch, err := s.WatchID(t.Context(), "ns", "Counters", "c")
	if err != nil {
		t.Fatal(err)
	}
	if ev := recv(t, ch); ev.Type != Created {
		t.Fatalf("first event %v", ev.Type)
	}
	if ev := recv(t, ch); ev.Type != Bootstrapped {
		t.Fatalf("second event %v", ev.Type)
	}

	const writers, perWriter = 8, 50
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			for range perWriter {
				for {
					r, err := s.Get("ns", "Counters", "c")
					if err != nil {
						t.Error(err)
						return
					}
					r.(*Typed[counter]).TypedSpec().N++
					err = s.Update(r)
					if err == nil {
						break
					}
					if !errors.Is(err, ErrConflict) {
						t.Error(err)
						return
					}
				}
			}
			// Each writer also owns a few resources of its own.
			for i := range 5 {
				if err := s.Create(New("ns", "Items", fmt.Sprintf("w%d-%d", w, i), counter{N: i})); err != nil {
					t.Error(err)
				}
			}
		})
		wg.Go(func() {
			for range perWriter {
				if _, err := s.List("ns", "Items"); err != nil {
					t.Error(err)
				}
				if _, err := s.Get("ns", "Counters", "c"); err != nil {
					t.Error(err)
				}
			}
		})
	}
	wg.Wait()

	got, _ := s.Get("ns", "Counters", "c")
	if n := got.(*Typed[counter]).TypedSpec().N; n != writers*perWriter {
		t.Errorf("counter = %d, want %d (lost updates)", n, writers*perWriter)
	}
	items, _ := s.List("ns", "Items")
	if len(items) != writers*5 {
		t.Errorf("%d items", len(items))
	}
	// The watcher saw every version in order.
	for v := uint64(2); v <= writers*perWriter+1; v++ {
		ev := recv(t, ch)
		if ev.Type != Updated || ev.Resource.Metadata().Version != v || ev.Old.Metadata().Version != v-1 {
			t.Fatalf("event %v version %d (old %v), want update to %d", ev.Type, ev.Resource.Metadata().Version, ev.Old, v)
		}
	}
}

func TestCounts(t *testing.T) {
	s, _ := newTestStore()
	if c := s.Counts(); len(c) != 0 {
		t.Errorf("empty store: %v", c)
	}
	mustCreate(t, s, host("a", "x"))
	mustCreate(t, s, host("b", "y"))
	mustCreate(t, s, New("config", "MachineConfigs", "active", 1))
	mustCreate(t, s, New("ns", "Gone", "id", 1))
	if err := s.Destroy("ns", "Gone", "id", ""); err != nil {
		t.Fatal(err)
	}
	want := []Count{{"config", "MachineConfigs", 1}, {"network", "Hostnames", 2}}
	if got := s.Counts(); !slices.Equal(got, want) {
		t.Errorf("Counts = %v, want %v (sorted, types left empty out)", got, want)
	}
}
