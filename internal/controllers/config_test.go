package controllers

import (
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/plinthos/plinth/internal/clock"
	"github.com/plinthos/plinth/internal/configmgr"
	"github.com/plinthos/plinth/internal/controller"
	"github.com/plinthos/plinth/internal/resources"
	"github.com/plinthos/plinth/pkg/config"
)

// testConfig is a ConfigSource for tests: set activates a configuration.
type testConfig struct {
	mu      sync.Mutex
	cfg     *config.MachineConfig
	version uint64
	changed chan struct{}
}

func newTestConfig(initial *config.MachineConfig) *testConfig {
	s := &testConfig{cfg: initial, changed: make(chan struct{}, 1)}
	if initial != nil {
		s.version = 1
	}
	return s
}

func (s *testConfig) Active() (*config.MachineConfig, uint64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.cfg, s.version
}

func (s *testConfig) set(c *config.MachineConfig) {
	s.mu.Lock()
	s.cfg, s.version = c, s.version+1
	s.mu.Unlock()
	signal(s.changed)
}

// signal is a non-blocking send, as machined's OnChange does.
func signal(ch chan<- struct{}) {
	select {
	case ch <- struct{}{}:
	default:
	}
}

// bootManager returns a configuration manager booted with cp named host, driven by clk.
func bootManager(t *testing.T, clk clock.Clock, cp *config.MachineConfig, host string) *configmgr.Manager {
	t.Helper()
	m := configmgr.New(t.TempDir(), config.ModeDocker, clk, slog.New(slog.DiscardHandler))
	t.Cleanup(m.Close)
	seed := filepath.Join(t.TempDir(), "seed.yaml")
	if err := os.WriteFile(seed, configNamed(t, cp, host), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := m.Boot(seed); err != nil {
		t.Fatal(err)
	}
	return m
}

// configNamed is the document of cp with the hostname host.
func configNamed(t *testing.T, cp *config.MachineConfig, host string) []byte {
	t.Helper()
	c := *cp
	c.Machine.Network.Hostname = host
	data, err := config.Marshal(&c, false)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// publishedHost waits until the MachineConfig resource has the hostname want.
func publishedHost(t *testing.T, h *harness, want string) {
	t.Helper()
	waitSpec(t, h, resources.NamespaceConfig, resources.MachineConfigType, resources.ActiveID,
		func(s resources.MachineConfigSpec) bool {
			return s.Config != nil && s.Config.Machine.Network.Hostname == want
		})
}

func hostOf(m *configmgr.Manager) string {
	c, _ := m.Current()
	return c.Machine.Network.Hostname
}

// TestMachineConfigFollowsApplyDuringRollback: an apply overtakes the rollback of a try
// (the rollback's notification is held until the apply is done, as a slow goroutine
// would). The resource must end with the manager's current configuration, the applied
// one; it used to end with the rolled-back one, delivered last.
func TestMachineConfigFollowsApplyDuringRollback(t *testing.T) {
	cp := generated(t).ControlPlane
	mclk := clock.NewFake(time.Now())
	m := bootManager(t, mclk, cp, "boot")
	changed := make(chan struct{}, 1)
	held, release := make(chan struct{}), make(chan struct{})
	var calls atomic.Int32
	var notifying sync.WaitGroup
	m.OnChange = func(*config.MachineConfig, uint64) {
		notifying.Add(1)
		defer notifying.Done()
		if calls.Add(1) == 2 { // the rollback's notification
			close(held)
			<-release
		}
		signal(changed)
	}
	h := startWith(t, m, changed)
	publishedHost(t, h, "boot")

	if _, err := m.Apply(configNamed(t, cp, "trial"), configmgr.ModeTry, false, 30*time.Second); err != nil {
		t.Fatal(err)
	}
	publishedHost(t, h, "trial")
	mclk.Advance(31 * time.Second) // rolls back to "boot"
	<-held
	applied := make(chan error, 1)
	go func() {
		_, err := m.Apply(configNamed(t, cp, "applied"), configmgr.ModeNoReboot, false, 0)
		applied <- err
	}()
	waitFor(t, func() bool { return hostOf(m) == "applied" })
	close(release)
	if err := <-applied; err != nil {
		t.Fatal(err)
	}
	notifying.Wait()
	publishedHost(t, h, hostOf(m))
	if hostOf(m) != "applied" {
		t.Errorf("the manager's configuration is %s, want applied", hostOf(m))
	}
}

// TestMachineConfigConcurrentAppliesAndRollbacks applies from several goroutines while
// trial timers fire; the resource must end with the manager's current configuration.
// Run it with -race -count=20.
func TestMachineConfigConcurrentAppliesAndRollbacks(t *testing.T) {
	cp := generated(t).ControlPlane
	mclk := clock.NewFake(time.Now())
	m := bootManager(t, mclk, cp, "boot")
	changed := make(chan struct{}, 1)
	m.OnChange = func(*config.MachineConfig, uint64) { signal(changed) }
	h := startWith(t, m, changed)

	const workers, rounds = 3, 3
	var docs [workers][rounds][]byte
	for w := range workers {
		for r := range rounds {
			docs[w][r] = configNamed(t, cp, fmt.Sprintf("w%d-r%d", w, r))
		}
	}
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for r := range rounds {
				mode := configmgr.ModeNoReboot
				if (w+r)%2 == 0 {
					mode = configmgr.ModeTry
				}
				if _, err := m.Apply(docs[w][r], mode, false, time.Second); err != nil {
					t.Error(err)
					return
				}
				mclk.Advance(time.Second) // the rollback races the other workers' applies
			}
		})
	}
	wg.Wait()
	// Confirm whatever is active, so that no rollback is left to come.
	_, raw := m.Current()
	if _, err := m.Apply(raw, configmgr.ModeNoReboot, false, 0); err != nil {
		t.Fatal(err)
	}
	publishedHost(t, h, hostOf(m))
}

