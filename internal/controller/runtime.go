package controller

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"reflect"

	"github.com/plinthos/plinth/internal/clock"
	"github.com/plinthos/plinth/internal/resource"
)

// maxModifyAttempts bounds the conflict retries of Runtime.Modify.
const maxModifyAttempts = 100

// Runtime is a controller's view of the store, handed to Run. Reads reach any type; writes
// reach only the controller's declared outputs and the resources it owns.
type Runtime interface {
	// EventCh signals, coalesced, that an input changed; one signal is pending at every
	// (re)start.
	EventCh() <-chan struct{}

	// Get returns a copy of a resource (resource.ErrNotFound when absent).
	Get(ns, typ, id string) (resource.Resource, error)
	// List returns copies of the resources of ns/typ, sorted by ID.
	List(ns, typ string) ([]resource.Resource, error)
	// WatchFor waits until the resource exists and cond (nil: any state) holds for it, and
	// returns it; it fails when ctx ends first.
	WatchFor(ctx context.Context, ns, typ, id string, cond func(resource.Resource) bool) (resource.Resource, error)

	// Create creates an output resource owned by the controller.
	Create(r resource.Resource) error
	// Modify creates the resource identified by empty's metadata (starting from a copy of
	// empty) or updates the existing one: mutate receives the resource to change in place.
	// The write is skipped when mutate changed nothing; version conflicts are retried with a
	// fresh read. The resource is owned by the controller.
	Modify(ctx context.Context, empty resource.Resource, mutate func(resource.Resource) error) error
	// Destroy destroys an output resource owned by the controller.
	Destroy(ns, typ, id string) error
	// Cleanup destroys the controller's resources of ns/typ for which keep returns false.
	Cleanup(ns, typ string, keep func(resource.Resource) bool) error

	// Clock is the engine's clock.
	Clock() clock.Clock
}

// runtime implements Runtime for one controller.
type runtime struct {
	name    string
	store   *resource.Store
	clk     clock.Clock
	outputs map[string]bool
	events  chan struct{}
}

func newRuntime(name string, store *resource.Store, clk clock.Clock, outputs []Output) *runtime {
	rt := &runtime{name: name, store: store, clk: clk, outputs: map[string]bool{}, events: make(chan struct{}, 1)}
	for _, o := range outputs {
		rt.outputs[o.Type] = true
	}
	return rt
}

// signal wakes the controller without ever blocking; pending signals coalesce.
func (rt *runtime) signal() {
	select {
	case rt.events <- struct{}{}:
	default:
	}
}

func (rt *runtime) EventCh() <-chan struct{} { return rt.events }

func (rt *runtime) Clock() clock.Clock { return rt.clk }

func (rt *runtime) Get(ns, typ, id string) (resource.Resource, error) {
	return rt.store.Get(ns, typ, id)
}

func (rt *runtime) List(ns, typ string) ([]resource.Resource, error) {
	return rt.store.List(ns, typ)
}

func (rt *runtime) WatchFor(ctx context.Context, ns, typ, id string, cond func(resource.Resource) bool) (resource.Resource, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	for {
		ch, err := rt.store.WatchID(ctx, ns, typ, id)
		if err != nil {
			return nil, err
		}
		for ev := range ch {
			if (ev.Type == resource.Created || ev.Type == resource.Updated) && (cond == nil || cond(ev.Resource)) {
				return ev.Resource, nil
			}
		}
		// The channel closed: either ctx ended or the watch overflowed; resubscribe then.
		if err := ctx.Err(); err != nil {
			return nil, fmt.Errorf("wait for %s %s/%s: %w", typ, ns, id, err)
		}
	}
}

// checkOutput refuses writes to types the controller did not declare.
func (rt *runtime) checkOutput(typ string) error {
	if !rt.outputs[typ] {
		return fmt.Errorf("controller %s writing %s: %w", rt.name, typ, ErrUndeclaredOutput)
	}
	return nil
}

