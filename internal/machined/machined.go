// Package machined wires a node together: configuration, the resource store and its
// controllers, the service supervisor (apid, trustd, ...), the logs and events, and the
// machine and resource APIs on machined's unix socket.
package machined

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"time"

	"google.golang.org/grpc"

	"github.com/plinthos/plinth/internal/apid"
	"github.com/plinthos/plinth/internal/clock"
	"github.com/plinthos/plinth/internal/configmgr"
	"github.com/plinthos/plinth/internal/controller"
	"github.com/plinthos/plinth/internal/controllers"
	"github.com/plinthos/plinth/internal/etcdintent"
	"github.com/plinthos/plinth/internal/events"
	"github.com/plinthos/plinth/internal/k8s/paths"
	"github.com/plinthos/plinth/internal/logstore"
	"github.com/plinthos/plinth/internal/machineapi"
	"github.com/plinthos/plinth/internal/metrics"
	"github.com/plinthos/plinth/internal/ports"
	"github.com/plinthos/plinth/internal/resource"
	"github.com/plinthos/plinth/internal/resources"
	"github.com/plinthos/plinth/internal/service"
	"github.com/plinthos/plinth/internal/version"
	"github.com/plinthos/plinth/pkg/api/machine"
	rpb "github.com/plinthos/plinth/pkg/api/resource"
	"github.com/plinthos/plinth/pkg/config"
)

// Options configure a machined run.
type Options struct {
	// Mode names the platform (PlatformFor): local, docker or metal.
	Mode string
	// StateDir holds the configuration, identity, logs and sockets.
	StateDir string
	// LogDir holds the services' logs (default: StateDir/log).
	LogDir string
	// EphemeralDir is what a reset's system-disk wipe empties at the next boot (EPHEMERAL,
	// /var; StateDir is kept when inside it); empty: nothing (local mode).
	EphemeralDir string
	// ConfigPath is the configuration file used when none is stored yet.
	ConfigPath string
	// Address is the node's address (local mode: a loopback address such as 127.0.0.1).
	Address string
	// APIPort and TrustdPort are where apid and trustd listen.
	APIPort, TrustdPort int
	// PeerAPIPort is the apid port of other nodes (default: APIPort).
	PeerAPIPort int
	// TrustdEndpoints are where a worker asks for its certificate, tried in order
	// (default: the control-plane endpoint's host on trustd's port).
	TrustdEndpoints []string
	// Executable is the machined binary, run again as `machined apid` (default: this one).
	Executable string
	// Hostname is the default host name (when the configuration sets none).
	Hostname string
}

// ErrReboot is returned by Run when the node should boot again (local mode: the caller
// re-executes machined).
var ErrReboot = errors.New("reboot requested")

// node holds a running node's parts.
type node struct {
	opts     Options
	platform Platform
	log      *slog.Logger
	logs     *logstore.Store
	events   *events.Stream
	cfg      *configmgr.Manager
	store    *resource.Store
	sup      *service.Supervisor
	policy   *apidPolicy
	metrics  *metrics.Metrics

	mu     sync.Mutex
	exit   error // what Run returns after the stop
	cancel context.CancelFunc

	// etcd decides, records and publishes how this control plane runs etcd (nil on a
	// platform without Kubernetes).
	etcd *etcdintent.Keeper
}

func (o *Options) defaults(p Platform) error {
	o.Mode = p.Name()
	if err := p.Defaults(o); err != nil {
		return err
	}
	if o.APIPort == 0 {
		o.APIPort = ports.NodeAPI
	}
	if o.TrustdPort == 0 {
		o.TrustdPort = ports.Trustd
	}
	if o.PeerAPIPort == 0 {
		o.PeerAPIPort = o.APIPort
	}
	if o.Executable == "" {
		exe, err := os.Executable()
		if err != nil {
			return fmt.Errorf("find the machined executable: %w", err)
		}
		o.Executable = exe
	}
	abs, err := filepath.Abs(o.StateDir)
	if err != nil {
		return err
	}
	o.StateDir = abs
	if o.LogDir == "" {
		o.LogDir = filepath.Join(o.StateDir, "log")
	}
	return nil
}

// Paths inside the state directory.
func (n *node) path(parts ...string) string {
	return filepath.Join(append([]string{n.opts.StateDir}, parts...)...)
}

