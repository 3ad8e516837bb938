package configmgr

import (
	"encoding/base64"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/plinthos/plinth/internal/clock"
	"github.com/plinthos/plinth/internal/configgen"
	"github.com/plinthos/plinth/pkg/config"
	"github.com/plinthos/plinth/pkg/secrets"
)

var (
	once    sync.Once
	configs *configgen.Configs
)

func generated(t *testing.T) *configgen.Configs {
	t.Helper()
	once.Do(func() {
		b, err := secrets.Generate(time.Now())
		if err != nil {
			panic(err)
		}
		configs, err = configgen.Generate(b, configgen.Options{ClusterName: "demo", Endpoint: "https://10.5.0.2:6443"})
		if err != nil {
			panic(err)
		}
	})
	return configs
}

func marshal(t *testing.T, c *config.MachineConfig) []byte {
	t.Helper()
	data, err := config.Marshal(c, false)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

func withHostname(t *testing.T, c *config.MachineConfig, h string) []byte {
	t.Helper()
	cp := *c
	cp.Machine.Network.Hostname = h
	return marshal(t, &cp)
}

func newManager(t *testing.T) (*Manager, *clock.Fake, string, func() string) {
	t.Helper()
	dir := t.TempDir()
	clk := clock.NewFake(time.Now())
	m := New(dir, config.ModeDocker, clk, slog.New(slog.DiscardHandler))
	var mu sync.Mutex
	var changes []string
	m.OnChange = func(c *config.MachineConfig, _ uint64) {
		mu.Lock()
		defer mu.Unlock()
		changes = append(changes, c.Machine.Network.Hostname)
	}
	t.Cleanup(m.Close)
	return m, clk, dir, func() string {
		mu.Lock()
		defer mu.Unlock()
		return strings.Join(changes, ",")
	}
}

func boot(t *testing.T, m *Manager, data []byte) {
	t.Helper()
	seed := filepath.Join(t.TempDir(), "seed.yaml")
	if err := os.WriteFile(seed, data, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := m.Boot(seed); err != nil {
		t.Fatal(err)
	}
}

func TestBootSources(t *testing.T) {
	cp := generated(t).ControlPlane
	m, _, dir, _ := newManager(t)
	if _, err := m.Boot(""); err == nil || !strings.Contains(err.Error(), "no configuration") {
		t.Fatalf("Boot without any source = %v", err)
	}
	// The environment is never a source: it holds no secret (the old PLINTH_CONFIG
	// variable put every key of the cluster in every process's /proc/PID/environ).
	t.Setenv("PLINTH_CONFIG", base64.StdEncoding.EncodeToString(withHostname(t, cp, "from-env")))
	if _, err := m.Boot(""); err == nil || !strings.Contains(err.Error(), "no configuration") {
		t.Fatalf("Boot with only $PLINTH_CONFIG = %v", err)
	}
	seed := filepath.Join(t.TempDir(), "seed.yaml")
	if err := os.WriteFile(seed, withHostname(t, cp, "from-seed"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := m.Boot(seed)
	if err != nil || cfg.Machine.Network.Hostname != "from-seed" {
		t.Fatalf("Boot from the seed file: %v %v", cfg, err)
	}
	// Stored now: the next boot uses the stored file even when the seed changes.
	if err := os.WriteFile(seed, withHostname(t, cp, "other"), 0o600); err != nil {
		t.Fatal(err)
	}
	m2 := New(dir, config.ModeDocker, clock.Real{}, slog.New(slog.DiscardHandler))
	cfg, err = m2.Boot(seed)
	if err != nil || cfg.Machine.Network.Hostname != "from-seed" {
		t.Fatalf("second Boot: %v %v", cfg.Machine.Network.Hostname, err)
	}
	// A staged configuration becomes active at boot.
	if err := os.WriteFile(filepath.Join(dir, "config.staged.yaml"), withHostname(t, cp, "staged"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err = New(dir, config.ModeDocker, clock.Real{}, slog.New(slog.DiscardHandler)).Boot("")
	if err != nil || cfg.Machine.Network.Hostname != "staged" {
		t.Fatalf("Boot with a staged config: %v %v", cfg.Machine.Network.Hostname, err)
	}
	if _, err := os.Stat(filepath.Join(dir, "config.staged.yaml")); !os.IsNotExist(err) {
		t.Error("the staged file is still there after boot")
	}
}

func TestBootRefusesInvalid(t *testing.T) {
	m, _, _, _ := newManager(t)
	seed := filepath.Join(t.TempDir(), "bad.yaml")
	if err := os.WriteFile(seed, []byte("apiVersion: plinth.dev/v1alpha1\nkind: MachineConfig\nmachine:\n  tpye: worker\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := m.Boot(seed)
	if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), `did you mean "type"`) {
		t.Errorf("Boot of an invalid config = %v", err)
	}
}

func TestApplyModes(t *testing.T) {
	cp := generated(t).ControlPlane
	m, clk, dir, changes := newManager(t)
	boot(t, m, withHostname(t, cp, "one"))

	// Invalid: refused, running config untouched.
	if _, err := m.Apply([]byte("kind: Nope\n"), ModeAuto, false, 0); !errors.Is(err, ErrInvalid) {
		t.Errorf("Apply of garbage = %v", err)
	}
	if cur, _ := m.Current(); cur.Machine.Network.Hostname != "one" {
		t.Error("a refused config replaced the running one")
	}

	// Dry run: diff, no change, secrets masked.
	res, err := m.Apply(withHostname(t, cp, "two"), ModeAuto, true, 0)
	if err != nil || !strings.Contains(res.Diff, "+    hostname: two") || !strings.Contains(res.Diff, "-    hostname: one") {
		t.Fatalf("dry run: %v\n%s", err, res.Diff)
	}
	if strings.Contains(res.Diff, cp.Machine.Token) {
		t.Error("the diff shows the join token")
	}
	if cur, _ := m.Current(); cur.Machine.Network.Hostname != "one" {
		t.Error("a dry run changed the config")
	}

	// No-reboot: applied, stored, notified.
	res, err = m.Apply(withHostname(t, cp, "two"), ModeNoReboot, false, 0)
	if err != nil || res.Mode != ModeNoReboot || res.RebootNeeded {
		t.Fatalf("no-reboot: %+v %v", res, err)
	}
	stored, _ := os.ReadFile(filepath.Join(dir, "config.yaml"))
	if !strings.Contains(string(stored), "hostname: two") {
		t.Error("no-reboot did not store the config")
	}

	// A type change needs a reboot: refused in no-reboot, reboot in auto.
	w := *cp
	w.Machine.Type = config.TypeWorker
	w.Machine.CA.Key, w.Cluster.CA.Key = nil, nil
	w.Cluster.AggregatorCA, w.Cluster.Etcd.CA = config.CertAndKey{}, config.CertAndKey{}
	w.Cluster.ServiceAccount, w.Cluster.SecretboxEncryptionSecret = config.ServiceAccountSpec{}, ""
	if _, err := m.Apply(marshal(t, &w), ModeNoReboot, false, 0); !errors.Is(err, ErrNeedsReboot) {
		t.Errorf("no-reboot of a type change = %v", err)
	}
	res, err = m.Apply(marshal(t, &w), ModeAuto, true, 0)
	if err != nil || res.Mode != ModeReboot {
		t.Errorf("auto (dry run) of a type change: %+v %v", res, err)
	}

	// Staged: written beside, not active.
	if _, err := m.Apply(withHostname(t, cp, "three"), ModeStaged, false, 0); err != nil {
		t.Fatal(err)
	}
	if cur, _ := m.Current(); cur.Machine.Network.Hostname != "two" {
		t.Error("staged changed the running config")
	}
	if _, err := os.Stat(filepath.Join(dir, "config.staged.yaml")); err != nil {
		t.Errorf("staged file: %v", err)
	}

	// Try: active at once, rolled back when the timer fires.
	if _, err := m.Apply(withHostname(t, cp, "trial"), ModeTry, false, 30*time.Second); err != nil {
		t.Fatal(err)
	}
	if cur, _ := m.Current(); cur.Machine.Network.Hostname != "trial" {
		t.Error("try did not activate")
	}
	clk.Advance(31 * time.Second)
	waitFor(t, func() bool { cur, _ := m.Current(); return cur.Machine.Network.Hostname == "two" })

	// Try then confirm by another apply: no rollback.
	if _, err := m.Apply(withHostname(t, cp, "trial2"), ModeTry, false, 30*time.Second); err != nil {
		t.Fatal(err)
	}
	if _, err := m.Apply(withHostname(t, cp, "trial2"), ModeNoReboot, false, 0); err != nil {
		t.Fatal(err)
	}
	// Confirming stops the trial's timer: with no timer pending on the fake clock, moving
	// it past the trial's end cannot roll anything back.
	if n := clk.Pending(); n != 0 {
		t.Fatalf("%d timers pending after the trial was confirmed", n)
	}
	clk.Advance(time.Minute)
	if cur, _ := m.Current(); cur.Machine.Network.Hostname != "trial2" {
		t.Error("a confirmed trial was rolled back")
	}
	waitFor(t, func() bool {
		return changes() == "two,trial,two,trial2,trial2"
	})
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not reached")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestRebootReasons checks which changes need a reboot on which platform: an install
// change does where the OS is installed, not in Docker, where nothing reads it.
func TestRebootReasons(t *testing.T) {
	a := &config.MachineConfig{}
	a.Machine.Type = config.TypeWorker
	a.Machine.Install.Disk = "/dev/sda"
	install := *a
	install.Machine.Install.Disk = "/dev/vda"
	typ := *a
	typ.Machine.Type = config.TypeControlPlane
	hostname := *a
	hostname.Machine.Network.Hostname = "other"
	for _, tc := range []struct {
		name string
		mode config.Mode
		b    *config.MachineConfig
		want string
	}{
		{"install, metal", config.ModeMetal, &install, "machine.install changed"},
		{"install, docker", config.ModeDocker, &install, ""},
		{"type, docker", config.ModeDocker, &typ, "machine.type changed"},
		{"hostname, metal", config.ModeMetal, &hostname, ""},
	} {
		if got := rebootReason(tc.mode, a, tc.b); got != tc.want {
			t.Errorf("%s: %q, want %q", tc.name, got, tc.want)
		}
	}
}

// TestStoreFirst: a machine without a configuration stores a valid one for its next boot,
// refuses an invalid one, and refuses to replace one.
func TestStoreFirst(t *testing.T) {
	m, _, dir, _ := newManager(t)
	if _, err := m.Boot(""); !errors.Is(err, ErrNoConfig) {
		t.Fatalf("Boot without any configuration: %v", err)
	}
	if err := m.StoreFirst([]byte("machine: {type: nonsense}\n")); err == nil {
		t.Error("stored an invalid configuration")
	}
	if _, err := os.Stat(filepath.Join(dir, "config.yaml")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("a refused configuration was written: %v", err)
	}
	good := marshal(t, generated(t).ControlPlane)
	if err := m.StoreFirst(good); err != nil {
		t.Fatal(err)
	}
	if err := m.StoreFirst(good); err == nil {
		t.Error("replaced a stored configuration")
	}
	cfg, err := m.Boot("")
	if err != nil || cfg == nil {
		t.Fatalf("Boot after StoreFirst: %v", err)
	}
}
