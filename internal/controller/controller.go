package controller

import (
	"context"
	"log/slog"
)

// Controller is one reconcile loop.
type Controller interface {
	// Name identifies the controller; it is the Owner of the resources it writes.
	Name() string
	// Inputs are the resources whose changes wake the controller.
	Inputs() []Input
	// Outputs are the resource types the controller writes; it owns them exclusively.
	Outputs() []Output
	// Run reconciles on every signal of r.EventCh() until ctx is cancelled. An error (or a
	// panic) makes the engine restart it after a backoff; nil ends it for good.
	Run(ctx context.Context, r Runtime, log *slog.Logger) error
}

// Input is a set of resources a controller depends on.
type Input struct {
	// Namespace of the resources.
	Namespace string
	// Type of the resources.
	Type string
	// ID, when set, limits the input to one resource.
	ID string
}

// Output is a resource type a controller writes.
type Output struct {
	// Type of the resources.
	Type string
}
