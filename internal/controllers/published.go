package controllers

import (
	"context"
	"log/slog"

	"github.com/plinthos/plinth/internal/controller"
)

// Published publishes one resource whose spec something outside the controllers keeps
// (such as the OS upgrade's record on disk): Read is called at start and each time Changed
// signals; when it returns ok false, nothing is published (yet).
type Published[S any] struct {
	ControllerName string
	Namespace      string
	Type           string
	ID             string
	Read           func() (spec S, ok bool, err error)
	Changed        <-chan struct{}
}

// Name implements controller.Controller.
func (c *Published[S]) Name() string { return c.ControllerName }

// Inputs implements controller.Controller.
func (c *Published[S]) Inputs() []controller.Input { return nil }

// Outputs implements controller.Controller.
func (c *Published[S]) Outputs() []controller.Output { return []controller.Output{{Type: c.Type}} }

// Run implements controller.Controller. A failed Read is logged and retried at the next
// signal: the facts are on disk and the next change reads them again.
func (c *Published[S]) Run(ctx context.Context, rt controller.Runtime, log *slog.Logger) error {
	for {
		spec, ok, err := c.Read()
		switch {
		case err != nil:
			log.Warn("read", "error", err)
		case ok:
			if err := set(ctx, rt, c.Namespace, c.Type, c.ID, spec); err != nil {
				return err
			}
		}
		select {
		case <-ctx.Done():
			return nil
		case <-c.Changed:
		}
	}
}
