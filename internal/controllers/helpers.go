// Package controllers holds machined's controllers: each reads some resource types and
// owns the resources of one output type, reconciling whenever an input changes.
package controllers

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"

	"github.com/plinthos/plinth/internal/controller"
	"github.com/plinthos/plinth/internal/resource"
	"github.com/plinthos/plinth/internal/resources"
	"github.com/plinthos/plinth/pkg/config"
)

// set writes spec into the resource ns/typ/id, creating it if needed.
func set[S any](ctx context.Context, rt controller.Runtime, ns, typ, id string, spec S) error {
	return rt.Modify(ctx, resource.New(ns, typ, id, spec), func(r resource.Resource) error {
		typed, ok := r.(*resource.Typed[S])
		if !ok {
			return fmt.Errorf("%s/%s has spec %T, want %T", typ, id, r.Spec(), spec)
		}
		*typed.TypedSpec() = spec
		return nil
	})
}

// get reads a typed spec; ok is false when the resource does not exist.
func get[S any](rt controller.Runtime, ns, typ, id string) (spec S, ok bool, err error) {
	r, err := rt.Get(ns, typ, id)
	if errors.Is(err, resource.ErrNotFound) {
		return spec, false, nil
	}
	if err != nil {
		return spec, false, err
	}
	typed, isTyped := r.(*resource.Typed[S])
	if !isTyped {
		return spec, false, fmt.Errorf("%s/%s has spec %T, want %T", typ, id, r.Spec(), spec)
	}
	return *typed.TypedSpec(), true, nil
}

// machineConfig returns the active configuration, or nil when there is none yet.
func machineConfig(rt controller.Runtime) (*config.MachineConfig, error) {
	spec, ok, err := get[resources.MachineConfigSpec](rt, resources.NamespaceConfig, resources.MachineConfigType, resources.ActiveID)
	if err != nil || !ok {
		return nil, err
	}
	return spec.Config, nil
}

var machineConfigInput = controller.Input{Namespace: resources.NamespaceConfig, Type: resources.MachineConfigType}

// mirror makes the controller's resources of ns/typ exactly specs: it writes every entry
// (unchanged ones are skipped by Modify) and destroys the resources whose IDs are gone.
func mirror[S any](ctx context.Context, rt controller.Runtime, ns, typ string, specs map[string]S) error {
	for _, id := range slices.Sorted(maps.Keys(specs)) {
		if err := set(ctx, rt, ns, typ, id, specs[id]); err != nil {
			return err
		}
	}
	return rt.Cleanup(ns, typ, func(r resource.Resource) bool {
		_, keep := specs[r.Metadata().ID]
		return keep
	})
}
