package events

import (
	"context"
	"fmt"
	"strconv"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/plinthos/plinth/internal/clock"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

var start = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

func recv(t *testing.T, ch <-chan Event) Event {
	t.Helper()
	select {
	case e, ok := <-ch:
		if !ok {
			t.Fatal("subscription closed")
		}
		return e
	case <-time.After(5 * time.Second):
		t.Fatal("no event within 5s")
	}
	return Event{}
}

// expectNothingBefore publishes marker and checks that it is the next event of each
// channel: a subscription delivers in order, so an event pending on it would come first.
func expectNothingBefore(t *testing.T, s *Stream, marker Event, chs ...<-chan Event) {
	t.Helper()
	m := s.Publish(marker)
	for _, ch := range chs {
		if got := recv(t, ch); got.ID != m.ID {
			t.Fatalf("unexpected event %+v before the marker %q", got, m.Message)
		}
	}
}

func publishN(s *Stream, n int, actor string) []Event {
	var out []Event
	for i := range n {
		out = append(out, s.Publish(Event{ActorID: actor, Type: TypeTask, Message: fmt.Sprintf("%s %d", actor, i)}))
	}
	return out
}

func TestIDsIncreaseAndTimeIsSet(t *testing.T) {
	clk := clock.NewFake(start)
	s := New(10, clk)
	a := s.Publish(Event{Type: TypeService, Message: "a"})
	b := s.Publish(Event{Type: TypeService, Message: "b"}) // same fake time
	clk.Advance(time.Second)
	c := s.Publish(Event{Type: TypeService, Message: "c"})
	given := start.Add(-time.Hour)
	d := s.Publish(Event{Time: given, Message: "d"})
	if !(a.ID < b.ID && b.ID < c.ID && c.ID < d.ID) {
		t.Fatalf("IDs do not increase: %s %s %s %s", a.ID, b.ID, c.ID, d.ID)
	}
	for _, e := range []Event{a, b, c, d} {
		if len(e.ID) != 16 {
			t.Fatalf("ID %q is not 16 digits", e.ID)
		}
	}
	if n, _ := strconv.ParseUint(a.ID, 16, 64); n != uint64(start.UnixMicro()) {
		t.Fatalf("first ID %s is not the time in microseconds", a.ID)
	}
	if !a.Time.Equal(start) || !c.Time.Equal(start.Add(time.Second)) || !d.Time.Equal(given) {
		t.Fatalf("times %v %v %v", a.Time, c.Time, d.Time)
	}
	// A stream of a later boot (clock later) sorts after.
	later := New(10, clock.NewFake(start.Add(time.Minute))).Publish(Event{})
	if later.ID <= d.ID {
		t.Fatalf("later boot ID %s <= %s", later.ID, d.ID)
	}
}

func TestPublishCopiesData(t *testing.T) {
	s := New(10, clock.NewFake(start))
	data := map[string]string{"k": "v"}
	e := s.Publish(Event{Data: data})
	data["k"] = "changed"
	e.Data["k"] = "changed too"
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if got := recv(t, s.Subscribe(ctx, SubscribeOptions{TailEvents: -1})); got.Data["k"] != "v" {
		t.Fatalf("buffered data changed: %v", got.Data)
	}
}

func TestTail(t *testing.T) {
	s := New(5, clock.NewFake(start))
	all := publishN(s, 8, "x") // only the last 5 are buffered
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	none := s.Subscribe(ctx, SubscribeOptions{})
	two := s.Subscribe(ctx, SubscribeOptions{TailEvents: 2})
	every := s.Subscribe(ctx, SubscribeOptions{TailEvents: -1})
	many := s.Subscribe(ctx, SubscribeOptions{TailEvents: 100})

	for i := 6; i < 8; i++ {
		if got := recv(t, two); got.ID != all[i].ID {
			t.Fatalf("tail 2: got %q want %q", got.Message, all[i].Message)
		}
	}
	for _, ch := range []<-chan Event{every, many} {
		for i := 3; i < 8; i++ {
			if got := recv(t, ch); got.ID != all[i].ID {
				t.Fatalf("tail all: got %q want %q", got.Message, all[i].Message)
			}
		}
	}
	// The live event is the first that each subscription receives after its tail: none
	// receives nothing before it.
	live := s.Publish(Event{Message: "live"})
	for _, ch := range []<-chan Event{none, two, every, many} {
		if got := recv(t, ch); got.ID != live.ID {
			t.Fatalf("live: got %q", got.Message)
		}
	}
}

func TestActorFilter(t *testing.T) {
	s := New(100, clock.NewFake(start))
	a1 := s.Publish(Event{ActorID: "a", Message: "a1"})
	s.Publish(Event{ActorID: "b", Message: "b1"})
	a2 := s.Publish(Event{ActorID: "a", Message: "a2"})
	s.Publish(Event{ActorID: "b", Message: "b2"})
	s.Publish(Event{ActorID: "b", Message: "b3"})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ch := s.Subscribe(ctx, SubscribeOptions{TailEvents: 2, ActorID: "a"})
	if got := recv(t, ch); got.ID != a1.ID {
		t.Fatalf("got %q", got.Message)
	}
	if got := recv(t, ch); got.ID != a2.ID {
		t.Fatalf("got %q", got.Message)
	}
	s.Publish(Event{ActorID: "b", Message: "b4"})
	a3 := s.Publish(Event{ActorID: "a", Message: "a3"})
	if got := recv(t, ch); got.ID != a3.ID {
		t.Fatalf("got %q", got.Message)
	}
	s.Publish(Event{ActorID: "b", Message: "b5"})
	expectNothingBefore(t, s, Event{ActorID: "a", Message: "a marker"}, ch)
}

func TestSinceID(t *testing.T) {
	s := New(10, clock.NewFake(start))
	all := publishN(s, 6, "x")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ch := s.Subscribe(ctx, SubscribeOptions{SinceID: all[3].ID, TailEvents: 1})
	for i := 4; i < 6; i++ {
		if got := recv(t, ch); got.ID != all[i].ID {
			t.Fatalf("got %q want %q", got.Message, all[i].Message)
		}
	}
	// The newest ID: only live events.
	latest := s.Subscribe(ctx, SubscribeOptions{SinceID: all[5].ID})
	expectNothingBefore(t, s, Event{Message: "marker"}, ch, latest)
	// Older than everything buffered: all of them.
	old := s.Subscribe(ctx, SubscribeOptions{SinceID: "0"})
	if got := recv(t, old); got.ID != all[0].ID {
		t.Fatalf("got %q", got.Message)
	}
	e := s.Publish(Event{Message: "new"})
	if got := recv(t, latest); got.ID != e.ID {
		t.Fatalf("got %q", got.Message)
	}
}

func TestSlowSubscriber(t *testing.T) {
	s := New(100, clock.NewFake(start))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ch := s.Subscribe(ctx, SubscribeOptions{})
	done := make(chan []Event)
	go func() { done <- publishN(s, 10000, "p") }()
	var all []Event
	select {
	case all = <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("publisher blocked by a subscriber that does not read")
	}
	// What fitted into the channel, then the marker, then the last buffered events.
	var got []Event
	for {
		e := recv(t, ch)
		got = append(got, e)
		if e.ID == all[len(all)-1].ID {
			break
		}
	}
	// A marker can come early too, if the publisher overtook the subscriber between two
	// batches; every event is either received or counted as dropped.
	var marker *Event
	dropped, received := 0, 0
	for i := range got {
		if got[i].Type == TypeDropped {
			marker = &got[i]
			n, _ := strconv.Atoi(marker.Data["count"])
			dropped += n
			continue
		}
		received++
		if i > 0 && got[i].ID <= got[i-1].ID {
			t.Fatalf("out of order: %s after %s", got[i].ID, got[i-1].ID)
		}
	}
	if marker == nil {
		t.Fatal("no dropped marker")
	}
	if dropped+received != len(all) {
		t.Fatalf("received %d events and %d dropped, published %d", received, dropped, len(all))
	}
	// Resuming after the marker's ID continues right after the gap.
	resumed := s.Subscribe(ctx, SubscribeOptions{SinceID: marker.ID})
	if e := recv(t, resumed); e.Type == TypeDropped || e.ID <= marker.ID {
		t.Fatalf("resume got %+v", e)
	}
}

func TestCancelClosesSubscription(t *testing.T) {
	s := New(10, clock.NewFake(start))
	ctx, cancel := context.WithCancel(context.Background())
	ch := s.Subscribe(ctx, SubscribeOptions{})
	publishN(s, 3, "x")
	cancel()
	deadline := time.After(5 * time.Second)
	for {
		select {
		case _, ok := <-ch:
			if !ok {
				s.mu.Lock()
				n := len(s.subs)
				s.mu.Unlock()
				if n != 0 {
					t.Fatalf("%d subscribers left", n)
				}
				return
			}
		case <-deadline:
			t.Fatal("not closed after cancel")
		}
	}
}

func TestNewActorID(t *testing.T) {
	a, b := NewActorID(), NewActorID()
	if a == b || len(a) != 32 {
		t.Fatalf("actor IDs %q %q", a, b)
	}
}
