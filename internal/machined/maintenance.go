package machined

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"sync"

	"github.com/plinthos/plinth/internal/clock"
	"github.com/plinthos/plinth/internal/configmgr"
	"github.com/plinthos/plinth/internal/events"
	"github.com/plinthos/plinth/internal/machineapi"
	"github.com/plinthos/plinth/internal/maintenance"
	"github.com/plinthos/plinth/pkg/api/machine"
	"github.com/plinthos/plinth/pkg/config"
)

// ErrNeedsConfig is returned by Platform.Unconfigured on platforms that cannot wait for a
// configuration: the node does not start without one.
var ErrNeedsConfig = errors.New("a configuration is required on this platform")

// mediaInstaller is a platform that can boot from install media: there, a configuration is
// installed with the OS onto the machine's disk instead of being stored.
type mediaInstaller interface {
	Live() bool
	// Install installs the OS and stores the configuration; bootArgs go on the installed
	// system's kernel command line before machine.install.extraKernelArgs.
	Install(ctx context.Context, cfg *config.MachineConfig, bootArgs []string, store func(dir string) error, log *slog.Logger) (string, error)
}

// runMaintenance serves the maintenance API of a machine without a configuration until a
// client with the trust anchor's admin certificate stores one; then the machine reboots
// into it (ErrReboot). console receives what an operator at the console needs.
func runMaintenance(ctx context.Context, n *node, trust maintenance.Trust, console io.Writer, log *slog.Logger) error {
	anchor := trust.Anchor
	addr := net.JoinHostPort(n.opts.Address, strconv.Itoa(n.opts.APIPort))
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("maintenance API: %w", err)
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stored := make(chan struct{})
	var storedOnce sync.Once
	// One install at a time, and none after one succeeded (the machine is rebooting).
	var installMu sync.Mutex
	installed := false
	api := &machineapi.MachineServer{Platform: n.platform.Name(), Hostname: func() string { return n.opts.Hostname },
		BootID: events.NewActorID(), System: n.platform.System(n.opts)}
	srv := &maintenance.Server{
		Anchor:    anchor,
		Revoked:   trust.Revoked,
		KernelLog: api.Dmesg,
		VersionInfo: func() *machine.VersionResponse {
			v, _ := api.Version(ctx, nil)
			return v
		},
		Apply: func(ctx context.Context, data []byte) (string, error) {
			msg := "stored; the machine reboots into its configuration"
			if inst, ok := n.platform.(mediaInstaller); ok && inst.Live() {
				cfg, err := n.cfg.Check(data)
				if err != nil {
					return "", err
				}
				store := func(dir string) error {
					return configmgr.New(dir, n.platform.ConfigMode(), clock.Real{}, log).StoreFirst(data)
				}
				installMu.Lock()
				defer installMu.Unlock()
				if installed {
					return "", errors.New("installed already: the machine is rebooting from its disk")
				}
				// The installed system keeps this boot's trust: after a reset it takes a
				// configuration from the same CA's admin only (the entry cannot be edited at
				// the console).
				var keep []string
				if anchor != nil {
					keep = append(keep, "plinth.trust="+anchor.String())
				}
				if len(trust.Revoked) > 0 {
					keep = append(keep, "plinth.revoked="+strings.Join(trust.Revoked, ","))
				}
				if msg, err = inst.Install(ctx, cfg, keep, store, log); err != nil {
					return "", err
				}
				installed = true
				log.Info("maintenance: installed; rebooting from the disk")
			} else {
				if err := n.cfg.StoreFirst(data); err != nil {
					return "", err
				}
				log.Info("maintenance: a configuration was stored; rebooting into it")
			}
			// The server stops gracefully: this reply goes out before the reboot.
			storedOnce.Do(func() { close(stored) })
			return msg, nil
		},
	}
	errc := make(chan error, 1)
	go func() {
		errc <- srv.Serve(ctx, l, []string{n.opts.Address}, func(fp string) {
			if anchor == nil {
				fmt.Fprintf(console, "\nplinth: maintenance mode: this machine has no configuration and no trust anchor (plinth.trust= on the kernel command line): it accepts no configuration over the network.\n\n")
				return
			}
			fmt.Fprintf(console, "\nplinth: maintenance mode: this machine has no configuration.\n"+
				"plinth: it accepts one from an os:admin of the CA %s at %s, certificate %s:\n"+
				"plinth:   plinthctl apply-config --maintenance --fingerprint %s -e %s -f controlplane.yaml\n\n",
				anchor, addr, fp, fp, addr)
			log.Info("maintenance mode", "api", addr, "fingerprint", fp, "anchor", anchor.String())
		})
	}()
	select {
	case <-stored:
		cancel()
		<-errc
		return ErrReboot
	case err := <-errc:
		return err
	case <-ctx.Done():
		<-errc
		return nil
	}
}
