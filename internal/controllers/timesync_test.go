package controllers

import (
	"sync"
	"testing"
	"time"

	"github.com/plinthos/plinth/internal/ntptest"
	"github.com/plinthos/plinth/internal/resources"
	"github.com/plinthos/plinth/internal/timesync"
)

// clockRecorder is a timesync.Adjuster that records the corrections instead of changing
// the host's clock.
type clockRecorder struct {
	mu           sync.Mutex
	steps, slews int
}

func (r *clockRecorder) Step(time.Duration) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.steps++
	return nil
}

func (r *clockRecorder) Slew(time.Duration, time.Duration) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.slews++
	return nil
}

// TestTimeSyncFollowsConfig: the default servers (here a fake on the loopback, never the
// real default) when machine.time.servers is empty, then disabled, then configured ones.
func TestTimeSyncFollowsConfig(t *testing.T) {
	def := ntptest.Start(t, 5*time.Minute)
	other := ntptest.Start(t, 0)
	rec := &clockRecorder{}
	cs := generated(t)
	if len(cs.ControlPlane.Machine.Time.Servers) != 0 {
		t.Fatal("the generated configuration names time servers")
	}
	h := start(t, cs.ControlPlane, &TimeSync{Adjuster: rec, DefaultServers: []string{def.Addr()}})
	rt, typ, id := resources.NamespaceRuntime, resources.TimeStatusType, resources.DefaultID

	s := waitSpec(t, h, rt, typ, id, func(s resources.TimeStatusSpec) bool { return s.State == resources.TimeSynced })
	if s.Server != def.Addr() || !s.Stepped || s.LastSync == "" || s.Offset == "" {
		t.Errorf("status %+v", s)
	}

	next := *cs.ControlPlane
	next.Machine.Time.Disabled = true
	h.config.set(&next)
	waitSpec(t, h, rt, typ, id, func(s resources.TimeStatusSpec) bool {
		return s.State == resources.TimeDisabled && s.Server == "" && len(s.Servers) == 0
	})

	next2 := *cs.ControlPlane
	next2.Machine.Time.Servers = []string{other.Addr()}
	h.config.set(&next2)
	s = waitSpec(t, h, rt, typ, id, func(s resources.TimeStatusSpec) bool {
		return s.State == resources.TimeSynced && s.Server == other.Addr()
	})
	if s.Stepped || len(s.Servers) != 1 {
		t.Errorf("status %+v", s)
	}
	rec.mu.Lock()
	defer rec.mu.Unlock()
	if rec.steps != 1 || rec.slews != 1 {
		t.Errorf("%d steps, %d slews; want 1 and 1", rec.steps, rec.slews)
	}
}

// TestTimeSyncReportsSilence: no server answers, the state says syncing and why.
func TestTimeSyncReportsSilence(t *testing.T) {
	srv := ntptest.Start(t, 0)
	srv.Silent.Store(true)
	cs := generated(t)
	cfg := *cs.ControlPlane
	cfg.Machine.Time.Servers = []string{srv.Addr()}
	h := start(t, &cfg, &TimeSync{Adjuster: &clockRecorder{}, DefaultServers: []string{},
		Tune: func(s *timesync.Syncer) { s.QueryTimeout = 100 * time.Millisecond }})
	s := waitSpec(t, h, resources.NamespaceRuntime, resources.TimeStatusType, resources.DefaultID,
		func(s resources.TimeStatusSpec) bool { return s.Error != "" })
	if s.State != resources.TimeSyncing || s.LastSync != "" {
		t.Errorf("status %+v", s)
	}
}
