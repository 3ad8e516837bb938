package controllers

import (
	"context"
	"log/slog"

	"github.com/plinthos/plinth/internal/controller"
	"github.com/plinthos/plinth/internal/resources"
	"github.com/plinthos/plinth/internal/service"
)

// ServiceStatus mirrors the supervisor's services as Service resources, so that
// `plinthctl get services` and other controllers see them.
type ServiceStatus struct {
	Supervisor *service.Supervisor
}

// Name implements controller.Controller.
func (c *ServiceStatus) Name() string { return "runtime.ServiceStatus" }

// Inputs implements controller.Controller.
func (c *ServiceStatus) Inputs() []controller.Input { return nil }

// Outputs implements controller.Controller.
func (c *ServiceStatus) Outputs() []controller.Output {
	return []controller.Output{{Type: resources.ServiceType}}
}

// Run implements controller.Controller.
func (c *ServiceStatus) Run(ctx context.Context, rt controller.Runtime, _ *slog.Logger) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	updates := c.Supervisor.Subscribe(ctx)
	// The current state first, then every change.
	for _, st := range c.Supervisor.List() {
		if err := c.publish(ctx, rt, st); err != nil {
			return err
		}
	}
	for {
		select {
		case <-ctx.Done():
			return nil
		case st, ok := <-updates:
			if !ok {
				return nil
			}
			if err := c.publish(ctx, rt, st); err != nil {
				return err
			}
		}
	}
}

func (c *ServiceStatus) publish(ctx context.Context, rt controller.Runtime, st service.Status) error {
	spec := resources.ServiceSpec{State: string(st.State), Running: st.State == service.Running, HealthUnknown: st.Healthy == nil, Message: st.Message}
	if st.Healthy != nil {
		spec.Healthy = *st.Healthy
	}
	return set(ctx, rt, resources.NamespaceRuntime, resources.ServiceType, st.ID, spec)
}
