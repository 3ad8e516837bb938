package controllers

import (
	"context"
	"log/slog"

	"github.com/plinthos/plinth/internal/controller"
	"github.com/plinthos/plinth/internal/resources"
	"github.com/plinthos/plinth/pkg/config"
)

// MachineConfig publishes the active machine configuration, received from the
// configuration manager, as the MachineConfig resource.
type MachineConfig struct {
	// Updates delivers each newly active configuration.
	Updates <-chan *config.MachineConfig
	// Initial is the configuration at boot.
	Initial *config.MachineConfig
}

// Name implements controller.Controller.
func (c *MachineConfig) Name() string { return "config.MachineConfig" }

// Inputs implements controller.Controller.
func (c *MachineConfig) Inputs() []controller.Input { return nil }

// Outputs implements controller.Controller.
func (c *MachineConfig) Outputs() []controller.Output {
	return []controller.Output{{Type: resources.MachineConfigType}}
}

// Run implements controller.Controller.
func (c *MachineConfig) Run(ctx context.Context, rt controller.Runtime, log *slog.Logger) error {
	current := c.Initial
	for {
		if current != nil {
			if err := set(ctx, rt, resources.NamespaceConfig, resources.MachineConfigType, resources.ActiveID,
				resources.MachineConfigSpec{Config: current}); err != nil {
				return err
			}
			log.Debug("machine configuration published")
		}
		select {
		case <-ctx.Done():
			return nil
		case current = <-c.Updates:
		}
	}
}
