package dhcpclient

import (
	"net"
	"net/netip"
	"slices"
	"testing"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv4"
)

func ack(t *testing.T, mods ...dhcpv4.Modifier) *dhcpv4.DHCPv4 {
	t.Helper()
	m, err := dhcpv4.New(append([]dhcpv4.Modifier{dhcpv4.WithMessageType(dhcpv4.MessageTypeAck), dhcpv4.WithYourIP(net.IPv4(192, 0, 2, 10)),
		dhcpv4.WithOption(dhcpv4.OptServerIdentifier(net.IPv4(192, 0, 2, 1)))}, mods...)...)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func TestLeaseParsing(t *testing.T) {
	now := time.Now()
	// Classless static routes win over the router option (RFC 3442).
	a := ack(t,
		dhcpv4.WithNetmask(net.CIDRMask(28, 32)),
		dhcpv4.WithOption(dhcpv4.OptRouter(net.IPv4(192, 0, 2, 1))),
		dhcpv4.WithOption(dhcpv4.OptClasslessStaticRoute(
			&dhcpv4.Route{Dest: &net.IPNet{IP: net.IPv4(0, 0, 0, 0), Mask: net.CIDRMask(0, 32)}, Router: net.IPv4(192, 0, 2, 14)},
			&dhcpv4.Route{Dest: &net.IPNet{IP: net.IPv4(198, 51, 100, 0), Mask: net.CIDRMask(24, 32)}, Router: net.IPv4(0, 0, 0, 0)})),
		dhcpv4.WithLeaseTime(1000),
		dhcpv4.WithOption(dhcpv4.OptRenewTimeValue(100*time.Second)),
		dhcpv4.WithDomainSearchList("a.example", "b.example"),
	)
	l, err := newLease("eth0", a, a, now)
	if err != nil {
		t.Fatal(err)
	}
	want := []Route{
		{Destination: netip.MustParsePrefix("0.0.0.0/0"), Gateway: netip.MustParseAddr("192.0.2.14")},
		{Destination: netip.MustParsePrefix("198.51.100.0/24")},
	}
	if l.Address != netip.MustParsePrefix("192.0.2.10/28") || !slices.Equal(l.Routes, want) || l.Server != netip.MustParseAddr("192.0.2.1") ||
		l.Duration != 1000*time.Second || l.T1 != 100*time.Second || l.T2 != 875*time.Second || !slices.Equal(l.Search, []string{"a.example", "b.example"}) {
		t.Errorf("lease %+v", l)
	}

	// No mask: the address's class; no lease time: an hour.
	b := ack(t, dhcpv4.WithYourIP(net.IPv4(10, 1, 2, 3)))
	if l, err := newLease("eth0", b, b, now); err != nil || l.Address != netip.MustParsePrefix("10.1.2.3/8") || l.Duration != time.Hour || len(l.Routes) != 0 {
		t.Errorf("lease %+v, %v", l, err)
	}

	// No address: refused.
	c := ack(t, dhcpv4.WithYourIP(net.IPv4zero))
	if _, err := newLease("eth0", c, c, now); err == nil {
		t.Error("a lease without an address was accepted")
	}
}

func TestLeaseFileRoundTrip(t *testing.T) {
	dir := t.TempDir()
	a := ack(t, dhcpv4.WithNetmask(net.CIDRMask(24, 32)), dhcpv4.WithOption(dhcpv4.OptDNS(net.IPv4(192, 0, 2, 53))), dhcpv4.WithLeaseTime(600))
	l, err := newLease("eth0", a, a, time.Now().Round(0))
	if err != nil {
		t.Fatal(err)
	}
	if err := l.Save(dir); err != nil {
		t.Fatal(err)
	}
	got, err := Load(dir, "eth0")
	if err != nil {
		t.Fatal(err)
	}
	if got.Address != l.Address || !got.Acquired.Equal(l.Acquired) || !slices.Equal(got.DNS, l.DNS) || got.Duration != l.Duration {
		t.Errorf("loaded %+v, saved %+v", got, l)
	}
	if l, err := Load(dir, "eth1"); l != nil || err != nil {
		t.Errorf("missing lease: %v, %v", l, err)
	}
	if err := Forget(dir, "eth0"); err != nil {
		t.Fatal(err)
	}
	if l, err := Load(dir, "eth0"); l != nil || err != nil {
		t.Errorf("forgotten lease: %v, %v", l, err)
	}
}
