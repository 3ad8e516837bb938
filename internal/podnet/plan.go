// Package podnet is Plinth's built-in pod network (cluster.network.cni.name: plinth): with
// no daemon of its own, machined on each node routes the other nodes' pod subnets and
// writes the node's CNI configuration (the reference bridge plugin with host-local
// addresses out of the node's pod subnet).
//
// Two ways to carry pod traffic between nodes, as flannel's back ends of the same names:
//
//   - host-gw: a route of each other node's pod subnet through that node's address. The
//     nodes must share an L2 network (they do in Docker, and on most small networks).
//   - vxlan: a VXLAN device, and for each other node a route of its pod subnet through its
//     VXLAN endpoint, with the endpoint's neighbour and forwarding entries written
//     statically (no learning, no multicast). Every packet costs 50 bytes. It is what a
//     Docker internal network (cluster create --isolated) needs: that network drops on the
//     host what crosses its bridge without node addresses at both ends.
//
// A VXLAN endpoint's MAC is derived from its node's address and its address is the first
// one of the node's pod subnet, so nothing has to be published on the Node: its pod
// subnets (from kube-controller-manager) and its InternalIP addresses are enough.
package podnet

import (
	"crypto/sha256"
	"net"
	"net/netip"
	"slices"
	"strings"
)

// Backends.
const (
	HostGW = "host-gw"
	VXLAN  = "vxlan"
)

// Node is what the pod network needs of a Node.
type Node struct {
	Name string
	// PodCIDRs are the node's pod subnets (spec.podCIDRs), one per IP family.
	PodCIDRs []netip.Prefix
	// Addrs are its InternalIP addresses.
	Addrs []netip.Addr
}

// Route is a route of another node's pod subnet.
type Route struct {
	Dst netip.Prefix
	// Via is the next hop: the node's address (host-gw) or its VXLAN endpoint (vxlan, on
	// the VXLAN device, on-link).
	Via netip.Addr
}

// Peer is another node's VXLAN endpoint.
type Peer struct {
	// Underlay is the node's address, where its VXLAN packets go.
	Underlay netip.Addr
	// MAC is its VXLAN device's address (EndpointMAC of Underlay).
	MAC net.HardwareAddr
	// Endpoints are its VXLAN device's addresses: one per pod subnet.
	Endpoints []netip.Addr
}

// Plan is what a node's routes and VXLAN entries should be.
type Plan struct {
	Routes []Route
	Peers  []Peer
}

// Endpoint is a node's VXLAN endpoint address in a pod subnet: the subnet's first address
// (the network address, which host-local never hands out; cni0 has the one after it).
func Endpoint(subnet netip.Prefix) netip.Addr { return subnet.Masked().Addr() }

// EndpointMAC is the MAC of the VXLAN device of the node at addr: locally administered,
// unicast, 0a:58 and the IPv4 address, or a digest of the IPv6 one.
func EndpointMAC(addr netip.Addr) net.HardwareAddr {
	b := addr.Unmap().AsSlice()
	if len(b) != 4 {
		sum := sha256.Sum256(b)
		b = sum[:4]
	}
	return append(net.HardwareAddr{0x0a, 0x58}, b...)
}

// Underlay is the address of node the pod network uses: its first InternalIP of the
// family of self's underlay (the family of local), or none.
func underlay(n Node, local netip.Addr) (netip.Addr, bool) {
	for _, a := range n.Addrs {
		if a.Unmap().Is4() == local.Unmap().Is4() {
			return a.Unmap(), true
		}
	}
	return netip.Addr{}, false
}

// PlanFor computes the plan of the node self, whose address is local, among nodes (self
// among them or not). A node without a pod subnet yet, or without an address of local's
// family, is left out until it has them. A pod subnet of a family self has no pod subnet of
// is left out (its pods could not answer), and so is, in host-gw, one of a family that
// self or the other node has no address of.
func PlanFor(backend, self string, local netip.Addr, nodes []Node) Plan {
	var p Plan
	sorted := slices.Clone(nodes)
	slices.SortFunc(sorted, func(a, b Node) int { return strings.Compare(a.Name, b.Name) })
	// The families self has pod subnets and addresses of (all, if self is not listed).
	pods, addrs := map[bool]bool{true: true, false: true}, map[bool]bool{true: true, false: true}
	if i := slices.IndexFunc(sorted, func(n Node) bool { return n.Name == self }); i >= 0 {
		pods, addrs = map[bool]bool{}, map[bool]bool{}
		for _, c := range sorted[i].PodCIDRs {
			pods[c.Addr().Is4()] = true
		}
		for _, a := range sorted[i].Addrs {
			addrs[a.Unmap().Is4()] = true
		}
	}
	for _, n := range sorted {
		if n.Name == self || len(n.PodCIDRs) == 0 {
			continue
		}
		under, ok := underlay(n, local)
		if !ok {
			continue
		}
		peer := Peer{Underlay: under, MAC: EndpointMAC(under)}
		for _, c := range n.PodCIDRs {
			v4 := c.Addr().Is4()
			if !pods[v4] {
				continue
			}
			if backend == VXLAN {
				ep := Endpoint(c)
				peer.Endpoints = append(peer.Endpoints, ep)
				p.Routes = append(p.Routes, Route{Dst: c.Masked(), Via: ep})
				continue
			}
			if !addrs[v4] {
				continue
			}
			for _, a := range n.Addrs {
				if a.Unmap().Is4() == v4 {
					p.Routes = append(p.Routes, Route{Dst: c.Masked(), Via: a.Unmap()})
					break
				}
			}
		}
		if backend == VXLAN && len(peer.Endpoints) > 0 {
			p.Peers = append(p.Peers, peer)
		}
	}
	return p
}
