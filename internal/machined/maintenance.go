package machined

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strconv"
	"sync"

	"github.com/plinthos/plinth/internal/events"
	"github.com/plinthos/plinth/internal/machineapi"
	"github.com/plinthos/plinth/internal/maintenance"
	"github.com/plinthos/plinth/pkg/api/machine"
)

// ErrNeedsConfig is returned by Platform.Unconfigured on platforms that cannot wait for a
// configuration: the node does not start without one.
var ErrNeedsConfig = errors.New("a configuration is required on this platform")

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
		Apply: func(_ context.Context, data []byte) (string, error) {
			if err := n.cfg.StoreFirst(data); err != nil {
				return "", err
			}
			log.Info("maintenance: a configuration was stored; rebooting into it")
			// The server stops gracefully: this reply goes out before the reboot.
			storedOnce.Do(func() { close(stored) })
			return "stored; the machine reboots into its configuration", nil
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
