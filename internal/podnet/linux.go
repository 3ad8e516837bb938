package podnet

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

const (
	// Device is the VXLAN device of the vxlan back end.
	Device = "plinth.vxlan"
	// VNI is its VXLAN network identifier, and Port its UDP port (IANA's).
	VNI  = 1
	Port = 4789
	// RouteProtocol marks the routes the pod network writes, so that it finds and removes
	// those of a node that went away, and no others (rtnetlink protocol numbers above 4
	// are for routing daemons; 0x70 is not in iproute2's list).
	RouteProtocol = netlink.RouteProtocol(0x70)
	// vxlanOverhead is what VXLAN adds to a packet over IPv4 (over IPv6: 20 more).
	vxlanOverhead = 50
)

// Linux writes a plan into a network namespace through netlink.
type Linux struct {
	H *netlink.Handle
}

// Apply makes the namespace's routes (and, for vxlan, its VXLAN device and entries) those
// of the plan, for the node whose underlay address is local and whose pod subnets are own.
// It returns the MTU the pods get: the underlay interface's, less VXLAN's overhead.
func (l Linux) Apply(backend string, local netip.Addr, own []netip.Prefix, p Plan) (int, error) {
	parent, err := l.linkOf(local)
	if err != nil {
		return 0, err
	}
	mtu := parent.Attrs().MTU
	dev := 0
	if backend == VXLAN {
		overhead := vxlanOverhead
		if !local.Unmap().Is4() {
			overhead += 20
		}
		mtu -= overhead
		link, err := l.vxlan(local, parent, mtu, own)
		if err != nil {
			return 0, err
		}
		dev = link.Attrs().Index
		if err := l.entries(link, p.Peers); err != nil {
			return 0, err
		}
	} else if err := l.removeVXLAN(); err != nil {
		return 0, err
	}
	return mtu, l.routes(p.Routes, dev)
}

// linkOf finds the interface that has addr.
func (l Linux) linkOf(addr netip.Addr) (netlink.Link, error) {
	addrs, err := l.H.AddrList(nil, netlink.FAMILY_ALL)
	if err != nil {
		return nil, fmt.Errorf("list addresses: %w", err)
	}
	for _, a := range addrs {
		if ip, ok := netip.AddrFromSlice(a.IP); ok && ip.Unmap() == addr.Unmap() {
			link, err := l.H.LinkByIndex(a.LinkIndex)
			if err != nil {
				return nil, fmt.Errorf("the interface of %s: %w", addr, err)
			}
			return link, nil
		}
	}
	return nil, fmt.Errorf("no interface has the node's address %s", addr)
}

// vxlan creates the VXLAN device, or replaces it if it differs from what it should be,
// and gives it the node's endpoint addresses.
func (l Linux) vxlan(local netip.Addr, parent netlink.Link, mtu int, own []netip.Prefix) (netlink.Link, error) {
	want := &netlink.Vxlan{
		LinkAttrs:    netlink.LinkAttrs{Name: Device, MTU: mtu, HardwareAddr: EndpointMAC(local)},
		VxlanId:      VNI,
		VtepDevIndex: parent.Attrs().Index,
		SrcAddr:      net.IP(local.Unmap().AsSlice()),
		Port:         Port,
		Learning:     false,
	}
	link, err := l.H.LinkByName(Device)
	var notFound netlink.LinkNotFoundError
	switch {
	case errors.As(err, &notFound):
		link = nil
	case err != nil:
		return nil, fmt.Errorf("find %s: %w", Device, err)
	}
	if v, ok := link.(*netlink.Vxlan); link != nil && (!ok || v.VxlanId != VNI || v.Port != Port || !v.SrcAddr.Equal(want.SrcAddr) ||
		v.VtepDevIndex != want.VtepDevIndex || v.Attrs().HardwareAddr.String() != want.HardwareAddr.String()) {
		if err := l.H.LinkDel(link); err != nil {
			return nil, fmt.Errorf("remove %s, which differs from what it should be: %w", Device, err)
		}
		link = nil
	}
	if link == nil {
		if err := l.H.LinkAdd(want); err != nil {
			return nil, fmt.Errorf("create %s: %w", Device, err)
		}
		if link, err = l.H.LinkByName(Device); err != nil {
			return nil, fmt.Errorf("find %s: %w", Device, err)
		}
	}
	if link.Attrs().MTU != mtu {
		if err := l.H.LinkSetMTU(link, mtu); err != nil {
			return nil, fmt.Errorf("set %s's MTU: %w", Device, err)
		}
	}
	if err := l.H.LinkSetUp(link); err != nil {
		return nil, fmt.Errorf("bring %s up: %w", Device, err)
	}
	var wantAddrs []netip.Prefix
	for _, c := range own {
		ep := Endpoint(c)
		wantAddrs = append(wantAddrs, netip.PrefixFrom(ep, ep.BitLen()))
	}
	have, err := l.H.AddrList(link, netlink.FAMILY_ALL)
	if err != nil {
		return nil, fmt.Errorf("list %s's addresses: %w", Device, err)
	}
	for _, a := range have {
		p, ok := prefixOf(a.IPNet)
		if !ok || p.Addr().IsLinkLocalUnicast() || slices.Contains(wantAddrs, p) {
			continue
		}
		if err := l.H.AddrDel(link, &a); err != nil {
			return nil, fmt.Errorf("remove %s from %s: %w", p, Device, err)
		}
	}
	for _, p := range wantAddrs {
		a := &netlink.Addr{IPNet: ipNet(p)}
		if err := l.H.AddrReplace(link, a); err != nil {
			return nil, fmt.Errorf("add %s to %s: %w", p, Device, err)
		}
	}
	return link, nil
}