// Run boots the node and serves until ctx is cancelled (returns nil), a shutdown (nil) or
// a reboot (ErrReboot) is requested.
func Run(ctx context.Context, opts Options, stderr io.Writer) error {
	platform, err := PlatformFor(opts.Mode)
	if err != nil {
		return err
	}
	if err := platform.Prepare(); err != nil {
		return err
	}
	if err := opts.defaults(platform); err != nil {
		return err
	}
	if err := wipeEphemeral(opts, stderr); err != nil {
		return err
	}
	for _, d := range []string{opts.StateDir, opts.LogDir} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return fmt.Errorf("create the state and log directories: %w", err)
		}
	}
	logs, err := logstore.Open(opts.LogDir, logstore.Options{})
	if err != nil {
		return err
	}
	defer logs.Close()
	base := slog.New(slog.NewTextHandler(io.MultiWriter(stderr, logs.Log("machined")), nil))
	log := base.With("component", "machined")
	n := &node{opts: opts, platform: platform, log: log, logs: logs, events: events.New(0, clock.Real{})}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	n.cancel = cancel
	n.events.Publish(events.Event{Type: "sequence", Message: "boot started", Data: map[string]string{"sequence": "boot", "version": version.Tag}})

	n.cfg = configmgr.New(opts.StateDir, platform.ConfigMode(), clock.Real{}, base.With("component", "config"))
	defer n.cfg.Close()
	initial, err := n.cfg.Boot(opts.ConfigPath)
	if errors.Is(err, configmgr.ErrNoConfig) {
		trust, uerr := platform.Unconfigured(&opts)
		switch {
		case errors.Is(uerr, ErrNeedsConfig):
			return err
		case uerr != nil:
			return fmt.Errorf("maintenance mode: %w", uerr)
		}
		n.opts = opts
		return runMaintenance(ctx, n, trust, stderr, log)
	}
	if err != nil {
		return err
	}
	if err := platform.Network(initial, &opts); err != nil {
		return fmt.Errorf("network: %w", err)
	}
	if opts.Hostname == "" {
		opts.Hostname = "plinth-" + strings.NewReplacer(".", "-", ":", "-").Replace(opts.Address)
	}
	n.opts = opts
	// OnChange calls come one at a time, newest configuration last (see configmgr); the
	// MachineConfig controller reads the manager's active configuration on each signal.
	updates := make(chan struct{}, 1)
	n.cfg.OnChange = func(c *config.MachineConfig, _ uint64) {
		n.events.Publish(events.Event{Type: "config", Message: "configuration changed"})
		if n.policy != nil {
			if err := n.policy.SetRevoked(c.Machine.RevokedCertificates); err != nil {
				log.Error("apid policy: revoked certificates", "error", err)
			}
		}
		select {
		case updates <- struct{}{}:
		default: // a signal is pending: the controller reads the newest configuration
		}
	}

	registry, err := resources.Definitions()
	if err != nil {
		return err
	}
	n.store = resource.NewStore(clock.Real{})
	n.sup = service.New(clock.Real{}, logs, n.events, base.With("component", "supervisor"))
	engine := controller.NewEngine(n.store, clock.Real{}, base.With("component", "controllers"))
	n.metrics = n.newMetrics(engine, logs)
	ctrls := []controller.Controller{
		&controllers.MachineConfig{Source: n.cfg, Changed: updates},
		&controllers.Hostname{Default: opts.Hostname},
		&controllers.NodeIdentity{StateDir: opts.StateDir},
		&controllers.Static[resources.NodeAddressSpec]{ControllerName: "network.NodeAddress", Namespace: resources.NamespaceNetwork,
			Type: resources.NodeAddressType, ID: resources.DefaultID, Spec: resources.NodeAddressSpec{Addresses: []string{opts.Address}}},
		&controllers.Static[resources.VersionSpec]{ControllerName: "runtime.Version", Namespace: resources.NamespaceRuntime,
			Type: resources.VersionType, ID: resources.VersionID, Spec: resources.VersionSpec{Tag: version.Tag, GoVersion: runtime.Version(),
				OS: runtime.GOOS, Arch: runtime.GOARCH, Platform: platform.Name()}},
		&controllers.APICertificate{IdentityDir: n.path("apid"), TrustdEndpoints: opts.TrustdEndpoints, Owner: apidUser(), SourceAddress: opts.Address},
		&controllers.ServiceStatus{Supervisor: n.sup},
	}
	ctrls = append(ctrls, platform.Controllers()...)
	var upg *upgrader
	if sp, ok := platform.(slotted); ok {
		upg = newUpgrader(n, sp)
		ctrls = append(ctrls, upg.controller())
	}
	if platform.Kubernetes() {
		if n.etcd, err = etcdintent.Open(n.path("etcd-intent.json"), paths.EtcdDataDir, time.Now); err != nil {
			return err
		}
		ctrls = append(ctrls, n.kubernetesControllers()...)
	}
	for _, c := range ctrls {
		if err := engine.Register(c); err != nil {
			return err
		}
	}
	if err := prepareAPIDir(opts.StateDir, n.path("apid"), apidUser()); err != nil {
		return err
	}
	n.policy, err = newAPIDPolicy(n.path("apid", apid.PolicyFileName), n.path("certified-nodes.json"), n.path("kubernetes-members.json"), apidUser(),
		[]string{opts.Address, n.hostname()}, base.With("component", "apid-policy"))
	if err != nil {
		return err
	}
	if err := n.policy.SetRevoked(initial.Machine.RevokedCertificates); err != nil {
		return fmt.Errorf("apid policy: %w", err)
	}
	if err := n.addServices(initial); err != nil {
		return err
	}
	if platform.Kubernetes() {
		if err := n.addKubernetesServices(); err != nil {
			return err
		}
	}

	socket := n.path("apid", "machined.sock")
	_ = os.Remove(socket)
	l, err := net.Listen("unix", socket)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", socket, err)
	}
	// Only apid's user may connect: machined trusts the roles apid forwards.
	if err := os.Chmod(socket, 0o600); err != nil {
		return err
	}
	if u := apidUser(); u != nil {
		if err := os.Chown(socket, u[0], u[1]); err != nil {
			return err
		}
	}
	gs := grpc.NewServer(grpc.ChainUnaryInterceptor(n.metrics.UnaryInterceptor()), grpc.ChainStreamInterceptor(n.metrics.StreamInterceptor()))
	var etcd machineapi.EtcdClient
	var ctrd machineapi.Containerd
	if platform.Kubernetes() {
		etcd, ctrd = etcdClient(), newCtrLister(n.log)
	}
	ms := &machineapi.MachineServer{
		Supervisor: n.sup, LogStore: logs, EventStream: n.events, Config: n.cfg, Lifecycle: n, Platform: platform.Name(),
		Hostname:     n.hostname,
		Endpoints:    func() []string { return []string{net.JoinHostPort(opts.Address, strconv.Itoa(opts.APIPort))} },
		BootID:       events.NewActorID(),
		System:       platform.System(opts),
		Bootstrapper: n,
		Containerd:   ctrd,
		Etcd:         etcd,
		MetricsText:  n.metrics.Text,
	}
	if upg != nil {
		ms.Upgrader = upg
	}
	machine.RegisterMachineServiceServer(gs, ms)
	rpb.RegisterResourceServiceServer(gs, &machineapi.ResourceServer{Store: n.store, Registry: registry})

	var wg sync.WaitGroup
	wg.Go(func() {
		if err := engine.Run(ctx); err != nil {
			log.Error("controller engine stopped", "error", err)
			cancel()
		}
	})
	wg.Go(func() {
		if err := n.sup.Run(ctx); err != nil {
			log.Error("services did not stop cleanly", "error", err)
		}
	})
	wg.Go(func() {
		if err := gs.Serve(l); err != nil {
			log.Error("machine API stopped", "error", err)
		}
	})
	if err := n.sup.StartAll(); err != nil {
		cancel()
		gs.Stop()
		wg.Wait()
		return err
	}
	wg.Go(func() {
		platform.Watch(ctx, func() {
			log.Info("the power button was pressed: shutting down")
			_ = n.Shutdown("power-button")
		})
	})
	if upg != nil {
		wg.Go(func() { upg.assess(ctx, base.With("component", "upgrade")) })
	}
	n.events.Publish(events.Event{Type: "sequence", Message: "boot done", Data: map[string]string{"sequence": "boot"}})
	log.Info("node is up", "platform", platform.Name(), "api", net.JoinHostPort(opts.Address, strconv.Itoa(opts.APIPort)), "type", initial.Machine.Type)

	<-ctx.Done()
	log.Info("stopping")
	stopped := make(chan struct{})
	go func() { gs.GracefulStop(); close(stopped) }()
	select {
	case <-stopped:
	case <-time.After(5 * time.Second):
		gs.Stop()
	}
	wg.Wait()
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.exit
}

// hostname returns the current host name from the store.
func (n *node) hostname() string {
	r, err := n.store.Get(resources.NamespaceNetwork, resources.HostnameType, resources.HostnameID)
	if err != nil {
		return n.opts.Hostname
	}
	return r.(*resource.Typed[resources.HostnameSpec]).TypedSpec().FQDN()
}
