package podnet

import (
	"net/netip"
	"reflect"
	"testing"
)

func pfx(s ...string) []netip.Prefix {
	var out []netip.Prefix
	for _, x := range s {
		out = append(out, netip.MustParsePrefix(x))
	}
	return out
}

func addrs(s ...string) []netip.Addr {
	var out []netip.Addr
	for _, x := range s {
		out = append(out, netip.MustParseAddr(x))
	}
	return out
}

var nodes = []Node{
	{Name: "w-2", PodCIDRs: pfx("10.244.2.0/24", "fd00:10:244:2::/64"), Addrs: addrs("10.5.0.4", "fd00::4")},
	{Name: "cp-1", PodCIDRs: pfx("10.244.0.0/24", "fd00:10:244::/64"), Addrs: addrs("10.5.0.2", "fd00::2")},
	{Name: "w-1", PodCIDRs: pfx("10.244.1.0/24"), Addrs: addrs("10.5.0.3")}, // IPv4 only
	{Name: "w-3", Addrs: addrs("10.5.0.5")},                                 // no pod subnet yet
	{Name: "w-4", PodCIDRs: pfx("10.244.4.0/24"), Addrs: addrs("fd00::6")},  // no IPv4 address
}

func TestPlanHostGW(t *testing.T) {
	got := PlanFor(HostGW, "cp-1", netip.MustParseAddr("10.5.0.2"), nodes)
	want := Plan{Routes: []Route{
		{Dst: netip.MustParsePrefix("10.244.1.0/24"), Via: netip.MustParseAddr("10.5.0.3")},
		{Dst: netip.MustParsePrefix("10.244.2.0/24"), Via: netip.MustParseAddr("10.5.0.4")},
		{Dst: netip.MustParsePrefix("fd00:10:244:2::/64"), Via: netip.MustParseAddr("fd00::4")},
	}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("plan\n%+v\nwant\n%+v", got, want)
	}
}

func TestPlanHostGWOneFamily(t *testing.T) {
	// w-1 has IPv4 only: no route to the others' IPv6 pod subnets.
	got := PlanFor(HostGW, "w-1", netip.MustParseAddr("10.5.0.3"), nodes)
	want := Plan{Routes: []Route{
		{Dst: netip.MustParsePrefix("10.244.0.0/24"), Via: netip.MustParseAddr("10.5.0.2")},
		{Dst: netip.MustParsePrefix("10.244.2.0/24"), Via: netip.MustParseAddr("10.5.0.4")},
	}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("plan\n%+v\nwant\n%+v", got, want)
	}
}

func TestPlanVXLAN(t *testing.T) {
	// Dual-stack pod subnets over an IPv4 underlay, from cp-1.
	got := PlanFor(VXLAN, "cp-1", netip.MustParseAddr("10.5.0.2"), nodes)
	want := Plan{
		Routes: []Route{
			{Dst: netip.MustParsePrefix("10.244.1.0/24"), Via: netip.MustParseAddr("10.244.1.0")},
			{Dst: netip.MustParsePrefix("10.244.2.0/24"), Via: netip.MustParseAddr("10.244.2.0")},
			{Dst: netip.MustParsePrefix("fd00:10:244:2::/64"), Via: netip.MustParseAddr("fd00:10:244:2::")},
		},
		Peers: []Peer{
			{Underlay: netip.MustParseAddr("10.5.0.3"), MAC: EndpointMAC(netip.MustParseAddr("10.5.0.3")),
				Endpoints: addrs("10.244.1.0")},
			{Underlay: netip.MustParseAddr("10.5.0.4"), MAC: EndpointMAC(netip.MustParseAddr("10.5.0.4")),
				Endpoints: addrs("10.244.2.0", "fd00:10:244:2::")},
		},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("plan\n%+v\nwant\n%+v", got, want)
	}
}

func TestEndpointMAC(t *testing.T) {
	if got := EndpointMAC(netip.MustParseAddr("10.5.0.3")).String(); got != "0a:58:0a:05:00:03" {
		t.Errorf("MAC of 10.5.0.3 = %s", got)
	}
	a, b := EndpointMAC(netip.MustParseAddr("fd00::3")), EndpointMAC(netip.MustParseAddr("fd00::4"))
	if len(a) != 6 || a.String() == b.String() || a[0] != 0x0a {
		t.Errorf("MACs of IPv6 addresses: %s, %s", a, b)
	}
}
