package netconf

import (
	"net"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/vishvananda/netlink"

	"github.com/plinthos/plinth/internal/netnstest"
	"github.com/plinthos/plinth/pkg/config"
)

// newNamespace returns a netlink handle in a new, empty network namespace with a veth
// link named eth0. It needs root (CAP_NET_ADMIN), and skips saying so without it.
func newNamespace(t *testing.T) *Handle {
	t.Helper()
	_, h := netnstest.New(t)
	// A veth pair: dummy links need a module that some kernels (such as the sandbox's
	// that runs CI) lack.
	if err := h.LinkAdd(&netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: "eth0"}, PeerName: "peer0"}); err != nil {
		t.Fatalf("create a veth link: %v", err)
	}
	return h
}

func addrsOf(t *testing.T, h *Handle, name string) []string {
	t.Helper()
	l, err := h.LinkByName(name)
	if err != nil {
		t.Fatal(err)
	}
	list, err := h.AddrList(l, netlink.FAMILY_ALL)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, a := range list {
		if a.IP.IsLinkLocalUnicast() {
			continue
		}
		out = append(out, a.IPNet.String())
	}
	slices.Sort(out)
	return out
}

func TestApplyStatic(t *testing.T) {
	h := newNamespace(t)
	ifaces := []config.Interface{{
		Name:      "eth0",
		MTU:       1400,
		Addresses: []string{"10.5.0.2/24", "fd00:5::2/64"},
		Routes: []config.Route{
			{Gateway: "10.5.0.1"},
			{Network: "192.168.7.0/24", Gateway: "10.5.0.254", Metric: 50},
		},
	}}
	for round := range 2 { // a second run with the same configuration changes nothing and fails nothing
		res, err := Apply(h, ifaces)
		if err != nil {
			t.Fatalf("round %d: %v", round, err)
		}
		want := []netip.Addr{netip.MustParseAddr("10.5.0.2"), netip.MustParseAddr("fd00:5::2")}
		if !slices.Equal(res.Addresses, want) {
			t.Errorf("round %d: addresses %v, want %v", round, res.Addresses, want)
		}
	}
	eth0, err := h.LinkByName("eth0")
	if err != nil {
		t.Fatal(err)
	}
	if eth0.Attrs().MTU != 1400 || eth0.Attrs().Flags&net.FlagUp == 0 {
		t.Errorf("eth0: MTU %d, flags %v", eth0.Attrs().MTU, eth0.Attrs().Flags)
	}
	if got := addrsOf(t, h, "eth0"); !slices.Equal(got, []string{"10.5.0.2/24", "fd00:5::2/64"}) {
		t.Errorf("eth0 addresses %v", got)
	}
	lo, err := h.LinkByName("lo")
	if err != nil || lo.Attrs().Flags&net.FlagUp == 0 {
		t.Errorf("lo is not up: %v", err)
	}
	routes, err := h.RouteList(eth0, netlink.FAMILY_V4)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, r := range routes {
		if r.Gw == nil {
			continue // the prefix routes of the addresses
		}
		dst := "default"
		if r.Dst != nil && r.Dst.IP != nil && !r.Dst.IP.IsUnspecified() {
			dst = r.Dst.String()
		}
		got = append(got, dst+" via "+r.Gw.String()+" metric "+strconv.Itoa(r.Priority))
	}
	slices.Sort(got)
	if want := []string{"192.168.7.0/24 via 10.5.0.254 metric 50", "default via 10.5.0.1 metric 1024"}; !slices.Equal(got, want) {
		t.Errorf("routes %v, want %v", got, want)
	}
}

func TestApplyVLAN(t *testing.T) {
	h := newNamespace(t)
	probe := &netlink.Vlan{LinkAttrs: netlink.LinkAttrs{Name: "probe.9", ParentIndex: mustLink(t, h, "eth0").Attrs().Index}, VlanId: 9}
	if err := h.LinkAdd(probe); err != nil {
		t.Skipf("this kernel cannot create VLAN links (%v): VLANs are tested in a VM (the QEMU e2e TestBootOSImage)", err)
	}
	ifaces := []config.Interface{{Name: "eth0", VLANs: []config.VLAN{{VLANID: 42, Addresses: []string{"10.42.0.2/24"}, MTU: 1300}}}}
	for round := range 2 {
		if _, err := Apply(h, ifaces); err != nil {
			t.Fatalf("round %d: %v", round, err)
		}
	}
	if got := addrsOf(t, h, "eth0.42"); !slices.Equal(got, []string{"10.42.0.2/24"}) {
		t.Errorf("eth0.42 addresses %v", got)
	}
	if mtu := mustLink(t, h, "eth0.42").Attrs().MTU; mtu != 1300 {
		t.Errorf("eth0.42 MTU %d", mtu)
	}
}

