package controllers

import (
	"context"
	"log/slog"
	"strings"

	"github.com/plinthos/plinth/internal/controller"
	"github.com/plinthos/plinth/internal/resources"
)

// Hostname derives the node's host name: the configured one, else Default (in a container
// its name, on a machine one derived from its address or identity).
type Hostname struct {
	Default string
}

// Name implements controller.Controller.
func (c *Hostname) Name() string { return "network.Hostname" }

// Inputs implements controller.Controller.
func (c *Hostname) Inputs() []controller.Input { return []controller.Input{machineConfigInput} }

// Outputs implements controller.Controller.
func (c *Hostname) Outputs() []controller.Output {
	return []controller.Output{{Type: resources.HostnameType}}
}

// Run implements controller.Controller.
func (c *Hostname) Run(ctx context.Context, rt controller.Runtime, log *slog.Logger) error {
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-rt.EventCh():
		}
		cfg, err := machineConfig(rt)
		if err != nil {
			return err
		}
		name := c.Default
		if cfg != nil && cfg.Machine.Network.Hostname != "" {
			name = cfg.Machine.Network.Hostname
		}
		host, domain, _ := strings.Cut(name, ".")
		if err := set(ctx, rt, resources.NamespaceNetwork, resources.HostnameType, resources.HostnameID,
			resources.HostnameSpec{Hostname: host, Domainname: domain}); err != nil {
			return err
		}
	}
}
