package controllers

import (
	"context"
	"fmt"
	"log/slog"
	"net/netip"
	"slices"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"

	"github.com/plinthos/plinth/internal/controller"
	"github.com/plinthos/plinth/internal/dhcpclient"
	"github.com/plinthos/plinth/internal/netconf"
	"github.com/plinthos/plinth/internal/resolvconf"
	"github.com/plinthos/plinth/internal/resource"
	"github.com/plinthos/plinth/internal/resources"
	"github.com/plinthos/plinth/pkg/config"
)

// DHCP keeps a DHCPv4 lease on every link and VLAN of machine.network with dhcp set
// (internal/dhcpclient), starting from the leases the boot acquired, and publishes them
// as DHCPLease resources. A link that the configuration no longer gives DHCP has its lease
// released; so do all when machined stops.
type DHCP struct {
	// LeaseDir is where the boot left the leases; dhcpclient.DefaultLeaseDir when empty.
	LeaseDir string
	// Handle and Namespace are the clients' netlink handle and network namespace; nil are
	// machined's own.
	Handle    *netlink.Handle
	Namespace *netns.NsHandle
	// Tune, when set, adjusts each client before it runs (tests shorten its timeouts).
	Tune func(*dhcpclient.Client)
}

// Name implements controller.Controller.
func (c *DHCP) Name() string { return "network.DHCP" }

// Inputs implements controller.Controller.
func (c *DHCP) Inputs() []controller.Input { return []controller.Input{machineConfigInput} }

// Outputs implements controller.Controller.
func (c *DHCP) Outputs() []controller.Output {
	return []controller.Output{{Type: resources.DHCPLeaseType}}
}

type leaseUpdate struct {
	link  string
	lease *dhcpclient.Lease
}

// Run implements controller.Controller.
func (c *DHCP) Run(ctx context.Context, rt controller.Runtime, log *slog.Logger) error {
	dir := c.LeaseDir
	if dir == "" {
		dir = dhcpclient.DefaultLeaseDir
	}
	type running struct {
		cancel context.CancelFunc
		done   chan struct{}
	}
	clients := map[string]*running{}
	leases := map[string]resources.DHCPLeaseSpec{}
	updates := make(chan leaseUpdate)
	stop := func(link string) {
		r := clients[link]
		r.cancel()
		<-r.done
		delete(clients, link)
		delete(leases, link)
	}
	defer func() {
		for link := range clients {
			stop(link)
		}
	}()
	start := func(link string) {
		runCtx, cancel := context.WithCancel(ctx)
		r := &running{cancel: cancel, done: make(chan struct{})}
		clients[link] = r
		cl := &dhcpclient.Client{Link: link, Handle: c.Handle, Namespace: c.Namespace, LeaseDir: dir, Log: log,
			OnLease: func(l *dhcpclient.Lease) {
				select {
				case updates <- leaseUpdate{link: link, lease: l}:
				case <-runCtx.Done():
				}
			}}
		if c.Tune != nil {
			c.Tune(cl)
		}
		go func() {
			defer close(r.done)
			if err := cl.Run(runCtx); err != nil {
				log.Error("DHCP client stopped", "link", link, "error", err)
			}
		}()
	}
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-rt.EventCh():
			cfg, err := machineConfig(rt)
			if err != nil {
				return err
			}
			if cfg == nil {
				continue
			}
			want := netconf.DHCPLinks(cfg.Machine.Network.Interfaces)
			for link := range clients {
				if !slices.Contains(want, link) {
					log.Info("DHCP no longer configured", "link", link)
					stop(link)
				}
			}
			for _, link := range want {
				if clients[link] == nil {
					start(link)
				}
			}
		case u := <-updates:
			if u.lease == nil {
				delete(leases, u.link)
			} else {
				leases[u.link] = leaseSpec(u.lease)
			}
		}
		if err := mirror(ctx, rt, resources.NamespaceNetwork, resources.DHCPLeaseType, leases); err != nil {
			return err
		}
	}
}

