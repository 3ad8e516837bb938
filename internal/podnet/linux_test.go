package podnet

import (
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"slices"
	"strings"
	"testing"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/plinthos/plinth/internal/netnstest"
)

// local is the namespace's node address, on eth0.
var local = netip.MustParseAddr("10.5.0.3")

// newNode gives the test a network namespace (root only) with an interface eth0 that has
// the node's address, up.
func newNode(t *testing.T) *netlink.Handle {
	_, h := netnstest.New(t)
	// A veth pair (the dummy module may be missing), both ends up, so that the routes
	// through eth0 are usable.
	eth := &netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: "eth0", MTU: 1500}, PeerName: "peer0"}
	if err := h.LinkAdd(eth); err != nil {
		t.Fatal(err)
	}
	peer, err := h.LinkByName("peer0")
	if err != nil {
		t.Fatal(err)
	}
	if err := h.LinkSetUp(peer); err != nil {
		t.Fatal(err)
	}
	if err := h.AddrAdd(eth, &netlink.Addr{IPNet: ipNet(netip.MustParsePrefix("10.5.0.3/24"))}); err != nil {
		t.Fatal(err)
	}
	if err := h.LinkSetUp(eth); err != nil {
		t.Fatal(err)
	}
	return h
}

// ourRoutes lists the routes of RouteProtocol as "DST via GW [dev NAME onlink]".
func ourRoutes(t *testing.T, h *netlink.Handle) []string {
	t.Helper()
	rs, err := h.RouteListFiltered(netlink.FAMILY_ALL, &netlink.Route{Protocol: RouteProtocol}, netlink.RT_FILTER_PROTOCOL)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, r := range rs {
		s := r.Dst.String() + " via " + r.Gw.String()
		if r.Flags&int(netlink.FLAG_ONLINK) != 0 {
			l, _ := h.LinkByIndex(r.LinkIndex)
			s += " dev " + l.Attrs().Name + " onlink"
		}
		out = append(out, s)
	}
	slices.Sort(out)
	return out
}

func TestLinuxHostGW(t *testing.T) {
	h := newNode(t)
	l := Linux{H: h}
	own := pfx("10.244.1.0/24")
	mtu, err := l.Apply(HostGW, local, own, PlanFor(HostGW, "w-1", local, nodes))
	if err != nil {
		t.Fatal(err)
	}
	if mtu != 1500 {
		t.Errorf("MTU %d, want eth0's 1500", mtu)
	}
	// A route the pod network did not write stays.
	if err := h.RouteAdd(&netlink.Route{Dst: ipNet(netip.MustParsePrefix("192.168.7.0/24")), Gw: net.ParseIP("10.5.0.1")}); err != nil {
		t.Fatal(err)
	}
	want := []string{"10.244.0.0/24 via 10.5.0.2", "10.244.2.0/24 via 10.5.0.4"}
	if got := ourRoutes(t, h); !slices.Equal(got, want) {
		t.Fatalf("routes %v, want %v", got, want)
	}
	// w-2 goes away; w-5 comes.
	later := []Node{nodes[1], nodes[2], {Name: "w-5", PodCIDRs: pfx("10.244.5.0/24"), Addrs: addrs("10.5.0.7")}}
	if _, err := l.Apply(HostGW, local, own, PlanFor(HostGW, "w-1", local, later)); err != nil {
		t.Fatal(err)
	}
	want = []string{"10.244.0.0/24 via 10.5.0.2", "10.244.5.0/24 via 10.5.0.7"}
	if got := ourRoutes(t, h); !slices.Equal(got, want) {
		t.Fatalf("routes after a change %v, want %v", got, want)
	}
	if _, err := h.RouteGet(net.ParseIP("192.168.7.9")); err != nil {
		t.Errorf("the route the pod network did not write is gone: %v", err)
	}
}

