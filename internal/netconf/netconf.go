// Package netconf applies the static part of machine.network to the machine's links
// through netlink: links up, MTU, VLAN links, addresses and routes. It is what the metal
// platform runs at boot; it changes only what the configuration names, so running it
// again with the same configuration changes nothing.
package netconf

import (
	"errors"
	"fmt"
	"net"
	"net/netip"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/plinthos/plinth/pkg/config"
)

// Handle is the netlink handle netconf works through: netlink.Handle, in the namespace it
// was made for.
type Handle = netlink.Handle

// DefaultRouteMetric is the metric of a route whose configuration sets none.
const DefaultRouteMetric = 1024

// Result says what Apply found and did.
type Result struct {
	// Addresses are the static addresses of the configuration, in its order, without
	// their prefix length.
	Addresses []netip.Addr
}

// Apply brings the loopback link up, then each configured interface: it waits for
// nothing (links are present at boot once their drivers are loaded) and returns the first
// error of each link joined. Bonds are created (or adjusted) with their members, where the
// kernel has the bonding driver (validation refuses bonds on metal until the OS image
// ships it). Links and
// VLANs with DHCP are brought up (with their static addresses and routes, if any); their
// leases are internal/dhcpclient's.
func Apply(h *Handle, ifaces []config.Interface) (Result, error) {
	var res Result
	lo, err := h.LinkByName("lo")
	if err != nil {
		return res, fmt.Errorf("find the loopback link: %w", err)
	}
	if err := h.LinkSetUp(lo); err != nil {
		return res, fmt.Errorf("bring lo up: %w", err)
	}
	var errs []error
	for _, in := range ifaces {
		if in.Ignore {
			continue
		}
		addrs, err := applyInterface(h, in)
		res.Addresses = append(res.Addresses, addrs...)
		if err != nil {
			errs = append(errs, fmt.Errorf("network interface %s: %w", in.Name, err))
		}
	}
	return res, errors.Join(errs...)
}

func applyInterface(h *Handle, in config.Interface) ([]netip.Addr, error) {
	var link netlink.Link
	var err error
	if in.Bond != nil {
		link, err = ensureBond(h, in.Name, in.Bond)
	} else if link, err = h.LinkByName(in.Name); err != nil {
		err = fmt.Errorf("no such link (the links are %s): %w", linkNames(h), err)
	}
	if err != nil {
		return nil, err
	}
	addrs, err := configureLink(h, link, in.MTU, in.Addresses, in.Routes)
	if err != nil {
		return addrs, err
	}
	for _, v := range in.VLANs {
		vl, err := ensureVLAN(h, link, v.VLANID)
		if err != nil {
			return addrs, fmt.Errorf("VLAN %d: %w", v.VLANID, err)
		}
		more, err := configureLink(h, vl, v.MTU, v.Addresses, v.Routes)
		addrs = append(addrs, more...)
		if err != nil {
			return addrs, fmt.Errorf("VLAN %d: %w", v.VLANID, err)
		}
	}
	return addrs, nil
}

// configureLink sets the MTU, brings the link up, adds the addresses it lacks and
// replaces the routes.
func configureLink(h *Handle, link netlink.Link, mtu int, addresses []string, routes []config.Route) ([]netip.Addr, error) {
	if mtu > 0 && link.Attrs().MTU != mtu {
		if err := h.LinkSetMTU(link, mtu); err != nil {
			return nil, fmt.Errorf("set MTU %d: %w", mtu, err)
		}
	}
	if err := h.LinkSetUp(link); err != nil {
		return nil, fmt.Errorf("bring the link up: %w", err)
	}
	var out []netip.Addr
	for _, a := range addresses {
		p, err := netip.ParsePrefix(a)
		if err != nil {
			return out, fmt.Errorf("address %q: %w", a, err)
		}
		addr := &netlink.Addr{IPNet: &net.IPNet{IP: p.Addr().AsSlice(), Mask: net.CIDRMask(p.Bits(), p.Addr().BitLen())}}
		if err := h.AddrReplace(link, addr); err != nil {
			return out, fmt.Errorf("add address %s: %w", a, err)
		}
		out = append(out, p.Addr())
	}
	for _, r := range routes {
		route, err := toRoute(link, r)
		if err != nil {
			return out, err
		}
		if err := h.RouteReplace(route); err != nil {
			return out, fmt.Errorf("route %s: %w", routeName(r), err)
		}
	}
	return out, nil
}

