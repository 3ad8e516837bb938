package controller

import (
	"context"

	"github.com/plinthos/plinth/internal/resource"
)

// watch subscribes to one input.
func (e *Engine) watch(ctx context.Context, in Input) (<-chan resource.Event, error) {
	if in.ID != "" {
		return e.store.WatchID(ctx, in.Namespace, in.Type, in.ID)
	}
	return e.store.Watch(ctx, in.Namespace, in.Type, resource.WatchOptions{})
}

// forward turns the events of one input into wake-ups of the controller until ctx ends. Events
// themselves do not matter, so a watch that overflows is simply renewed.
func (e *Engine) forward(ctx context.Context, in Input, ch <-chan resource.Event, rt *runtime) {
	for {
		for ev := range ch {
			if ev.Type != resource.Bootstrapped {
				rt.signal()
			}
		}
		if ctx.Err() != nil {
			return
		}
		// Overflowed: changes were missed, so wake the controller and watch again.
		rt.signal()
		var err error
		if ch, err = e.watch(ctx, in); err != nil {
			return // only fails once ctx is cancelled
		}
	}
}
