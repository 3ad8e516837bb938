package resource

import (
	"context"
	"fmt"
)

const (
	// watchChanBuffer is the capacity of a watch channel; the event log is the real buffer.
	watchChanBuffer = 16
	// readBatch is how many log entries a watcher takes per lock acquisition.
	readBatch = 64
)

// Watch streams the changes of the resources of ns/typ until ctx is cancelled, when the
// channel is closed. See the package documentation for what happens to watchers that fall
// behind.
func (s *Store) Watch(ctx context.Context, ns, typ string, opts WatchOptions) (<-chan Event, error) {
	if err := validate(ns, typ, "", false); err != nil {
		return nil, err
	}
	return s.watch(ctx, ns, typ, "", opts.Bootstrap)
}

// WatchID streams the changes of one resource until ctx is cancelled. It always bootstraps:
// the first event is Created when the resource exists, then comes Bootstrapped, then the
// changes.
func (s *Store) WatchID(ctx context.Context, ns, typ, id string) (<-chan Event, error) {
	if err := validate(ns, typ, id, true); err != nil {
		return nil, err
	}
	return s.watch(ctx, ns, typ, id, true)
}

func (s *Store) watch(ctx context.Context, ns, typ, id string, bootstrap bool) (<-chan Event, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("watch %s %s: %w", typ, ns, err)
	}
	w := &watcher{store: s, ctx: ctx, id: id, out: make(chan Event, watchChanBuffer)}
	s.mu.Lock()
	w.bucket = s.bucket(ns, typ, true)
	w.pos = w.bucket.log.next
	if bootstrap {
		if id != "" {
			if r := w.bucket.items[id]; r != nil {
				w.initial = []Resource{r}
			}
		} else {
			w.initial = sortedItems(w.bucket.items)
		}
	}
	s.mu.Unlock()
	go w.run(bootstrap)
	return w.out, nil
}

// watcher serves one watch: it reads its bucket's event log from pos and delivers.
type watcher struct {
	store   *Store
	ctx     context.Context
	bucket  *bucket
	id      string     // when set, only events of this ID are delivered
	pos     uint64     // sequence number of the next log entry to read
	initial []Resource // the bootstrap snapshot
	out     chan Event
}

func (w *watcher) run(bootstrap bool) {
	defer close(w.out)
	if bootstrap {
		for _, r := range w.initial {
			if !w.send(Event{Type: Created, Resource: r.DeepCopy()}) {
				return
			}
		}
		w.initial = nil
		if !w.send(Event{Type: Bootstrapped}) {
			return
		}
	}
	batch := make([]logEntry, 0, readBatch)
	for {
		var overflow bool
		var wait <-chan struct{}
		batch, overflow, wait = w.next(batch[:0])
		if overflow {
			w.send(Event{Type: Overflow})
			return
		}
		for i, e := range batch {
			batch[i] = logEntry{} // do not keep old values alive
			if w.id != "" && e.id != w.id {
				continue
			}
			if !w.send(toEvent(e)) {
				return
			}
		}
		if wait != nil {
			select {
			case <-wait:
			case <-w.ctx.Done():
				return
			}
		}
	}
}

// next reads the next batch of log entries. When there is none it returns a channel that is
// closed by the next write.
func (w *watcher) next(dst []logEntry) (entries []logEntry, overflow bool, wait <-chan struct{}) {
	s, l := w.store, &w.bucket.log
	s.mu.RLock()
	dst, w.pos, overflow = l.read(w.pos, dst, readBatch)
	s.mu.RUnlock()
	if overflow || len(dst) > 0 {
		return dst, overflow, nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	dst, w.pos, overflow = l.read(w.pos, dst, readBatch)
	if overflow || len(dst) > 0 {
		return dst, overflow, nil
	}
	return dst, false, l.waitChan()
}

// send delivers ev; it reports false when the watch was cancelled.
func (w *watcher) send(ev Event) bool {
	if w.ctx.Err() != nil {
		return false
	}
	select {
	case w.out <- ev:
		return true
	case <-w.ctx.Done():
		return false
	}
}

// toEvent turns a log entry into an event holding the watcher's own copies.
func toEvent(e logEntry) Event {
	ev := Event{Type: e.typ, Resource: e.res.DeepCopy()}
	if e.old != nil {
		ev.Old = e.old.DeepCopy()
	}
	return ev
}