// toRoute builds the netlink route of a configured one through link.
func toRoute(link netlink.Link, r config.Route) (*netlink.Route, error) {
	route := &netlink.Route{LinkIndex: link.Attrs().Index, Priority: int(r.Metric), Table: unix.RT_TABLE_MAIN}
	if route.Priority == 0 {
		route.Priority = DefaultRouteMetric
	}
	family := 0
	if r.Network != "" {
		p, err := netip.ParsePrefix(r.Network)
		if err != nil {
			return nil, fmt.Errorf("route %s: network: %w", routeName(r), err)
		}
		p = p.Masked()
		route.Dst = &net.IPNet{IP: p.Addr().AsSlice(), Mask: net.CIDRMask(p.Bits(), p.Addr().BitLen())}
		family = familyOf(p.Addr())
	}
	if r.Gateway != "" {
		gw, err := netip.ParseAddr(r.Gateway)
		if err != nil {
			return nil, fmt.Errorf("route %s: gateway: %w", routeName(r), err)
		}
		route.Gw = gw.AsSlice()
		if family != 0 && family != familyOf(gw) {
			return nil, fmt.Errorf("route %s: the gateway's address family differs from the network's", routeName(r))
		}
		family = familyOf(gw)
	} else {
		route.Scope = netlink.SCOPE_LINK
	}
	if r.Source != "" {
		src, err := netip.ParseAddr(r.Source)
		if err != nil {
			return nil, fmt.Errorf("route %s: source: %w", routeName(r), err)
		}
		route.Src = src.AsSlice()
	}
	if family == 0 {
		return nil, fmt.Errorf("route %s: a default route needs a gateway", routeName(r))
	}
	route.Family = family
	return route, nil
}

func familyOf(a netip.Addr) int {
	if a.Is4() {
		return netlink.FAMILY_V4
	}
	return netlink.FAMILY_V6
}

func routeName(r config.Route) string {
	name := r.Network
	if name == "" {
		name = "default"
	}
	if r.Gateway != "" {
		name += " via " + r.Gateway
	}
	return name
}

// VLANName is the name of the VLAN link id on parent.
func VLANName(parent string, id int) string { return fmt.Sprintf("%s.%d", parent, id) }

// DHCPLinks names the links of ifaces whose addresses DHCP gives: interfaces and VLANs
// (by their link name, VLANName) with dhcp set, in the configuration's order.
func DHCPLinks(ifaces []config.Interface) []string {
	var out []string
	for _, in := range ifaces {
		if in.Ignore {
			continue
		}
		if in.DHCP {
			out = append(out, in.Name)
		}
		for _, v := range in.VLANs {
			if v.DHCP {
				out = append(out, VLANName(in.Name, v.VLANID))
			}
		}
	}
	return out
}

// ensureVLAN returns the VLAN link id on parent, named parent.id, creating it if needed.
func ensureVLAN(h *Handle, parent netlink.Link, id int) (netlink.Link, error) {
	name := VLANName(parent.Attrs().Name, id)
	if l, err := h.LinkByName(name); err == nil {
		if v, ok := l.(*netlink.Vlan); ok && v.VlanId == id && v.ParentIndex == parent.Attrs().Index {
			return l, nil
		}
		return nil, fmt.Errorf("link %s exists and is not VLAN %d of %s", name, id, parent.Attrs().Name)
	}
	v := &netlink.Vlan{LinkAttrs: netlink.LinkAttrs{Name: name, ParentIndex: parent.Attrs().Index}, VlanId: id}
	if err := h.LinkAdd(v); err != nil {
		return nil, fmt.Errorf("create %s: %w", name, err)
	}
	return h.LinkByName(name)
}

func linkNames(h *Handle) string {
	links, err := h.LinkList()
	if err != nil {
		return "unknown"
	}
	var names []string
	for _, l := range links {
		names = append(names, l.Attrs().Name)
	}
	return fmt.Sprint(names)
}
