package dhcpclient

import (
	"context"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv4"
	"github.com/insomniacslk/dhcp/dhcpv4/server4"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"go.uber.org/goleak"
	"golang.org/x/sys/unix"

	"github.com/plinthos/plinth/internal/netnstest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// testServer is a DHCP server (insomniacslk's server4 with a one-address pool) in a
// network namespace of its own, on the far end of a veth pair whose near end, eth0, is in
// the client's namespace. Nothing leaves the two namespaces.
type testServer struct {
	// settings, fixed before the first request
	leaseTime  uint32
	serverID   net.IP // what the server calls itself (option 54); 10.77.0.1 by default
	nakRenewal bool   // refuse requests for an address already held (renewals, rebinds)

	mu        sync.Mutex
	discovers int
	renewals  int // requests with ciaddr set
	releases  int
	wg        sync.WaitGroup
}

var (
	serverAddr = netip.MustParsePrefix("10.77.0.1/24")
	poolAddr   = net.IPv4(10, 77, 0, 50)
)

type testNet struct {
	clientNS netns.NsHandle
	client   *netlink.Handle
	srv      *testServer
}

func newTestNet(t *testing.T, srv *testServer) *testNet {
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
			if err := sh.AddrAdd(l, &netlink.Addr{IPNet: ipNet(serverAddr)}); err != nil {
				t.Fatal(err)
			}
		}
	}
	if srv.serverID == nil {
		srv.serverID = serverAddr.Addr().AsSlice()
	}
	var conn *net.UDPConn
	if err := inNamespace(&sns, func() error {
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
	return &testNet{clientNS: cns, client: ch, srv: srv}
}

func (s *testServer) handle(conn net.PacketConn, peer net.Addr, m *dhcpv4.DHCPv4) {
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
			if s.nakRenewal {
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
		dhcpv4.WithServerIP(serverAddr.Addr().AsSlice()),
		dhcpv4.WithOption(dhcpv4.OptServerIdentifier(s.serverID)))
	if err != nil {
		return
	}
	if reply != dhcpv4.MessageTypeNak {
		resp.YourIPAddr = poolAddr
		resp.UpdateOption(dhcpv4.OptSubnetMask(net.CIDRMask(24, 32)))
		resp.UpdateOption(dhcpv4.OptRouter(serverAddr.Addr().AsSlice()))
		resp.UpdateOption(dhcpv4.OptDNS(net.IPv4(10, 77, 0, 53)))
		resp.UpdateOption(dhcpv4.OptDomainName("example.test"))
		resp.UpdateOption(dhcpv4.OptIPAddressLeaseTime(time.Duration(s.leaseTime) * time.Second))
	}
	_, _ = conn.WriteTo(resp.ToBytes(), peer)
}

func (s *testServer) counts() (discovers, renewals, releases int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.discovers, s.renewals, s.releases
}

func quiet() *slog.Logger { return slog.New(slog.DiscardHandler) }

// newClient is a client of eth0 in the test's client namespace, with short retries.
func (n *testNet) newClient(t *testing.T) (*Client, chan *Lease) {
	leases := make(chan *Lease, 16)
	return &Client{Link: "eth0", Handle: n.client, Namespace: &n.clientNS, LeaseDir: t.TempDir(), Log: quiet(),
		ExchangeTimeout: 300 * time.Millisecond, Tries: 2, RetryMin: 100 * time.Millisecond, RetryMax: time.Second,
		RenewRetry: 100 * time.Millisecond, OnLease: func(l *Lease) { leases <- l }}, leases
}

func next(t *testing.T, leases chan *Lease) *Lease {
	t.Helper()
	select {
	case l := <-leases:
		return l
	case <-time.After(30 * time.Second):
		t.Fatal("no lease event")
		return nil
	}
}

// linkState reads eth0's IPv4 addresses and DHCP routes in the client's namespace.
func (n *testNet) linkState(t *testing.T) (addrs, routes []string) {
	t.Helper()
	l, err := n.client.LinkByName("eth0")
	if err != nil {
		t.Fatal(err)
	}
	list, err := n.client.AddrList(l, netlink.FAMILY_V4)
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range list {
		addrs = append(addrs, a.IPNet.String())
	}
	rs, err := n.client.RouteList(l, netlink.FAMILY_V4)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range rs {
		if r.Protocol == unix.RTPROT_DHCP {
			routes = append(routes, routeKey(&r))
		}
	}
	return addrs, routes
}

func run(c *Client) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = c.Run(ctx) }()
	return func() { cancel(); <-done }
}

