package controllers

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"github.com/plinthos/plinth/internal/controller"
	"github.com/plinthos/plinth/internal/resources"
)

// DefaultNetworkResync is how often NetworkStatus re-reads the whole kernel state when no
// change notification arrived.
const DefaultNetworkResync = time.Minute

// NetworkStatus mirrors the kernel's links, addresses and routes (of every routing table) as
// LinkStatus, AddressStatus and RouteStatus resources. It subscribes to the kernel's change
// notifications and re-reads everything on each of them, and every Resync besides.
type NetworkStatus struct {
	// Handle reads the kernel state; nil opens a NETLINK_ROUTE handle in machined's network
	// namespace (and closes it when the controller stops).
	Handle *netlink.Handle
	// Namespace is the network namespace Handle reads, for the change subscriptions; nil is
	// machined's own.
	Namespace *netns.NsHandle
	// Resync is the period of the full re-read that backs up the subscriptions;
	// DefaultNetworkResync when zero.
	Resync time.Duration
}

// Name implements controller.Controller.
func (c *NetworkStatus) Name() string { return "network.Status" }

// Inputs implements controller.Controller.
func (c *NetworkStatus) Inputs() []controller.Input { return nil }

// Outputs implements controller.Controller.
func (c *NetworkStatus) Outputs() []controller.Output {
	return []controller.Output{{Type: resources.LinkStatusType}, {Type: resources.AddressStatusType}, {Type: resources.RouteStatusType}}
}

// maxDumpRetries bounds the immediate re-reads after the kernel interrupted a dump (the
// state changed while it was read); the next notification or resync reads again anyway.
const maxDumpRetries = 3

// Run implements controller.Controller.
func (c *NetworkStatus) Run(ctx context.Context, rt controller.Runtime, log *slog.Logger) error {
	h := c.Handle
	if h == nil {
		var err error
		if h, err = netlink.NewHandle(unix.NETLINK_ROUTE); err != nil {
			return fmt.Errorf("netlink: %w", err)
		}
		defer h.Close()
	}
	changed := make(chan struct{}, 1)
	sub := newNetSubscriber(c.Namespace, changed, log)
	defer sub.stop()
	sub.start()
	period := c.Resync
	if period <= 0 {
		period = DefaultNetworkResync
	}
	for {
		var err error
		for range maxDumpRetries {
			if err = c.reconcile(ctx, rt, h); !errors.Is(err, netlink.ErrDumpInterrupted) {
				break
			}
		}
		switch {
		case errors.Is(err, netlink.ErrDumpInterrupted):
			log.Debug("netlink dump interrupted, reading again later")
		case err != nil:
			return err
		}
		timer := rt.Clock().NewTimer(period)
		select {
		case <-ctx.Done():
			timer.Stop()
			return nil
		case <-changed:
		case <-timer.C():
		}
		timer.Stop()
	}
}

// reconcile reads the links, addresses and routes and mirrors them as resources.
func (c *NetworkStatus) reconcile(ctx context.Context, rt controller.Runtime, h *netlink.Handle) error {
	links, err := h.LinkList()
	if err != nil {
		return fmt.Errorf("list links: %w", err)
	}
	addrs, err := h.AddrList(nil, netlink.FAMILY_ALL)
	if err != nil {
		return fmt.Errorf("list addresses: %w", err)
	}
	routes, err := h.RouteListFiltered(netlink.FAMILY_ALL, &netlink.Route{Table: unix.RT_TABLE_UNSPEC}, netlink.RT_FILTER_TABLE)
	if err != nil {
		return fmt.Errorf("list routes: %w", err)
	}
	names := map[int]string{}
	for _, l := range links {
		names[l.Attrs().Index] = l.Attrs().Name
	}
	if err := mirror(ctx, rt, resources.NamespaceNetwork, resources.LinkStatusType, linkSpecs(links, names)); err != nil {
		return err
	}
	if err := mirror(ctx, rt, resources.NamespaceNetwork, resources.AddressStatusType, addressSpecs(addrs, names)); err != nil {
		return err
	}
	return mirror(ctx, rt, resources.NamespaceNetwork, resources.RouteStatusType, routeSpecs(routes, names))
}

