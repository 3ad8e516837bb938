package dhcpclient

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"time"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// RouteMetric is the metric of the routes a lease gives (as static routes without one).
const RouteMetric = 1024

// apply puts the lease's address on its link, valid until the lease expires (so the kernel
// drops it even if nothing renews it), and replaces its routes, marked as DHCP's (`proto
// dhcp`). prev is the lease it replaces, if any: its address and routes that the new lease
// lacks are removed.
func apply(h *netlink.Handle, l, prev *Lease, now time.Time) error {
	link, err := h.LinkByName(l.Link)
	if err != nil {
		return fmt.Errorf("link %s: %w", l.Link, err)
	}
	if link.Attrs().Flags&net.FlagUp == 0 {
		if err := h.LinkSetUp(link); err != nil {
			return fmt.Errorf("bring %s up: %w", l.Link, err)
		}
	}
	if prev != nil && prev.Address != l.Address {
		if err := delAddress(h, link, prev.Address); err != nil {
			return err
		}
	}
	left := int(l.Expires().Sub(now) / time.Second)
	if left <= 0 {
		return fmt.Errorf("the lease of %s on %s has expired", l.Address, l.Link)
	}
	addr := &netlink.Addr{IPNet: ipNet(l.Address), ValidLft: left, PreferedLft: left}
	if err := h.AddrReplace(link, addr); err != nil {
		return fmt.Errorf("add address %s to %s: %w", l.Address, l.Link, err)
	}
	var errs []error
	want := map[string]bool{}
	for _, r := range l.Routes {
		route := toRoute(link, l, r)
		want[routeKey(route)] = true
		if err := h.RouteReplace(route); err != nil {
			errs = append(errs, fmt.Errorf("route %s via %v on %s: %w", r.Destination, r.Gateway, l.Link, err))
		}
	}
	if err := delRoutes(h, link, want); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// unapply removes the lease's address and the link's DHCP routes.
func unapply(h *netlink.Handle, l *Lease) error {
	link, err := h.LinkByName(l.Link)
	if err != nil {
		return fmt.Errorf("link %s: %w", l.Link, err)
	}
	return errors.Join(delRoutes(h, link, nil), delAddress(h, link, l.Address))
}

func delAddress(h *netlink.Handle, link netlink.Link, p netip.Prefix) error {
	if err := h.AddrDel(link, &netlink.Addr{IPNet: ipNet(p)}); err != nil && !errors.Is(err, unix.EADDRNOTAVAIL) && !errors.Is(err, unix.ENOENT) {
		return fmt.Errorf("remove address %s from %s: %w", p, link.Attrs().Name, err)
	}
	return nil
}

// delRoutes removes the link's DHCP routes whose key is not kept.
func delRoutes(h *netlink.Handle, link netlink.Link, keep map[string]bool) error {
	routes, err := h.RouteListFiltered(netlink.FAMILY_V4, &netlink.Route{LinkIndex: link.Attrs().Index, Protocol: unix.RTPROT_DHCP},
		netlink.RT_FILTER_OIF|netlink.RT_FILTER_PROTOCOL)
	if err != nil {
		return fmt.Errorf("list the routes of %s: %w", link.Attrs().Name, err)
	}
	var errs []error
	for _, r := range routes {
		if keep[routeKey(&r)] {
			continue
		}
		if err := h.RouteDel(&r); err != nil && !errors.Is(err, unix.ESRCH) {
			errs = append(errs, fmt.Errorf("remove route %v from %s: %w", r.Dst, link.Attrs().Name, err))
		}
	}
	return errors.Join(errs...)
}

func toRoute(link netlink.Link, l *Lease, r Route) *netlink.Route {
	route := &netlink.Route{
		LinkIndex: link.Attrs().Index,
		Dst:       ipNet(r.Destination),
		Src:       l.Address.Addr().AsSlice(),
		Priority:  RouteMetric,
		Protocol:  unix.RTPROT_DHCP,
		Table:     unix.RT_TABLE_MAIN,
		Family:    netlink.FAMILY_V4,
	}
	switch {
	case !r.Gateway.IsValid():
		route.Scope = netlink.SCOPE_LINK
	case l.Address.Masked().Contains(r.Gateway):
		route.Gw = r.Gateway.AsSlice()
	default:
		// A router outside the subnet (such as a /32 lease's) is reached on the link.
		route.Gw = r.Gateway.AsSlice()
		route.Flags = int(netlink.FLAG_ONLINK)
	}
	return route
}

// routeKey identifies a route for delRoutes: its destination and gateway.
func routeKey(r *netlink.Route) string {
	dst := "0.0.0.0/0"
	if r.Dst != nil {
		dst = r.Dst.String()
	}
	return dst + " " + r.Gw.String()
}

func ipNet(p netip.Prefix) *net.IPNet {
	return &net.IPNet{IP: p.Addr().AsSlice(), Mask: net.CIDRMask(p.Bits(), p.Addr().BitLen())}
}
