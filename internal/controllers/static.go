package controllers

import (
	"context"
	"log/slog"

	"github.com/plinthos/plinth/internal/controller"
)

// Static publishes one resource with a fixed spec: facts known at start (the version, the
// addresses of a local-mode node).
type Static[S any] struct {
	ControllerName string
	Namespace      string
	Type           string
	ID             string
	Spec           S
}

// Name implements controller.Controller.
func (c *Static[S]) Name() string { return c.ControllerName }

// Inputs implements controller.Controller.
func (c *Static[S]) Inputs() []controller.Input { return nil }

// Outputs implements controller.Controller.
func (c *Static[S]) Outputs() []controller.Output { return []controller.Output{{Type: c.Type}} }

// Run implements controller.Controller.
func (c *Static[S]) Run(ctx context.Context, rt controller.Runtime, _ *slog.Logger) error {
	if err := set(ctx, rt, c.Namespace, c.Type, c.ID, c.Spec); err != nil {
		return err
	}
	<-ctx.Done()
	return nil
}
