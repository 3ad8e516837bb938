// Package dhcptest is a DHCPv4 server for tests (insomniacslk's server4 with a
// one-address pool) in a network namespace of its own, on the far end of a veth pair
// whose near end, eth0, is in the client's namespace. Nothing leaves the two namespaces.
// Used by tests only; it needs root, and skips saying so without it.
package dhcptest

import (
	"net"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv4"
	"github.com/insomniacslk/dhcp/dhcpv4/server4"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"

	"github.com/plinthos/plinth/internal/netnstest"
)

// What the server is and gives.
var (
	ServerAddr = netip.MustParsePrefix("10.77.0.1/24")
	PoolAddr   = netip.MustParsePrefix("10.77.0.50/24")
	DNS        = netip.MustParseAddr("10.77.0.53")
	Domain     = "example.test"
)

// Server is the server's behaviour, fixed before Start, and what it saw.
type Server struct {
	// LeaseTime is the lease time it grants, in seconds.
	LeaseTime uint32
	// ServerID is what it calls itself (option 54); ServerAddr by default. Another address
	// makes renewals, which are sent to it, go unanswered.
	ServerID net.IP
	// NakRenewal makes it refuse requests for an address already held (renewals and
	// rebinds).
	NakRenewal bool

	mu        sync.Mutex
	discovers int
	renewals  int // requests with ciaddr set
	releases  int
	wg        sync.WaitGroup
}

// Net is the two namespaces and the link between them.
type Net struct {
	// ClientNS is the client's namespace and Client a netlink handle in it; its link to
	// the server is eth0.
	ClientNS netns.NsHandle
	Client   *netlink.Handle
	Server   *Server
}

// Start makes the namespaces and runs srv until the test ends.
func Start(t *testing.T, srv *Server) *Net {
	t.Helper()
	cns, ch := netnstest.New(t)
	sns, sh := netnstest.New(t)
	if err := ch.LinkAdd(&netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: "eth0"}, PeerName: "srv0"}); err != nil {
		t.Fatalf("create a veth pair: %v", err)
	}
	peer, err := ch.LinkByName("srv0")
	if err != nil {
		t.Fatal(err)
	}
	if err := ch.LinkSetNsFd(peer, int(sns)); err != nil {
		t.Fatalf("move srv0 to the server's namespace: %v", err)
	}
	for _, name := range []string{"lo", "srv0"} {
		l, err := sh.LinkByName(name)
		if err != nil {
			t.Fatal(err)
		}
		if err := sh.LinkSetUp(l); err != nil {
			t.Fatal(err)
		}
		if name == "srv0" {
			p := ServerAddr
			if err := sh.AddrAdd(l, &netlink.Addr{IPNet: &net.IPNet{IP: p.Addr().AsSlice(), Mask: net.CIDRMask(p.Bits(), 32)}}); err != nil {
				t.Fatal(err)
			}
		}
	}
	if srv.ServerID == nil {
		srv.ServerID = ServerAddr.Addr().AsSlice()
	}
	var conn *net.UDPConn
	if err := netnstest.In(t, sns, func() error {
		var err error
		conn, err = server4.NewIPv4UDPConn("srv0", &net.UDPAddr{Port: dhcpv4.ServerPort})
		return err
	}); err != nil {
		t.Fatalf("DHCP server socket: %v", err)
	}
	s, err := server4.NewServer("", nil, srv.handle, server4.WithConn(conn))
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan struct{})
	go func() { defer close(served); _ = s.Serve() }()
	t.Cleanup(func() { s.Close(); <-served; srv.wg.Wait() })
	return &Net{ClientNS: cns, Client: ch, Server: srv}
}

func (s *Server) handle(conn net.PacketConn, peer net.Addr, m *dhcpv4.DHCPv4) {
	s.wg.Add(1)
	defer s.wg.Done()
	var reply dhcpv4.MessageType
	s.mu.Lock()
	switch m.MessageType() {
	case dhcpv4.MessageTypeDiscover:
		s.discovers++
		reply = dhcpv4.MessageTypeOffer
	case dhcpv4.MessageTypeRequest:
		reply = dhcpv4.MessageTypeAck
		if !m.ClientIPAddr.IsUnspecified() {
			s.renewals++
			if s.NakRenewal {
				reply = dhcpv4.MessageTypeNak
			}
		}
	case dhcpv4.MessageTypeRelease:
		s.releases++
	}
	s.mu.Unlock()
	if reply == dhcpv4.MessageTypeNone {
		return
	}
	resp, err := dhcpv4.NewReplyFromRequest(m,
		dhcpv4.WithMessageType(reply),
		dhcpv4.WithServerIP(ServerAddr.Addr().AsSlice()),
		dhcpv4.WithOption(dhcpv4.OptServerIdentifier(s.ServerID)))
	if err != nil {
		return
	}
	if reply != dhcpv4.MessageTypeNak {
		resp.YourIPAddr = PoolAddr.Addr().AsSlice()
		resp.UpdateOption(dhcpv4.OptSubnetMask(net.CIDRMask(PoolAddr.Bits(), 32)))
		resp.UpdateOption(dhcpv4.OptRouter(ServerAddr.Addr().AsSlice()))
		resp.UpdateOption(dhcpv4.OptDNS(DNS.AsSlice()))
		resp.UpdateOption(dhcpv4.OptDomainName(Domain))
		resp.UpdateOption(dhcpv4.OptIPAddressLeaseTime(time.Duration(s.LeaseTime) * time.Second))
	}
	_, _ = conn.WriteTo(resp.ToBytes(), peer)
}

// Counts returns the discoveries, renewals (requests for an address already held) and
// releases the server saw.
func (s *Server) Counts() (discovers, renewals, releases int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.discovers, s.renewals, s.releases
}
