package resource

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/plinthos/plinth/internal/clock"
)

// BenchmarkStoreUpdateWatch measures updates per second of one resource while 10 watchers
// receive every change. The writer lets the slowest watcher lag by at most a window smaller
// than the event log, so that the figure is the sustained rate at which everyone keeps up
// (no overflow).
func BenchmarkStoreUpdateWatch(b *testing.B) {
	const watchers, window = 10, 256
	type linkSpec struct {
		Name      string
		MTU       int
		Addresses []string
		Labels    map[string]string
	}
	s := NewStore(clock.Real{})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	r := New("network", "Links", "eth0", linkSpec{Name: "eth0", MTU: 1500, Addresses: []string{"10.0.0.1/24", "fd00::1/64"}, Labels: map[string]string{"kind": "physical"}})
	if err := s.Create(r); err != nil {
		b.Fatal(err)
	}

	seen := make([]atomic.Uint64, watchers) // highest version each watcher received
	var wg sync.WaitGroup
	var overflows atomic.Int64
	for i := range watchers {
		ch, err := s.Watch(ctx, "network", "Links", WatchOptions{})
		if err != nil {
			b.Fatal(err)
		}
		wg.Go(func() {
			for ev := range ch {
				if ev.Type == Overflow {
					overflows.Add(1)
					continue
				}
				seen[i].Store(ev.Resource.Metadata().Version)
			}
		})
	}
	slowest := func() uint64 {
		m := seen[0].Load()
		for i := range seen {
			m = min(m, seen[i].Load())
		}
		return m
	}

	b.ReportAllocs()
	b.ResetTimer()
	start := time.Now()
	for i := range b.N {
		r.TypedSpec().MTU = 1500 + i%100
		if err := s.Update(r); err != nil {
			b.Fatal(err)
		}
		for r.Metadata().Version-slowest() > window {
			time.Sleep(10 * time.Microsecond)
		}
	}
	for slowest() < r.Metadata().Version {
		time.Sleep(10 * time.Microsecond)
	}
	elapsed := time.Since(start)
	b.StopTimer()
	cancel()
	wg.Wait()

	if n := overflows.Load(); n > 0 {
		b.Fatalf("%d watchers overflowed", n)
	}
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "updates/s")
	b.ReportMetric(float64(b.N*watchers)/elapsed.Seconds(), "deliveries/s")
}
