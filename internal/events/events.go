// Package events is machined's bounded event stream: sequences, phases, tasks, services
// and configuration changes publish events; API clients subscribe to the buffered ones
// and to those that follow.
//
// IDs are 16 lowercase hexadecimal digits of a strictly increasing 64-bit number that
// starts from the clock's time in microseconds since the Unix epoch: IDs of one stream
// sort (as strings) in publication order, and IDs of a later boot sort after those of an
// earlier one as long as the clock does not go back.
//
// Publishing never waits for subscribers. The stream keeps the last capacity events in a
// ring; a subscriber reads from it at its own pace. A subscriber that falls so far behind
// that events it has not read yet left the ring receives one event of type TypeDropped,
// "... N events dropped ...", carrying the ID of the last event it missed (so that
// resuming with SinceID set to that ID continues after the gap), and then continues with
// the oldest event still buffered.
package events

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"maps"
	"strconv"
	"sync"
	"time"

	"github.com/plinthos/plinth/internal/clock"
)

// Event types used by machined.
const (
	TypeSequence = "sequence"
	TypePhase    = "phase"
	TypeTask     = "task"
	TypeService  = "service"
	TypeConfig   = "config"
	// TypeDropped marks events a slow subscriber missed; Data["count"] says how many.
	TypeDropped = "dropped"
)

// DefaultCapacity is the ring size used when New is given a capacity <= 0.
const DefaultCapacity = 1024

// Event is one thing that happened on the node.
type Event struct {
	// ID is set by Publish: monotonic and sortable as a string.
	ID string
	// Time is set by Publish when zero.
	Time time.Time
	// ActorID links the events caused by one request or sequence (see NewActorID).
	ActorID string
	// Type is what kind of thing happened: TypeSequence, TypeService, ...
	Type string
	// Message is the human-readable description.
	Message string
	// Data holds machine-readable details.
	Data map[string]string
}

// SubscribeOptions selects what a subscription receives.
type SubscribeOptions struct {
	// TailEvents is how many of the buffered (matching) events to deliver first: 0 none,
	// -1 all. Ignored when SinceID is set.
	TailEvents int
	// SinceID, when set, delivers the buffered events with an ID greater than it
	// (all buffered ones if it is older than the oldest), then the live ones.
	SinceID string
	// ActorID, when set, delivers only events of that actor.
	ActorID string
}

// Stream is a bounded, publish-subscribe event stream, safe for concurrent use.
type Stream struct {
	clk clock.Clock

	mu          sync.Mutex
	ring        []Event
	head, count int
	first, next uint64 // sequence numbers of the oldest and of the next event
	lastID      uint64
	lastEvicted string // ID of the newest event that left the ring
	subs        map[*subscriber]struct{}
}

// New returns a stream that buffers the last capacity events (DefaultCapacity when
// capacity <= 0), timed by clk (the real clock when nil).
func New(capacity int, clk clock.Clock) *Stream {
	if capacity <= 0 {
		capacity = DefaultCapacity
	}
	if clk == nil {
		clk = clock.Real{}
	}
	return &Stream{clk: clk, ring: make([]Event, capacity), subs: make(map[*subscriber]struct{})}
}

// NewActorID returns a random actor ID (32 hexadecimal digits).
func NewActorID() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read does not fail on Linux
	return hex.EncodeToString(b[:])
}

// Publish adds e to the stream, setting its ID, and its Time when zero, and returns it.
// The stream keeps its own copy of e.Data.
func (s *Stream) Publish(e Event) Event {
	now := s.clk.Now()
	if e.Time.IsZero() {
		e.Time = now
	}
	e.Data = maps.Clone(e.Data)
	s.mu.Lock()
	defer s.mu.Unlock()
	id := uint64(max(now.UnixMicro(), 0))
	if id <= s.lastID {
		id = s.lastID + 1
	}
	s.lastID = id
	e.ID = formatID(id)
	if s.count == len(s.ring) {
		s.lastEvicted = s.ring[s.head].ID
		s.ring[s.head] = Event{}
		s.head = (s.head + 1) % len(s.ring)
		s.count--
		s.first++
	}
	s.ring[(s.head+s.count)%len(s.ring)] = e
	s.count++
	s.next++
	for sub := range s.subs {
		select {
		case sub.wake <- struct{}{}:
		default:
		}
	}
	return cloneEvent(e)
}

func formatID(id uint64) string {
	s := strconv.FormatUint(id, 16)
	const width = 16
	if len(s) < width {
		s = "0000000000000000"[:width-len(s)] + s
	}
	return s
}

func cloneEvent(e Event) Event {
	e.Data = maps.Clone(e.Data)
	return e
}

// at returns the buffered event with sequence number seq. s.mu is held.
func (s *Stream) at(seq uint64) *Event {
	return &s.ring[(s.head+int(seq-s.first))%len(s.ring)]
}

type subscriber struct {
	wake chan struct{}
}

// subscribeBatch is how many events a subscriber copies out of the ring per lock.
const subscribeBatch = 64

// Subscribe returns a channel that receives the buffered events chosen by opts and then
// every new matching event, until ctx is cancelled; then the channel is closed. Slow
// subscribers never block publishers: see the package documentation.
func (s *Stream) Subscribe(ctx context.Context, opts SubscribeOptions) <-chan Event {
	out := make(chan Event, subscribeBatch)
	sub := &subscriber{wake: make(chan struct{}, 1)}
	s.mu.Lock()
	cursor := s.next
	switch {
	case opts.SinceID != "":
		cursor = s.first
		for cursor < s.next && s.at(cursor).ID <= opts.SinceID {
			cursor++
		}
	case opts.TailEvents < 0:
		cursor = s.first
	default:
		for n := 0; n < opts.TailEvents && cursor > s.first; {
			cursor--
			if matches(s.at(cursor), opts.ActorID) {
				n++
			}
		}
	}
	s.subs[sub] = struct{}{}
	s.mu.Unlock()
	go s.deliver(ctx, sub, cursor, opts.ActorID, out)
	return out
}

func matches(e *Event, actor string) bool {
	return actor == "" || e.ActorID == actor
}

func (s *Stream) deliver(ctx context.Context, sub *subscriber, cursor uint64, actor string, out chan<- Event) {
	defer close(out)
	defer func() {
		s.mu.Lock()
		delete(s.subs, sub)
		s.mu.Unlock()
	}()
	batch := make([]Event, 0, subscribeBatch)
	for {
		var marker *Event
		s.mu.Lock()
		if cursor < s.first {
			n := s.first - cursor
			marker = &Event{
				ID:      s.lastEvicted,
				Time:    s.clk.Now(),
				Type:    TypeDropped,
				Message: fmt.Sprintf("... %d events dropped ...", n),
				Data:    map[string]string{"count": strconv.FormatUint(n, 10)},
			}
			cursor = s.first
		}
		end := min(s.next, cursor+subscribeBatch)
		for ; cursor < end; cursor++ {
			if e := s.at(cursor); matches(e, actor) {
				batch = append(batch, cloneEvent(*e))
			}
		}
		caughtUp := cursor == s.next
		s.mu.Unlock()

		if marker != nil {
			select {
			case out <- *marker:
			case <-ctx.Done():
				return
			}
		}
		for i := range batch {
			select {
			case out <- batch[i]:
			case <-ctx.Done():
				return
			}
			batch[i] = Event{}
		}
		batch = batch[:0]
		if !caughtUp {
			continue
		}
		select {
		case <-sub.wake:
		case <-ctx.Done():
			return
		}
	}
}
