package machined

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/plinthos/plinth/internal/clock"
	"github.com/plinthos/plinth/internal/configmgr"
	"github.com/plinthos/plinth/internal/etcdintent"
	"github.com/plinthos/plinth/internal/events"
	"github.com/plinthos/plinth/internal/machineapi"
	"github.com/plinthos/plinth/pkg/config"
)

// testNode is a node of platform with cfg as its configuration and an etcd keeper in a
// temporary state directory; cancelled is closed when the node would stop.
func testNode(t *testing.T, platform Platform, cfg *config.MachineConfig) (n *node, cancelled chan struct{}) {
	t.Helper()
	dir := t.TempDir()
	data, err := config.Marshal(cfg, false)
	if err != nil {
		t.Fatal(err)
	}
	seed := filepath.Join(dir, "seed.yaml")
	if err := os.WriteFile(seed, data, 0o600); err != nil {
		t.Fatal(err)
	}
	mgr := configmgr.New(dir, platform.ConfigMode(), clock.Real{}, slog.New(slog.NewTextHandler(io.Discard, nil)))
	t.Cleanup(mgr.Close)
	if _, err := mgr.Boot(seed); err != nil {
		t.Fatal(err)
	}
	keeper, err := etcdintent.Open(filepath.Join(dir, "etcd-intent.json"), filepath.Join(dir, "etcd"), time.Now)
	if err != nil {
		t.Fatal(err)
	}
	cancelled = make(chan struct{})
	n = &node{opts: Options{StateDir: dir}, platform: platform, events: events.New(0, clock.Real{}), cfg: mgr, etcd: keeper,
		cancel: func() { close(cancelled) }}
	return n, cancelled
}

// closedEndpoint is an https URL on loopback where nothing listens.
func closedEndpoint(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return "https://" + l.Addr().String()
}

func TestBootstrapDecides(t *testing.T) {
	cfg := controlPlaneConfig(t, closedEndpoint(t))
	n, _ := testNode(t, dockerPlatform{}, cfg)
	if _, err := n.Bootstrap(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := n.etcd.Current().Role; got != etcdintent.RoleBootstrap {
		t.Fatalf("after bootstrap: %q", got)
	}
	if _, err := n.Bootstrap(context.Background()); !errors.Is(err, machineapi.ErrAlreadyBootstrapped) {
		t.Fatalf("second bootstrap: %v", err)
	}
}

func TestBootstrapRefusedWhereNoEtcdRuns(t *testing.T) {
	cs := generatedConfigs(t, closedEndpoint(t))
	for name, tc := range map[string]struct {
		platform Platform
		cfg      *config.MachineConfig
	}{
		"worker":         {dockerPlatform{}, cs.Worker},
		"local platform": {localPlatform{}, cs.ControlPlane},
	} {
		t.Run(name, func(t *testing.T) {
			n, _ := testNode(t, tc.platform, tc.cfg)
			if _, err := n.Bootstrap(context.Background()); !errors.Is(err, machineapi.ErrCannotBootstrap) {
				t.Fatalf("bootstrap: %v", err)
			}
			if got := n.etcd.Current().Role; got != etcdintent.RoleNone {
				t.Fatalf("decided %q", got)
			}
		})
	}
}

func TestResetForgetsTheNode(t *testing.T) {
	cfg := controlPlaneConfig(t, closedEndpoint(t))
	n, cancelled := testNode(t, dockerPlatform{}, cfg)
	if _, err := n.Bootstrap(context.Background()); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"node-id", "certified-nodes.json", "apid/node.crt"} {
		if err := os.MkdirAll(filepath.Dir(n.path(f)), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(n.path(f), []byte("x"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if err := n.Reset("test", false, true, machineapi.WipeSystemDisk); err != nil {
		t.Fatal(err)
	}
	select {
	case <-cancelled:
	case <-time.After(10 * time.Second):
		t.Fatal("reset did not stop the node")
	}
	if !errors.Is(n.exit, ErrReboot) {
		t.Errorf("reset --reboot ends with %v", n.exit)
	}
	for _, f := range []string{"config.yaml", "node-id", "certified-nodes.json", "apid"} {
		if _, err := os.Stat(n.path(f)); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s after reset: %v", f, err)
		}
	}
	if got := n.etcd.Current().Role; got != etcdintent.RoleNone {
		t.Errorf("etcd decision after reset: %q", got)
	}
}