// leaseSpec is the DHCPLease resource of a lease.
func leaseSpec(l *dhcpclient.Lease) resources.DHCPLeaseSpec {
	spec := resources.DHCPLeaseSpec{
		Address:  l.Address.String(),
		Search:   slices.Clone(l.Search),
		Acquired: l.Acquired.UTC().Format(time.RFC3339),
		Renew:    l.Acquired.Add(l.T1).UTC().Format(time.RFC3339),
		Expires:  l.Expires().UTC().Format(time.RFC3339),
	}
	if l.Server.IsValid() {
		spec.Server = l.Server.String()
	}
	for _, r := range l.Routes {
		switch {
		case r.Destination.Bits() == 0 && r.Gateway.IsValid() && spec.Gateway == "":
			spec.Gateway = r.Gateway.String()
		case r.Gateway.IsValid():
			spec.Routes = append(spec.Routes, r.Destination.String()+" via "+r.Gateway.String())
		default:
			spec.Routes = append(spec.Routes, r.Destination.String())
		}
	}
	for _, d := range l.DNS {
		spec.DNS = append(spec.DNS, d.String())
	}
	return spec
}

// Resolvers writes the machine's resolver configuration (Path) from
// machine.network.nameservers or, when that is empty, from the name servers and search
// domains of the DHCP leases, in the order of the links' names. With neither it leaves
// the file as the image has it, until it has written it once.
type Resolvers struct {
	// Path is the file written; resolvconf.Path when empty.
	Path string
}

// Name implements controller.Controller.
func (c *Resolvers) Name() string { return "network.Resolvers" }

// Inputs implements controller.Controller.
func (c *Resolvers) Inputs() []controller.Input {
	return []controller.Input{machineConfigInput, {Namespace: resources.NamespaceNetwork, Type: resources.DHCPLeaseType}}
}

// Outputs implements controller.Controller: the file is its only output.
func (c *Resolvers) Outputs() []controller.Output { return nil }

// Run implements controller.Controller.
func (c *Resolvers) Run(ctx context.Context, rt controller.Runtime, log *slog.Logger) error {
	path := c.Path
	if path == "" {
		path = resolvconf.Path
	}
	wrote := false
	return followConfig(ctx, rt, func(cfg *config.MachineConfig) {
		servers, search, err := resolvers(rt, cfg.Machine.Network.Nameservers)
		if err != nil {
			log.Error("resolvers", "error", err)
			return
		}
		if len(servers) == 0 && !wrote {
			return
		}
		changed, err := resolvconf.Write(path, servers, search)
		if err != nil {
			log.Error("resolvers", "error", err)
			return
		}
		wrote = true
		if changed {
			log.Info("resolvers written", "path", path, "nameservers", servers, "search", search)
		}
	})
}

// resolvers returns the configured name servers, or those of the DHCP leases with their
// search domains.
func resolvers(rt controller.Runtime, configured []string) ([]netip.Addr, []string, error) {
	var servers []netip.Addr
	for _, s := range configured {
		a, err := netip.ParseAddr(s)
		if err != nil {
			return nil, nil, fmt.Errorf("machine.network.nameservers: %w", err)
		}
		servers = append(servers, a)
	}
	if len(servers) > 0 {
		return servers, nil, nil
	}
	list, err := rt.List(resources.NamespaceNetwork, resources.DHCPLeaseType)
	if err != nil {
		return nil, nil, err
	}
	var search []string
	for _, r := range list {
		typed, ok := r.(*resource.Typed[resources.DHCPLeaseSpec])
		if !ok {
			return nil, nil, fmt.Errorf("DHCP lease %s has spec %T", r.Metadata().ID, r.Spec())
		}
		spec := typed.TypedSpec()
		for _, d := range spec.DNS {
			if a, err := netip.ParseAddr(d); err == nil {
				servers = append(servers, a)
			}
		}
		search = append(search, spec.Search...)
	}
	return servers, search, nil
}