// removeVXLAN removes the VXLAN device, if there is one (the back end is host-gw now).
func (l Linux) removeVXLAN() error {
	link, err := l.H.LinkByName(Device)
	var notFound netlink.LinkNotFoundError
	if errors.As(err, &notFound) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("find %s: %w", Device, err)
	}
	if err := l.H.LinkDel(link); err != nil {
		return fmt.Errorf("remove %s: %w", Device, err)
	}
	return nil
}

// entries makes the VXLAN device's forwarding entries (which node's address a peer's MAC
// is behind) and neighbours (which MAC a peer's endpoint has) those of peers.
func (l Linux) entries(link netlink.Link, peers []Peer) error {
	idx := link.Attrs().Index
	fdb := map[string]netip.Addr{} // MAC -> underlay
	neigh := map[netip.Addr]string{}
	for _, p := range peers {
		fdb[p.MAC.String()] = p.Underlay
		for _, ep := range p.Endpoints {
			neigh[ep] = p.MAC.String()
		}
	}
	for _, family := range []int{unix.AF_BRIDGE, netlink.FAMILY_V4, netlink.FAMILY_V6} {
		have, err := l.H.NeighList(idx, family)
		if err != nil {
			return fmt.Errorf("list %s's entries: %w", Device, err)
		}
		for _, n := range have {
			if n.State&netlink.NUD_PERMANENT == 0 {
				continue
			}
			keep := false
			if family == unix.AF_BRIDGE {
				ip, _ := netip.AddrFromSlice(n.IP)
				under, ok := fdb[n.HardwareAddr.String()]
				keep = ok && ip.Unmap() == under
			} else if ip, ok := netip.AddrFromSlice(n.IP); ok {
				keep = neigh[ip.Unmap()] == n.HardwareAddr.String()
			}
			if !keep {
				if err := l.H.NeighDel(&n); err != nil {
					return fmt.Errorf("remove %s's entry %s %s: %w", Device, n.IP, n.HardwareAddr, err)
				}
			}
		}
	}
	for _, p := range peers {
		err := l.H.NeighSet(&netlink.Neigh{LinkIndex: idx, Family: unix.AF_BRIDGE, State: netlink.NUD_PERMANENT,
			Flags: netlink.NTF_SELF, IP: net.IP(p.Underlay.AsSlice()), HardwareAddr: p.MAC})
		if err != nil {
			return fmt.Errorf("forward %s to %s on %s: %w", p.MAC, p.Underlay, Device, err)
		}
		for _, ep := range p.Endpoints {
			family := netlink.FAMILY_V4
			if !ep.Is4() {
				family = netlink.FAMILY_V6
			}
			err := l.H.NeighSet(&netlink.Neigh{LinkIndex: idx, Family: family, State: netlink.NUD_PERMANENT,
				IP: net.IP(ep.AsSlice()), HardwareAddr: p.MAC})
			if err != nil {
				return fmt.Errorf("neighbour %s at %s on %s: %w", ep, p.MAC, Device, err)
			}
		}
	}
	return nil
}

// routes makes the routes of RouteProtocol those wanted; dev, when not 0, is the device
// they go out of, on-link (the VXLAN device).
func (l Linux) routes(wanted []Route, dev int) error {
	want := map[netip.Prefix]Route{}
	for _, r := range wanted {
		want[r.Dst] = r
	}
	have, err := l.H.RouteListFiltered(netlink.FAMILY_ALL, &netlink.Route{Protocol: RouteProtocol, Table: unix.RT_TABLE_MAIN},
		netlink.RT_FILTER_PROTOCOL|netlink.RT_FILTER_TABLE)
	if err != nil {
		return fmt.Errorf("list the pod network's routes: %w", err)
	}
	current := map[netip.Prefix]bool{}
	for _, r := range have {
		dst, ok := prefixOf(r.Dst)
		w, wantIt := want[dst]
		gw, _ := netip.AddrFromSlice(r.Gw)
		if ok && wantIt && gw.Unmap() == w.Via && (dev == 0 || r.LinkIndex == dev) {
			current[dst] = true
			continue
		}
		if err := l.H.RouteDel(&r); err != nil && !errors.Is(err, unix.ESRCH) {
			return fmt.Errorf("remove the route to %s: %w", r.Dst, err)
		}
	}
	for _, r := range wanted {
		if current[r.Dst] {
			continue
		}
		route := &netlink.Route{Dst: ipNet(r.Dst), Gw: net.IP(r.Via.AsSlice()), Protocol: RouteProtocol, Table: unix.RT_TABLE_MAIN}
		if dev != 0 {
			route.LinkIndex, route.Flags = dev, int(netlink.FLAG_ONLINK)
		}
		if err := l.H.RouteReplace(route); err != nil {
			return fmt.Errorf("route %s via %s: %w", r.Dst, r.Via, err)
		}
	}
	return nil
}

func ipNet(p netip.Prefix) *net.IPNet {
	return &net.IPNet{IP: net.IP(p.Addr().AsSlice()), Mask: net.CIDRMask(p.Bits(), p.Addr().BitLen())}
}

func prefixOf(n *net.IPNet) (netip.Prefix, bool) {
	if n == nil {
		return netip.Prefix{}, false
	}
	ip, ok := netip.AddrFromSlice(n.IP)
	if !ok {
		return netip.Prefix{}, false
	}
	ones, _ := n.Mask.Size()
	return netip.PrefixFrom(ip.Unmap(), ones).Masked(), true
}