// linkSpecs builds the LinkStatus specs by link name; names maps interface indexes to names.
func linkSpecs(links []netlink.Link, names map[int]string) map[string]resources.LinkStatusSpec {
	out := make(map[string]resources.LinkStatusSpec, len(links))
	for _, l := range links {
		a := l.Attrs()
		spec := resources.LinkStatusSpec{
			Index:            a.Index,
			Type:             a.EncapType,
			Kind:             l.Type(),
			MTU:              a.MTU,
			OperationalState: a.OperState.String(),
			Up:               a.Flags&net.FlagUp != 0,
			Master:           names[a.MasterIndex],
		}
		if spec.Kind == "device" { // no IFLA_INFO_KIND: a hardware device or the loopback
			spec.Kind = ""
		}
		if len(a.HardwareAddr) > 0 {
			spec.HardwareAddr = a.HardwareAddr.String()
		}
		// A veth's IFLA_LINK is its peer, possibly of another namespace: not a parent.
		if a.ParentIndex != 0 && spec.Kind != "veth" {
			spec.Parent = names[a.ParentIndex]
		}
		if v, ok := l.(*netlink.Vlan); ok {
			spec.VLANID = v.VlanId
		}
		out[a.Name] = spec
	}
	return out
}

// addressFlags names the address flags AddressStatus reports.
var addressFlags = []struct {
	flag int
	name string
}{
	{unix.IFA_F_PERMANENT, "permanent"},
	{unix.IFA_F_SECONDARY, "secondary"},
	{unix.IFA_F_TENTATIVE, "tentative"},
	{unix.IFA_F_DEPRECATED, "deprecated"},
	{unix.IFA_F_DADFAILED, "dadfailed"},
	{unix.IFA_F_NODAD, "nodad"},
	{unix.IFA_F_NOPREFIXROUTE, "noprefixroute"},
}

// addressSpecs builds the AddressStatus specs by "link/address/prefix".
func addressSpecs(addrs []netlink.Addr, names map[int]string) map[string]resources.AddressStatusSpec {
	out := make(map[string]resources.AddressStatusSpec, len(addrs))
	for _, a := range addrs {
		if a.IPNet == nil {
			continue
		}
		link := linkName(names, a.LinkIndex)
		spec := resources.AddressStatusSpec{
			Link:      link,
			LinkIndex: a.LinkIndex,
			Address:   a.IPNet.String(),
			Family:    ipFamily(a.IP),
			Scope:     netlink.Scope(a.Scope).String(),
		}
		for _, f := range addressFlags {
			if a.Flags&f.flag != 0 {
				spec.Flags = append(spec.Flags, f.name)
			}
		}
		out[link+"/"+spec.Address] = spec
	}
	return out
}

// routeSpecs builds the RouteStatus specs by "family/table/destination/gateway/link/metric".
func routeSpecs(routes []netlink.Route, names map[int]string) map[string]resources.RouteStatusSpec {
	out := make(map[string]resources.RouteStatusSpec, len(routes))
	for _, r := range routes {
		spec := resources.RouteStatusSpec{
			Table:       tableName(r.Table),
			Family:      familyName(r.Family),
			Type:        routeType(r.Type),
			Destination: "default",
			Metric:      r.Priority,
			Scope:       r.Scope.String(),
			Protocol:    r.Protocol.String(),
		}
		if r.Dst != nil {
			if ones, _ := r.Dst.Mask.Size(); ones != 0 || !r.Dst.IP.IsUnspecified() {
				spec.Destination = r.Dst.String()
			}
		}
		if r.Src != nil {
			spec.Source = r.Src.String()
		}
		if len(r.MultiPath) == 0 {
			if r.Gw != nil {
				spec.Gateway = r.Gw.String()
			}
			if r.LinkIndex != 0 {
				spec.Link = linkName(names, r.LinkIndex)
			}
		} else {
			var gws, links []string
			for _, nh := range r.MultiPath {
				if nh.Gw != nil {
					gws = append(gws, nh.Gw.String())
				}
				links = append(links, linkName(names, nh.LinkIndex))
			}
			spec.Gateway, spec.Link = strings.Join(gws, ","), strings.Join(links, ",")
		}
		id := strings.Join([]string{spec.Family, spec.Table, spec.Destination, dash(spec.Gateway), dash(spec.Link), strconv.Itoa(spec.Metric)}, "/")
		// Routes differing only in what the ID leaves out (type, TOS) are rare; number them.
		for n := 2; ; n++ {
			if _, taken := out[id]; !taken {
				break
			}
			id = strings.TrimSuffix(id, "#"+strconv.Itoa(n-1)) + "#" + strconv.Itoa(n)
		}
		out[id] = spec
	}
	return out
}

