package controllers

import (
	"context"
	"log/slog"
	"slices"
	"strings"
	"time"

	"github.com/plinthos/plinth/internal/controller"
	"github.com/plinthos/plinth/internal/resources"
	"github.com/plinthos/plinth/internal/timesync"
	"github.com/plinthos/plinth/pkg/config"
)

// TimeSync keeps the system clock in step with machine.time.servers (DefaultServers when
// the list is empty) and publishes the TimeStatus resource; with machine.time.disabled it
// leaves the clock alone and says so. A change of the servers restarts the polling. Only
// platforms whose machine owns its clock run it (metal).
type TimeSync struct {
	// Adjuster steers the clock; timesync.Kernel{} when nil.
	Adjuster timesync.Adjuster
	// DefaultServers are polled when machine.time.servers is empty;
	// [config.DefaultTimeServer] when nil.
	DefaultServers []string
	// Tune, when set, adjusts each Syncer before it runs (tests shorten its intervals).
	Tune func(*timesync.Syncer)
}

// Name implements controller.Controller.
func (c *TimeSync) Name() string { return "time.Sync" }

// Inputs implements controller.Controller.
func (c *TimeSync) Inputs() []controller.Input { return []controller.Input{machineConfigInput} }

// Outputs implements controller.Controller.
func (c *TimeSync) Outputs() []controller.Output {
	return []controller.Output{{Type: resources.TimeStatusType}}
}

// Run implements controller.Controller.
func (c *TimeSync) Run(ctx context.Context, rt controller.Runtime, log *slog.Logger) error {
	var (
		key     string
		stop    context.CancelFunc
		stopped chan struct{}
	)
	halt := func() {
		if stop != nil {
			stop()
			<-stopped
			stop = nil
		}
	}
	defer halt()
	return followConfig(ctx, rt, func(cfg *config.MachineConfig) {
		servers := c.servers(cfg)
		next := resources.TimeDisabled
		if servers != nil {
			next = "servers " + strings.Join(servers, " ")
		}
		if next == key {
			return
		}
		halt()
		key = next
		if servers == nil {
			log.Info("time synchronisation is disabled")
			if err := set(ctx, rt, resources.NamespaceRuntime, resources.TimeStatusType, resources.DefaultID,
				resources.TimeStatusSpec{State: resources.TimeDisabled}); err != nil {
				log.Error("time status", "error", err)
			}
			return
		}
		if err := set(ctx, rt, resources.NamespaceRuntime, resources.TimeStatusType, resources.DefaultID,
			resources.TimeStatusSpec{State: resources.TimeSyncing, Servers: servers}); err != nil {
			log.Error("time status", "error", err)
		}
		syncer := &timesync.Syncer{Servers: servers, Adjuster: c.Adjuster, Log: log}
		if syncer.Adjuster == nil {
			syncer.Adjuster = timesync.Kernel{}
		}
		runCtx, cancel := context.WithCancel(ctx)
		syncer.OnStatus = func(st timesync.Status) {
			if err := set(runCtx, rt, resources.NamespaceRuntime, resources.TimeStatusType, resources.DefaultID, timeStatus(servers, st)); err != nil && runCtx.Err() == nil {
				log.Error("time status", "error", err)
			}
		}
		if c.Tune != nil {
			c.Tune(syncer)
		}
		log.Info("time synchronisation starts", "servers", servers)
		stop, stopped = cancel, make(chan struct{})
		go func(done chan struct{}) {
			defer close(done)
			if err := syncer.Run(runCtx); err != nil {
				log.Error("time synchronisation stopped", "error", err)
			}
		}(stopped)
	})
}

// servers returns the servers to poll, or nil when synchronisation is disabled.
func (c *TimeSync) servers(cfg *config.MachineConfig) []string {
	t := cfg.Machine.Time
	switch {
	case t.Disabled:
		return nil
	case len(t.Servers) > 0:
		return slices.Clone(t.Servers)
	case c.DefaultServers != nil:
		return slices.Clone(c.DefaultServers)
	}
	return []string{config.DefaultTimeServer}
}

// timeStatus is the TimeStatus of a poll's outcome.
func timeStatus(servers []string, st timesync.Status) resources.TimeStatusSpec {
	spec := resources.TimeStatusSpec{State: resources.TimeSyncing, Servers: servers, Server: st.Server, Error: st.Error}
	if st.Synced {
		spec.State = resources.TimeSynced
		spec.Stepped = st.Stepped
	}
	if !st.LastSync.IsZero() {
		spec.Offset = st.Offset.String()
		spec.LastSync = st.LastSync.UTC().Format(time.RFC3339)
	}
	return spec
}