// TestMachineConfigRestartPublishesActive: a restarted controller publishes the
// configuration active at its restart, not the one of the boot.
func TestMachineConfigRestartPublishesActive(t *testing.T) {
	cp := generated(t).ControlPlane
	m := bootManager(t, clock.NewFake(time.Now()), cp, "boot")
	changed := make(chan struct{}, 1)
	m.OnChange = func(*config.MachineConfig, uint64) { signal(changed) }
	src := &failingSource{ConfigSource: m}
	h := startWith(t, src, changed)
	publishedHost(t, h, "boot")
	if _, err := m.Apply(configNamed(t, cp, "applied"), configmgr.ModeNoReboot, false, 0); err != nil {
		t.Fatal(err)
	}
	publishedHost(t, h, "applied")

	// Make the controller fail; while the engine waits to restart it, remove what it
	// published, so that the resource shows what the restarted one publishes.
	src.fail.Store(true)
	signal(changed)
	waitFor(t, func() bool { return h.clk.Pending() == 1 }) // the engine's restart backoff
	if err := h.store.Destroy(resources.NamespaceConfig, resources.MachineConfigType, resources.ActiveID, (&MachineConfig{}).Name()); err != nil {
		t.Fatal(err)
	}
	h.clk.Advance(controller.InitialBackoff)
	waitSpec(t, h, resources.NamespaceConfig, resources.MachineConfigType, resources.ActiveID,
		func(s resources.MachineConfigSpec) bool {
			if s.Config == nil || s.Config.Machine.Network.Hostname != "applied" {
				t.Fatalf("the restarted controller published %+v, want the applied configuration", s.Config.Machine.Network)
			}
			return true
		})
}

// failingSource panics once in Active after fail is set, which fails the controller.
type failingSource struct {
	ConfigSource
	fail atomic.Bool
}

func (s *failingSource) Active() (*config.MachineConfig, uint64) {
	if s.fail.CompareAndSwap(true, false) {
		panic("failing on purpose")
	}
	return s.ConfigSource.Active()
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not reached")
		}
		time.Sleep(2 * time.Millisecond)
	}
}