// linkName is the name of the link with index i, or its index when it is unknown (a link
// that appeared after the links were listed).
func linkName(names map[int]string, i int) string {
	if n, ok := names[i]; ok {
		return n
	}
	return "if" + strconv.Itoa(i)
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func ipFamily(ip net.IP) string {
	if ip.To4() != nil {
		return "ipv4"
	}
	return "ipv6"
}

func familyName(f int) string {
	switch f {
	case unix.AF_INET:
		return "ipv4"
	case unix.AF_INET6:
		return "ipv6"
	}
	return "af" + strconv.Itoa(f)
}

func tableName(t int) string {
	switch t {
	case unix.RT_TABLE_MAIN:
		return "main"
	case unix.RT_TABLE_LOCAL:
		return "local"
	case unix.RT_TABLE_DEFAULT:
		return "default"
	}
	return strconv.Itoa(t)
}

func routeType(t int) string {
	switch t {
	case unix.RTN_UNICAST:
		return "unicast"
	case unix.RTN_LOCAL:
		return "local"
	case unix.RTN_BROADCAST:
		return "broadcast"
	case unix.RTN_ANYCAST:
		return "anycast"
	case unix.RTN_MULTICAST:
		return "multicast"
	case unix.RTN_BLACKHOLE:
		return "blackhole"
	case unix.RTN_UNREACHABLE:
		return "unreachable"
	case unix.RTN_PROHIBIT:
		return "prohibit"
	case unix.RTN_THROW:
		return "throw"
	case unix.RTN_NAT:
		return "nat"
	}
	return strconv.Itoa(t)
}

// netResubscribeDelay is the pause before a subscription that failed is renewed.
const netResubscribeDelay = time.Second

// netSubscriber turns the kernel's link, address and route notifications into coalesced
// signals on changed. A subscription that fails (such as when its socket's buffer overflowed)
// signals, since changes may have been missed, and is renewed.
type netSubscriber struct {
	ns      *netns.NsHandle
	changed chan<- struct{}
	log     *slog.Logger
	done    chan struct{}
	wg      sync.WaitGroup
}

func newNetSubscriber(ns *netns.NsHandle, changed chan<- struct{}, log *slog.Logger) *netSubscriber {
	return &netSubscriber{ns: ns, changed: changed, log: log, done: make(chan struct{})}
}

func (s *netSubscriber) signal() {
	select {
	case s.changed <- struct{}{}:
	default:
	}
}

func (s *netSubscriber) stopping() bool {
	select {
	case <-s.done:
		return true
	default:
		return false
	}
}

// onError logs a subscription's errors, except those of its closing.
func (s *netSubscriber) onError(kind string) func(error) {
	return func(err error) {
		if !s.stopping() {
			s.log.Debug("netlink subscription", "kind", kind, "error", err)
		}
	}
}

// start subscribes to link, address and route changes. The first subscriptions are made
// before it returns, so that a change after it (say, between the controller's start and
// its first read) is signalled, not left to the periodic resync.
func (s *netSubscriber) start() {
	s.wg.Add(3)
	keepSubscribed(s, "link", func(ch chan netlink.LinkUpdate) error {
		return netlink.LinkSubscribeWithOptions(ch, s.done, netlink.LinkSubscribeOptions{Namespace: s.ns, ErrorCallback: s.onError("link")})
	})
	keepSubscribed(s, "address", func(ch chan netlink.AddrUpdate) error {
		return netlink.AddrSubscribeWithOptions(ch, s.done, netlink.AddrSubscribeOptions{Namespace: s.ns, ErrorCallback: s.onError("address")})
	})
	keepSubscribed(s, "route", func(ch chan netlink.RouteUpdate) error {
		return netlink.RouteSubscribeWithOptions(ch, s.done, netlink.RouteSubscribeOptions{Namespace: s.ns, ErrorCallback: s.onError("route")})
	})
}

// stop ends the subscriptions and waits for their goroutines.
func (s *netSubscriber) stop() {
	close(s.done)
	s.wg.Wait()
}

// keepSubscribed subscribes with subscribe, then, in a goroutine, signals on every update
// until the subscriber stops; the subscription is renewed whenever it ends.
func keepSubscribed[U any](s *netSubscriber, kind string, subscribe func(chan U) error) {
	ch := subscribeOnce(s, kind, subscribe)
	go func() {
		defer s.wg.Done()
		for {
			// The channel closes once the subscription ends: when done closes, or on an
			// error. A nil channel (the subscription failed) is skipped.
			if ch != nil {
				for range ch {
					s.signal()
				}
			}
			if s.stopping() {
				return
			}
			s.signal()
			select {
			case <-s.done:
				return
			case <-time.After(netResubscribeDelay):
			}
			ch = subscribeOnce(s, kind, subscribe)
		}
	}()
}

// subscribeOnce makes one subscription and returns its channel, or nil when it failed.
func subscribeOnce[U any](s *netSubscriber, kind string, subscribe func(chan U) error) chan U {
	ch := make(chan U, 64)
	if err := subscribe(ch); err != nil {
		s.log.Warn("netlink subscription failed; relying on the periodic resync", "kind", kind, "error", err)
		return nil
	}
	return ch
}
