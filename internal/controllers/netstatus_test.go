package controllers

import (
	"log/slog"
	"net"
	"runtime"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/plinthos/plinth/internal/netnstest"
	"github.com/plinthos/plinth/internal/resources"
)

func waitGone(t *testing.T, h *harness, ns, typ, id string) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		if _, err := h.store.Get(ns, typ, id); err != nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s/%s still exists", typ, id)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

func TestNetworkStatusMirrorsKernel(t *testing.T) {
	ns, nh := netnstest.New(t)
	// The fake clock never advances: every change below is seen through the subscriptions.
	h := start(t, nil, &NetworkStatus{Handle: nh, Namespace: &ns})
	net0 := resources.NamespaceNetwork
	waitSpec(t, h, net0, resources.LinkStatusType, "lo",
		func(s resources.LinkStatusSpec) bool { return s.Type == "loopback" && s.Kind == "" })

	// Dummy and VLAN links need modules the sandbox kernel lacks: a veth pair.
	if err := nh.LinkAdd(&netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: "eth0", MTU: 1400}, PeerName: "peer0"}); err != nil {
		t.Fatalf("create a veth link: %v", err)
	}
	eth0, err := nh.LinkByName("eth0")
	if err != nil {
		t.Fatal(err)
	}
	waitSpec(t, h, net0, resources.LinkStatusType, "eth0", func(s resources.LinkStatusSpec) bool {
		return s.Kind == "veth" && s.Type == "ether" && s.MTU == 1400 && !s.Up && s.Index == eth0.Attrs().Index &&
			s.HardwareAddr == eth0.Attrs().HardwareAddr.String() && s.Parent == ""
	})
	waitSpec(t, h, net0, resources.LinkStatusType, "peer0", func(s resources.LinkStatusSpec) bool { return s.Kind == "veth" })
	for _, name := range []string{"eth0", "peer0"} {
		l, err := nh.LinkByName(name)
		if err != nil {
			t.Fatal(err)
		}
		if err := nh.LinkSetUp(l); err != nil {
			t.Fatal(err)
		}
	}
	waitSpec(t, h, net0, resources.LinkStatusType, "eth0",
		func(s resources.LinkStatusSpec) bool { return s.Up && s.OperationalState == "up" })

	// Addresses.
	for _, a := range []string{"10.5.0.2/24", "fd00:5::2/64"} {
		addr, err := netlink.ParseAddr(a)
		if err != nil {
			t.Fatal(err)
		}
		addr.Flags = unix.IFA_F_NODAD // usable at once, not tentative
		if err := nh.AddrAdd(eth0, addr); err != nil {
			t.Fatalf("add %s: %v", a, err)
		}
	}
	waitSpec(t, h, net0, resources.AddressStatusType, "eth0/10.5.0.2/24", func(s resources.AddressStatusSpec) bool {
		return s.Link == "eth0" && s.Address == "10.5.0.2/24" && s.Family == "ipv4" && s.Scope == "universe" && s.LinkIndex == eth0.Attrs().Index
	})
	waitSpec(t, h, net0, resources.AddressStatusType, "eth0/fd00:5::2/64",
		func(s resources.AddressStatusSpec) bool { return s.Family == "ipv6" })

	// Routes: a default route, one with a metric, the kernel's prefix and local routes.
	for _, r := range []*netlink.Route{
		{LinkIndex: eth0.Attrs().Index, Gw: net.ParseIP("10.5.0.1")},
		{LinkIndex: eth0.Attrs().Index, Dst: mustCIDR(t, "192.168.7.0/24"), Gw: net.ParseIP("10.5.0.254"), Priority: 50},
	} {
		if err := nh.RouteAdd(r); err != nil {
			t.Fatalf("add route %v: %v", r, err)
		}
	}
	waitSpec(t, h, net0, resources.RouteStatusType, "ipv4/main/default/10.5.0.1/eth0/0", func(s resources.RouteStatusSpec) bool {
		return s.Destination == "default" && s.Gateway == "10.5.0.1" && s.Link == "eth0" && s.Table == "main" && s.Type == "unicast" && s.Protocol == "boot"
	})
	waitSpec(t, h, net0, resources.RouteStatusType, "ipv4/main/192.168.7.0/24/10.5.0.254/eth0/50",
		func(s resources.RouteStatusSpec) bool { return s.Metric == 50 && s.Scope == "universe" })
	waitSpec(t, h, net0, resources.RouteStatusType, "ipv4/main/10.5.0.0/24/-/eth0/0", func(s resources.RouteStatusSpec) bool {
		return s.Protocol == "kernel" && s.Scope == "link" && s.Source == "10.5.0.2"
	})
	waitSpec(t, h, net0, resources.RouteStatusType, "ipv4/local/10.5.0.2/32/-/eth0/0",
		func(s resources.RouteStatusSpec) bool { return s.Type == "local" && s.Scope == "host" })

	if testing.Verbose() {
		for _, typ := range []string{resources.LinkStatusType, resources.AddressStatusType, resources.RouteStatusType} {
			list, _ := h.store.List(net0, typ)
			for _, r := range list {
				t.Logf("%s %+v", r.Metadata().ID, r.Spec())
			}
		}
	}

	// A deleted address goes, with the routes the kernel dropped with it.
	addr, err := netlink.ParseAddr("10.5.0.2/24")
	if err != nil {
		t.Fatal(err)
	}
	if err := nh.AddrDel(eth0, addr); err != nil {
		t.Fatal(err)
	}
	waitGone(t, h, net0, resources.AddressStatusType, "eth0/10.5.0.2/24")
	waitGone(t, h, net0, resources.RouteStatusType, "ipv4/main/default/10.5.0.1/eth0/0")
	waitGone(t, h, net0, resources.RouteStatusType, "ipv4/main/10.5.0.0/24/-/eth0/0")
	waitSpec(t, h, net0, resources.AddressStatusType, "eth0/fd00:5::2/64",
		func(s resources.AddressStatusSpec) bool { return true })

	// A deleted link goes, with its peer and the rest of its addresses.
	if err := nh.LinkDel(eth0); err != nil {
		t.Fatal(err)
	}
	waitGone(t, h, net0, resources.LinkStatusType, "eth0")
	waitGone(t, h, net0, resources.LinkStatusType, "peer0")
	waitGone(t, h, net0, resources.AddressStatusType, "eth0/fd00:5::2/64")
	waitSpec(t, h, net0, resources.LinkStatusType, "lo", func(s resources.LinkStatusSpec) bool { return true })
}

