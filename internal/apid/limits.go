package apid

import (
	"sync"
)

// Limits bound what one caller, and all callers together, can make apid and machined
// hold. Every call is a stream (apid forwards bytes), so they are counted as streams.
type Limits struct {
	// StreamsPerConnection is gRPC's limit of concurrent streams on one connection; a
	// client that opens more waits for one to end.
	StreamsPerConnection uint32
	// StreamsPerCaller is how many calls one client certificate may have open at once,
	// across all its connections (follow streams such as `logs -f` included); more are
	// refused with ResourceExhausted.
	StreamsPerCaller int
	// Streams is how many calls apid serves at once in all.
	Streams int
	// Remotes is how many connections to other nodes apid keeps; the least recently
	// used one is closed to make room.
	Remotes int
	// ConnectionsPerSource and Connections bound the client connections apid holds, from
	// one source address and in all; a connection over a limit is closed at once.
	ConnectionsPerSource, Connections int
}

// DefaultLimits are the limits apid runs with.
//
// A control plane forwards every call for one node over one connection, so the limit per
// connection equals the limit per node: a client that fills its own quota cannot fill a
// forwarding connection and stall other clients' calls to that node.
var DefaultLimits = Limits{StreamsPerConnection: 1024, StreamsPerCaller: 64, Streams: 1024, Remotes: 64,
	ConnectionsPerSource: 64, Connections: 1024}

// streamCounter counts open calls per caller and in all.
type streamCounter struct {
	limits Limits

	mu    sync.Mutex
	total int
	per   map[string]int
}

func newStreamCounter(l Limits) *streamCounter {
	return &streamCounter{limits: l, per: map[string]int{}}
}

// acquire counts a call of caller; it returns a release function, or ok false (and
// counts nothing) when a limit is reached. perCaller says which limit it was.
func (c *streamCounter) acquire(caller string) (release func(), perCaller, ok bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.per[caller] >= c.limits.StreamsPerCaller {
		return nil, true, false
	}
	if c.total >= c.limits.Streams {
		return nil, false, false
	}
	c.per[caller]++
	c.total++
	var once sync.Once
	return func() {
		once.Do(func() {
			c.mu.Lock()
			defer c.mu.Unlock()
			c.total--
			if c.per[caller]--; c.per[caller] <= 0 {
				delete(c.per, caller)
			}
		})
	}, false, true
}
