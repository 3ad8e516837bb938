package controllers

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/plinthos/plinth/internal/controller"
	"github.com/plinthos/plinth/internal/resources"
	"github.com/plinthos/plinth/pkg/config"
)

// ConfigSource holds the node's active machine configuration (configmgr.Manager).
type ConfigSource interface {
	// Active returns the active configuration (nil when there is none) and its version,
	// which grows with every activation.
	Active() (*config.MachineConfig, uint64)
}

// MachineConfig publishes the configuration manager's active configuration as the
// MachineConfig resource. It reads Source when it starts (a restart publishes the
// configuration active then, not the one of the boot) and on every signal of Changed:
// whatever order activations are signalled in, the last read is the active one.
type MachineConfig struct {
	// Source is the configuration manager.
	Source ConfigSource
	// Changed is signalled after each activation. A 1-buffered channel written without
	// blocking is enough: a signal pending while others come stands for all of them.
	Changed <-chan struct{}
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
	var published uint64 // version of this run's last publication; 0 for none
	for {
		if cfg, version := c.Source.Active(); cfg != nil && version != published {
			if err := set(ctx, rt, resources.NamespaceConfig, resources.MachineConfigType, resources.ActiveID,
				resources.MachineConfigSpec{Config: cfg}); err != nil {
				return fmt.Errorf("publish machine configuration version %d: %w", version, err)
			}
			published = version
			log.Debug("machine configuration published", "version", version)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-c.Changed:
		}
	}
}