func mustLink(t *testing.T, h *Handle, name string) netlink.Link {
	t.Helper()
	l, err := h.LinkByName(name)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func TestApplyRefusesWhatItCannotDo(t *testing.T) {
	h := newNamespace(t)
	for name, in := range map[string]config.Interface{
		"missing link":           {Name: "eth9", Addresses: []string{"10.5.0.2/24"}},
		"bond of a missing link": {Name: "bond0", Bond: &config.Bond{Interfaces: []string{"eth9"}, Mode: "balance-rr"}},
		"bad bonding mode":       {Name: "bond0", Bond: &config.Bond{Interfaces: []string{"eth0"}, Mode: "fastest"}},
		"bad route":              {Name: "eth0", Routes: []config.Route{{Network: "10.9.0.0/16", Gateway: "fd00::1"}}},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := Apply(h, []config.Interface{in})
			if err == nil {
				t.Fatal("applied")
			}
			if !strings.Contains(err.Error(), "network interface "+in.Name) {
				t.Errorf("error does not name the interface: %v", err)
			}
		})
	}
	// An ignored link is left alone, even if it does not exist.
	if _, err := Apply(h, []config.Interface{{Name: "eth9", Ignore: true}}); err != nil {
		t.Errorf("ignored link: %v", err)
	}
}

func TestApplyBringsDHCPLinksUp(t *testing.T) {
	h := newNamespace(t)
	res, err := Apply(h, []config.Interface{{Name: "eth0", DHCP: true, MTU: 1450}})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Addresses) != 0 {
		t.Errorf("static addresses %v", res.Addresses)
	}
	eth0 := mustLink(t, h, "eth0")
	if eth0.Attrs().Flags&net.FlagUp == 0 || eth0.Attrs().MTU != 1450 {
		t.Errorf("eth0: flags %v, MTU %d", eth0.Attrs().Flags, eth0.Attrs().MTU)
	}
}

func TestDHCPLinks(t *testing.T) {
	got := DHCPLinks([]config.Interface{
		{Name: "eth0", DHCP: true, VLANs: []config.VLAN{{VLANID: 5, DHCP: true}, {VLANID: 6}}},
		{Name: "eth1", Addresses: []string{"10.0.0.2/24"}, VLANs: []config.VLAN{{VLANID: 7, DHCP: true}}},
		{Name: "eth2", Ignore: true},
	})
	if want := []string{"eth0", "eth0.5", "eth1.7"}; !slices.Equal(got, want) {
		t.Errorf("DHCP links %v, want %v", got, want)
	}
}

// TestApplyBond needs the kernel's bonding driver; it skips without it (the sandbox's
// kernel has none).
func TestApplyBond(t *testing.T) {
	h := newNamespace(t)
	if err := h.LinkAdd(netlink.NewLinkBond(netlink.LinkAttrs{Name: "probe0"})); err != nil {
		t.Skipf("this kernel cannot create bonds (%v)", err)
	}
	if err := h.LinkAdd(&netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: "eth1"}, PeerName: "peer1"}); err != nil {
		t.Fatal(err)
	}
	ifaces := []config.Interface{{Name: "bond0", Addresses: []string{"10.6.0.2/24"},
		Bond: &config.Bond{Interfaces: []string{"eth0", "eth1"}, Mode: "802.3ad", MIIMon: 100, LACPRate: "fast"}}}
	for round := range 2 {
		res, err := Apply(h, ifaces)
		if err != nil {
			t.Fatalf("round %d: %v", round, err)
		}
		if len(res.Addresses) != 1 {
			t.Errorf("round %d: addresses %v", round, res.Addresses)
		}
	}
	bond, ok := mustLink(t, h, "bond0").(*netlink.Bond)
	if !ok {
		t.Fatalf("bond0 is a %T", mustLink(t, h, "bond0"))
	}
	if bond.Mode != netlink.BOND_MODE_802_3AD || bond.Miimon != 100 || bond.LacpRate != netlink.BOND_LACP_RATE_FAST {
		t.Errorf("bond0: mode %v, miimon %d, LACP rate %v", bond.Mode, bond.Miimon, bond.LacpRate)
	}
	for _, m := range []string{"eth0", "eth1"} {
		if l := mustLink(t, h, m); l.Attrs().MasterIndex != bond.Index || l.Attrs().Flags&net.FlagUp == 0 {
			t.Errorf("%s: master %d (bond0 is %d), flags %v", m, l.Attrs().MasterIndex, bond.Index, l.Attrs().Flags)
		}
	}
	if got := addrsOf(t, h, "bond0"); !slices.Equal(got, []string{"10.6.0.2/24"}) {
		t.Errorf("bond0 addresses %v", got)
	}

	// Another mode makes the bond again, with its members.
	ifaces[0].Bond = &config.Bond{Interfaces: []string{"eth0", "eth1"}, Mode: "active-backup", MIIMon: 200}
	if _, err := Apply(h, ifaces); err != nil {
		t.Fatal(err)
	}
	bond = mustLink(t, h, "bond0").(*netlink.Bond)
	if bond.Mode != netlink.BOND_MODE_ACTIVE_BACKUP || bond.Miimon != 200 {
		t.Errorf("bond0: mode %v, miimon %d", bond.Mode, bond.Miimon)
	}
	if l := mustLink(t, h, "eth1"); l.Attrs().MasterIndex != bond.Index {
		t.Errorf("eth1 is not in the new bond")
	}
}
