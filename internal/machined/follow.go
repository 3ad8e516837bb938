package machined

import (
	"context"
	"fmt"
	"io"

	"github.com/plinthos/plinth/internal/resource"
)

// follower runs a service from a resource and runs it again whenever the resource's key
// changes: kubelet from its KubeletSpec, containerd from its configuration's generation.
// A service is a consumer of resources; nothing reads its settings only once.
type follower[T any] struct {
	// name is the service's name in log lines.
	name string
	// watch streams the resource's changes (a bootstrapping watch of one resource).
	watch func(ctx context.Context) (<-chan resource.Event, error)
	// key says what of the spec the service depends on; a new key restarts it.
	key func(T) string
	// run runs the service with spec until ctx is cancelled or it ends by itself.
	run func(ctx context.Context, spec T) error
}

// Run waits for the resource, runs the service with it, and restarts the service with the
// new spec each time the key changes. It returns when ctx is cancelled (nil) or when the
// service ends by itself (its result, for the supervisor's restart policy).
func (f follower[T]) Run(ctx context.Context, logs io.Writer) error {
	type running struct {
		key    string
		cancel context.CancelFunc
		done   chan error
	}
	var cur *running
	start := func(key string, spec T) *running {
		runCtx, cancel := context.WithCancel(ctx)
		r := &running{key: key, cancel: cancel, done: make(chan error, 1)}
		go func() { r.done <- f.run(runCtx, spec) }()
		return r
	}
	stop := func() {
		if cur != nil {
			cur.cancel()
			<-cur.done
			cur = nil
		}
	}
	defer stop()
	for {
		events, err := f.watch(ctx)
		if err != nil {
			return fmt.Errorf("watch %s's resource: %w", f.name, err)
		}
		for events != nil {
			var done chan error
			if cur != nil {
				done = cur.done
			}
			select {
			case <-ctx.Done():
				return nil
			case err := <-done:
				cur.cancel()
				cur = nil
				return err
			case ev, ok := <-events:
				if !ok {
					events = nil // overflowed: watch again
					break
				}
				if ev.Type != resource.Created && ev.Type != resource.Updated {
					continue
				}
				typed, ok := ev.Resource.(*resource.Typed[T])
				if !ok {
					return fmt.Errorf("%s: unexpected resource %T", f.name, ev.Resource)
				}
				spec := *typed.TypedSpec()
				key := f.key(spec)
				if cur != nil && key == cur.key {
					continue
				}
				if cur != nil {
					fmt.Fprintf(logs, "%s's configuration changed (%s): restarting %s\n", f.name, key, f.name)
					stop()
				}
				cur = start(key, spec)
			}
		}
		if ctx.Err() != nil {
			return nil
		}
	}
}