func (rt *runtime) Create(r resource.Resource) error {
	if err := rt.checkOutput(r.Metadata().Type); err != nil {
		return err
	}
	r.Metadata().Owner = rt.name
	return rt.store.Create(r)
}

func (rt *runtime) Destroy(ns, typ, id string) error {
	if err := rt.checkOutput(typ); err != nil {
		return err
	}
	return rt.store.Destroy(ns, typ, id, rt.name)
}

func (rt *runtime) Cleanup(ns, typ string, keep func(resource.Resource) bool) error {
	if err := rt.checkOutput(typ); err != nil {
		return err
	}
	items, err := rt.store.List(ns, typ)
	if err != nil {
		return err
	}
	var errs []error
	for _, r := range items {
		md := r.Metadata()
		if md.Owner != rt.name || keep(r) {
			continue
		}
		if err := rt.store.Destroy(ns, typ, md.ID, rt.name); err != nil && !errors.Is(err, resource.ErrNotFound) {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

func (rt *runtime) Modify(ctx context.Context, empty resource.Resource, mutate func(resource.Resource) error) error {
	want := *empty.Metadata()
	if err := rt.checkOutput(want.Type); err != nil {
		return err
	}
	var err error
	for range maxModifyAttempts {
		if cerr := ctx.Err(); cerr != nil {
			return fmt.Errorf("modify %s: %w", want.String(), cerr)
		}
		var retry bool
		retry, err = rt.modifyOnce(empty, &want, mutate)
		if !retry {
			return err
		}
	}
	return fmt.Errorf("modify %s: gave up after %d attempts: %w", want.String(), maxModifyAttempts, err)
}

// modifyOnce makes one attempt of Modify; retry reports a race lost to another writer.
func (rt *runtime) modifyOnce(empty resource.Resource, want *resource.Metadata, mutate func(resource.Resource) error) (retry bool, err error) {
	cur, err := rt.store.Get(want.Namespace, want.Type, want.ID)
	if errors.Is(err, resource.ErrNotFound) {
		r := empty.DeepCopy()
		if err := rt.applyMutation(r, want, mutate); err != nil {
			return false, err
		}
		r.Metadata().Version = 0
		err = rt.store.Create(r)
		return errors.Is(err, resource.ErrAlreadyExists), err
	}
	if err != nil {
		return false, err
	}
	md := cur.Metadata()
	if md.Owner != rt.name {
		return false, fmt.Errorf("controller %s modifying %s: %w: owned by %q", rt.name, md.String(), resource.ErrOwnerMismatch, md.Owner)
	}
	before := cur.DeepCopy()
	if err := rt.applyMutation(cur, want, mutate); err != nil {
		return false, err
	}
	md.Version = before.Metadata().Version
	if unchanged(before, cur) {
		return false, nil
	}
	err = rt.store.Update(cur)
	return errors.Is(err, resource.ErrConflict) || errors.Is(err, resource.ErrNotFound), err
}

// applyMutation runs mutate and checks that it kept the resource's identity; it sets the
// owner.
func (rt *runtime) applyMutation(r resource.Resource, want *resource.Metadata, mutate func(resource.Resource) error) error {
	if err := mutate(r); err != nil {
		return fmt.Errorf("modify %s: %w", want.String(), err)
	}
	md := r.Metadata()
	if md.Namespace != want.Namespace || md.Type != want.Type || md.ID != want.ID {
		return fmt.Errorf("modify %s: mutate changed the identity to %s: %w", want.String(), md.String(), resource.ErrInvalid)
	}
	md.Owner = rt.name
	return nil
}

// unchanged reports whether a mutation left spec, labels and phase as they were.
func unchanged(before, after resource.Resource) bool {
	b, a := before.Metadata(), after.Metadata()
	return b.Phase == a.Phase && maps.Equal(b.Labels, a.Labels) && reflect.DeepEqual(before.Spec(), after.Spec())
}