func mustCIDR(t *testing.T, s string) *net.IPNet {
	t.Helper()
	_, n, err := net.ParseCIDR(s)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// The cases the sandbox kernel cannot make: VLANs, bond members, multipath routes.
func TestNetworkSpecsFromNetlink(t *testing.T) {
	names := map[int]string{1: "lo", 2: "eth0", 3: "eth0.10", 4: "bond0", 5: "eth1"}
	links := linkSpecs([]netlink.Link{
		&netlink.Device{LinkAttrs: netlink.LinkAttrs{Index: 2, Name: "eth0", EncapType: "ether", MasterIndex: 4}},
		&netlink.Vlan{LinkAttrs: netlink.LinkAttrs{Index: 3, Name: "eth0.10", ParentIndex: 2}, VlanId: 10},
		&netlink.Bond{LinkAttrs: netlink.LinkAttrs{Index: 4, Name: "bond0"}},
	}, names)
	if l := links["eth0"]; l.Kind != "" || l.Master != "bond0" || l.Parent != "" {
		t.Errorf("eth0 %+v", l)
	}
	if l := links["eth0.10"]; l.Kind != "vlan" || l.Parent != "eth0" || l.VLANID != 10 {
		t.Errorf("eth0.10 %+v", l)
	}
	if l := links["bond0"]; l.Kind != "bond" {
		t.Errorf("bond0 %+v", l)
	}

	routes := routeSpecs([]netlink.Route{
		{Family: unix.AF_INET, Table: unix.RT_TABLE_MAIN, Type: unix.RTN_UNICAST, MultiPath: []*netlink.NexthopInfo{
			{LinkIndex: 2, Gw: net.ParseIP("10.0.0.1")}, {LinkIndex: 5, Gw: net.ParseIP("10.0.1.1")},
		}},
		{Family: unix.AF_INET, Table: 100, Type: unix.RTN_UNICAST, Dst: mustCIDR(t, "10.9.0.0/16"), LinkIndex: 9},
		{Family: unix.AF_INET, Table: 100, Type: unix.RTN_BLACKHOLE, Dst: mustCIDR(t, "10.9.0.0/16"), LinkIndex: 9, Tos: 4},
		{Family: unix.AF_INET6, Table: unix.RT_TABLE_MAIN, Type: unix.RTN_UNICAST, Dst: mustCIDR(t, "::/0"), Gw: net.ParseIP("fd00::1"), LinkIndex: 2, Priority: 1024},
	}, names)
	if len(routes) != 4 {
		t.Errorf("routes %v", routes)
	}
	if r := routes["ipv4/main/default/10.0.0.1,10.0.1.1/eth0,eth1/0"]; r.Gateway != "10.0.0.1,10.0.1.1" || r.Link != "eth0,eth1" {
		t.Errorf("multipath route %+v (all %v)", r, routes)
	}
	if r := routes["ipv4/100/10.9.0.0/16/-/if9/0"]; r.Type != "unicast" || r.Table != "100" {
		t.Errorf("table 100 route %+v (all %v)", r, routes)
	}
	if r := routes["ipv4/100/10.9.0.0/16/-/if9/0#2"]; r.Type != "blackhole" {
		t.Errorf("second table 100 route %+v (all %v)", r, routes)
	}
	if r := routes["ipv6/main/default/fd00::1/eth0/1024"]; r.Destination != "default" || r.Family != "ipv6" {
		t.Errorf("ipv6 default route %+v (all %v)", r, routes)
	}
}

func TestNetSubscriberSeesAChangeRightAfterStart(t *testing.T) {
	// The subscriptions exist once start returns: a link added at once is signalled. They
	// were made in goroutines, and a change before those ran was left to the resync.
	// One P: the goroutines that subscribed in the old code did not run before the link
	// was added, as on a busy machine, where CI saw TestNetworkStatusMirrorsKernel miss it.
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(1))
	for i := range 20 {
		ns, nh := netnstest.New(t)
		changed := make(chan struct{}, 1)
		sub := newNetSubscriber(&ns, changed, slog.New(slog.DiscardHandler))
		sub.start()
		if err := nh.LinkAdd(&netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: "eth0"}, PeerName: "peer0"}); err != nil {
			t.Fatalf("create a veth link: %v", err)
		}
		select {
		case <-changed:
		case <-time.After(10 * time.Second):
			t.Fatalf("round %d: no signal for a link added right after start", i)
		}
		sub.stop()
	}
}