// TestRunAcquiresRenewsReleases: a lease of 4 s is acquired and applied (address, default
// route marked dhcp, lease file), renewed at T1 with the server, and released at the end
// (the server hears it; address, route and file are gone).
func TestRunAcquiresRenewsReleases(t *testing.T) {
	n := newTestNet(t, &testServer{leaseTime: 4})
	c, leases := n.newClient(t)
	stop := run(c)
	defer stop()

	l := next(t, leases)
	if l == nil || l.Address != netip.MustParsePrefix("10.77.0.50/24") || l.Server != serverAddr.Addr() ||
		len(l.DNS) != 1 || l.DNS[0] != netip.MustParseAddr("10.77.0.53") || len(l.Search) != 1 || l.Search[0] != "example.test" ||
		l.Duration != 4*time.Second || l.T1 != 2*time.Second || l.T2 != 3500*time.Millisecond {
		t.Fatalf("lease %+v", l)
	}
	addrs, routes := n.linkState(t)
	if len(addrs) != 1 || addrs[0] != "10.77.0.50/24" || len(routes) != 1 || routes[0] != "0.0.0.0/0 10.77.0.1" {
		t.Errorf("eth0: addresses %v, DHCP routes %v", addrs, routes)
	}
	if _, err := os.Stat(LeasePath(c.LeaseDir, "eth0")); err != nil {
		t.Errorf("lease file: %v", err)
	}

	renewed := next(t, leases)
	if renewed == nil || renewed.Address != l.Address || !renewed.Acquired.After(l.Acquired) {
		t.Fatalf("renewal: %+v", renewed)
	}
	if _, renewals, _ := n.srv.counts(); renewals == 0 {
		t.Error("the server saw no renewal")
	}

	stop()
	for l := range leases {
		if l == nil {
			break
		}
	}
	addrs, routes = n.linkState(t)
	if len(addrs) != 0 || len(routes) != 0 {
		t.Errorf("after the release, eth0: addresses %v, DHCP routes %v", addrs, routes)
	}
	if _, _, releases := n.srv.counts(); releases != 1 {
		t.Errorf("the server saw %d releases, want 1", releases)
	}
	if _, err := os.Stat(LeasePath(c.LeaseDir, "eth0")); !os.IsNotExist(err) {
		t.Errorf("lease file after the release: %v", err)
	}
}

// TestRunRebindsWhenTheServerIsGone: the lease names a server identifier nobody has, so
// renewals (sent to it) go unanswered; at T2 the broadcast rebind reaches the server.
func TestRunRebindsWhenTheServerIsGone(t *testing.T) {
	n := newTestNet(t, &testServer{leaseTime: 4, serverID: net.IPv4(10, 77, 0, 2)})
	c, leases := n.newClient(t)
	stop := run(c)
	defer stop()
	first := next(t, leases)
	rebound := next(t, leases)
	if first == nil || rebound == nil || rebound.Address != first.Address {
		t.Fatalf("leases %+v then %+v", first, rebound)
	}
	if since := rebound.Acquired.Sub(first.Acquired); since < first.T2 {
		t.Errorf("extended %v after the lease, before T2 (%v): a renewal was answered", since, first.T2)
	}
	if addrs, _ := n.linkState(t); len(addrs) != 1 {
		t.Errorf("eth0 addresses %v", addrs)
	}
}

// TestRunStartsOverOnNak: the server refuses the renewal; the lease is dropped (no
// address) and a new one acquired.
func TestRunStartsOverOnNak(t *testing.T) {
	n := newTestNet(t, &testServer{leaseTime: 4, nakRenewal: true})
	c, leases := n.newClient(t)
	stop := run(c)
	defer stop()
	if l := next(t, leases); l == nil {
		t.Fatal("no first lease")
	}
	if l := next(t, leases); l != nil {
		t.Fatalf("after the NAK: %+v, want no lease", l)
	}
	if l := next(t, leases); l == nil {
		t.Fatal("no lease after the NAK")
	}
	if discovers, _, _ := n.srv.counts(); discovers < 2 {
		t.Errorf("%d discovers, want a second after the NAK", discovers)
	}
}

// TestRunTakesOverTheBootLease: what Acquire saved (the boot's lease) is kept by Run
// without a new discovery.
func TestRunTakesOverTheBootLease(t *testing.T) {
	n := newTestNet(t, &testServer{leaseTime: 60})
	c, leases := n.newClient(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	boot, err := c.Acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	stop := run(c)
	defer stop()
	l := next(t, leases)
	if l == nil || l.Address != boot.Address || !l.Acquired.Equal(boot.Acquired) {
		t.Fatalf("lease %+v, want the boot's %+v", l, boot)
	}
	if discovers, _, _ := n.srv.counts(); discovers != 1 {
		t.Errorf("%d discovers, want only the boot's", discovers)
	}
}