func TestLinuxVXLAN(t *testing.T) {
	h := newNode(t)
	l := Linux{H: h}
	own := pfx("10.244.1.0/24")
	mtu, err := l.Apply(VXLAN, local, own, PlanFor(VXLAN, "w-1", local, nodes))
	if err != nil {
		t.Fatal(err)
	}
	if mtu != 1450 {
		t.Errorf("MTU %d, want 1450", mtu)
	}
	link, err := h.LinkByName(Device)
	if err != nil {
		t.Fatal(err)
	}
	vx := link.(*netlink.Vxlan)
	if vx.VxlanId != VNI || vx.Port != Port || !vx.SrcAddr.Equal(net.ParseIP("10.5.0.3")) || vx.Learning ||
		vx.HardwareAddr.String() != "0a:58:0a:05:00:03" || vx.MTU != 1450 || vx.Flags&net.FlagUp == 0 {
		t.Errorf("VXLAN device %+v", vx)
	}
	as, _ := h.AddrList(link, netlink.FAMILY_V4)
	if len(as) != 1 || as[0].IPNet.String() != "10.244.1.0/32" {
		t.Errorf("device addresses %v, want 10.244.1.0/32", as)
	}
	want := []string{
		"10.244.0.0/24 via 10.244.0.0 dev plinth.vxlan onlink",
		"10.244.2.0/24 via 10.244.2.0 dev plinth.vxlan onlink",
	}
	if got := ourRoutes(t, h); !slices.Equal(got, want) {
		t.Fatalf("routes %v, want %v", got, want)
	}
	entries := func() []string {
		var out []string
		for _, fam := range []int{unix.AF_BRIDGE, netlink.FAMILY_V4, netlink.FAMILY_V6} {
			ns, err := h.NeighList(link.Attrs().Index, fam)
			if err != nil {
				t.Fatal(err)
			}
			for _, n := range ns {
				if n.State&netlink.NUD_PERMANENT != 0 {
					out = append(out, fmt.Sprintf("%d %s %s", fam, n.HardwareAddr, n.IP))
				}
			}
		}
		slices.Sort(out)
		return out
	}
	wantEntries := []string{
		"2 0a:58:0a:05:00:02 10.244.0.0", "2 0a:58:0a:05:00:04 10.244.2.0",
		"7 0a:58:0a:05:00:02 10.5.0.2", "7 0a:58:0a:05:00:04 10.5.0.4",
	}
	if got := entries(); !slices.Equal(got, wantEntries) {
		t.Fatalf("entries\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(wantEntries, "\n"))
	}
	// Again with w-2 gone: its routes and entries go; the device stays as it is.
	if _, err := l.Apply(VXLAN, local, own, PlanFor(VXLAN, "w-1", local, nodes[1:])); err != nil {
		t.Fatal(err)
	}
	if got := entries(); !slices.Equal(got, []string{"2 0a:58:0a:05:00:02 10.244.0.0", "7 0a:58:0a:05:00:02 10.5.0.2"}) {
		t.Errorf("entries after w-2 left: %v", got)
	}
	if again, _ := h.LinkByName(Device); again.Attrs().Index != link.Attrs().Index {
		t.Error("the device was made again")
	}
	// Back to host-gw: the device goes, the routes go through the nodes' addresses.
	if _, err := l.Apply(HostGW, local, own, PlanFor(HostGW, "w-1", local, nodes[1:])); err != nil {
		t.Fatal(err)
	}
	if _, err := h.LinkByName(Device); err == nil {
		t.Error("the VXLAN device is still there with host-gw")
	}
	if got := ourRoutes(t, h); !slices.Equal(got, []string{"10.244.0.0/24 via 10.5.0.2"}) {
		t.Errorf("routes after host-gw: %v", got)
	}
}

func TestLinuxNoInterfaceWithTheAddress(t *testing.T) {
	h := newNode(t)
	_, err := Linux{H: h}.Apply(HostGW, netip.MustParseAddr("10.9.9.9"), pfx("10.244.1.0/24"), Plan{})
	if err == nil || !strings.Contains(err.Error(), "no interface has the node's address 10.9.9.9") {
		t.Fatalf("Apply = %v", err)
	}
}

func TestMasquerade(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to create a network namespace")
	}
	if _, err := exec.LookPath("iptables"); err != nil {
		t.Skip("needs iptables (hack/setup.sh installs it)")
	}
	name := fmt.Sprintf("plinth-podnet-%d", os.Getpid())
	if out, err := exec.Command("ip", "netns", "add", name).CombinedOutput(); err != nil {
		t.Fatalf("ip netns add: %v: %s", err, out)
	}
	t.Cleanup(func() { _ = exec.Command("ip", "netns", "del", name).Run() })
	ipt := Iptables{Prefix: []string{"ip", "netns", "exec", name}}
	rules := func(cmd string) string {
		out, err := exec.Command("ip", "netns", "exec", name, cmd, "-t", "nat", "-S").CombinedOutput()
		if err != nil {
			t.Fatalf("%s -S: %v: %s", cmd, err, out)
		}
		return string(out)
	}
	for range 2 { // a second pass changes nothing
		if err := ipt.Masquerade(t.Context(), pfx("10.244.0.0/16", "fd00:10:244::/56")); err != nil {
			t.Fatal(err)
		}
	}
	v4 := rules("iptables")
	for _, want := range []string{
		"-A PLINTH-POD-MASQ ! -s 10.244.0.0/16 -j RETURN",
		"-A PLINTH-POD-MASQ -d 10.244.0.0/16 -j RETURN",
		"-A PLINTH-POD-MASQ -d 224.0.0.0/4 -j RETURN",
		"-A PLINTH-POD-MASQ -j MASQUERADE --random-fully",
	} {
		if !strings.Contains(v4, want+"\n") {
			t.Errorf("iptables has no %q:\n%s", want, v4)
		}
	}
	if n := strings.Count(v4, "-j PLINTH-POD-MASQ"); n != 1 {
		t.Errorf("%d jumps to the chain, want 1:\n%s", n, v4)
	}
	if v6 := rules("ip6tables"); !strings.Contains(v6, "-A PLINTH-POD-MASQ -d fd00:10:244::/56 -j RETURN") {
		t.Errorf("ip6tables:\n%s", v6)
	}
	// A new pod network replaces the rules.
	if err := ipt.Masquerade(t.Context(), pfx("10.42.0.0/16")); err != nil {
		t.Fatal(err)
	}
	if v4 := rules("iptables"); strings.Contains(v4, "10.244.0.0/16") || !strings.Contains(v4, "! -s 10.42.0.0/16 -j RETURN") {
		t.Errorf("after a change:\n%s", v4)
	}

	filter := func(cmd string) string {
		out, err := exec.Command("ip", "netns", "exec", name, cmd, "-t", "filter", "-S").CombinedOutput()
		if err != nil {
			t.Fatalf("%s -S: %v: %s", cmd, err, out)
		}
		return string(out)
	}
	pods := pfx("10.244.0.0/16", "fd00:10:244::/56")
	for range 2 {
		if err := ipt.RejectUntranslated(t.Context(), pods, pfx("10.96.0.0/12", "fd00:10:96::/112")); err != nil {
			t.Fatal(err)
		}
	}
	v4 = filter("iptables")
	if !strings.Contains(v4, "-A PLINTH-SERVICES -d 10.96.0.0/12 -m conntrack ! --ctstate DNAT -j REJECT") ||
		strings.Count(v4, "-j PLINTH-SERVICES") != 2 || !strings.Contains(v4, "-A FORWARD -m comment") || !strings.Contains(v4, "-A OUTPUT -m comment") {
		t.Errorf("iptables filter:\n%s", v4)
	}
	if v6 := filter("ip6tables"); !strings.Contains(v6, "-A PLINTH-SERVICES -d fd00:10:96::/112 -m conntrack ! --ctstate DNAT -j REJECT") {
		t.Errorf("ip6tables filter:\n%s", v6)
	}
	// No Service networks (kube-proxy off, or ipvs): the chains are emptied.
	if err := ipt.RejectUntranslated(t.Context(), pods, nil); err != nil {
		t.Fatal(err)
	}
	if v4 := filter("iptables"); strings.Contains(v4, "REJECT") {
		t.Errorf("iptables filter without Service networks:\n%s", v4)
	}
	if v6 := filter("ip6tables"); strings.Contains(v6, "REJECT") {
		t.Errorf("ip6tables filter without Service networks:\n%s", v6)
	}
}
