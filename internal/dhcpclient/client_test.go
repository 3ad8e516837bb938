package dhcpclient

import (
	"context"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"go.uber.org/goleak"
	"golang.org/x/sys/unix"

	"github.com/plinthos/plinth/internal/dhcptest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func quiet() *slog.Logger { return slog.New(slog.DiscardHandler) }

// newClient is a client of eth0 in the test's client namespace, with short retries.
func newClient(t *testing.T, n *dhcptest.Net) (*Client, chan *Lease) {
	leases := make(chan *Lease, 16)
	return &Client{Link: "eth0", Handle: n.Client, Namespace: &n.ClientNS, LeaseDir: t.TempDir(), Log: quiet(),
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
func linkState(t *testing.T, n *dhcptest.Net) (addrs, routes []string) {
	t.Helper()
	l, err := n.Client.LinkByName("eth0")
	if err != nil {
		t.Fatal(err)
	}
	list, err := n.Client.AddrList(l, netlink.FAMILY_V4)
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range list {
		addrs = append(addrs, a.IPNet.String())
	}
	rs, err := n.Client.RouteList(l, netlink.FAMILY_V4)
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

// TestRunAcquiresRenewsReleases: a lease of 6 s is acquired and applied (address, default
// route marked dhcp, lease file), renewed at T1 with the server, and released at the end
// (the server hears it; address, route and file are gone).
func TestRunAcquiresRenewsReleases(t *testing.T) {
	n := dhcptest.Start(t, &dhcptest.Server{LeaseTime: 6})
	c, leases := newClient(t, n)
	stop := run(c)
	defer stop()

	l := next(t, leases)
	if l == nil || l.Address != netip.MustParsePrefix("10.77.0.50/24") || l.Server != dhcptest.ServerAddr.Addr() ||
		len(l.DNS) != 1 || l.DNS[0] != netip.MustParseAddr("10.77.0.53") || len(l.Search) != 1 || l.Search[0] != "example.test" ||
		l.Duration != 6*time.Second || l.T1 != 3*time.Second || l.T2 != 5250*time.Millisecond {
		t.Fatalf("lease %+v", l)
	}
	addrs, routes := linkState(t, n)
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
	if _, renewals, _ := n.Server.Counts(); renewals == 0 {
		t.Error("the server saw no renewal")
	}

	stop()
	for l := range leases {
		if l == nil {
			break
		}
	}
	addrs, routes = linkState(t, n)
	if len(addrs) != 0 || len(routes) != 0 {
		t.Errorf("after the release, eth0: addresses %v, DHCP routes %v", addrs, routes)
	}
	// The server handles the release on its own time.
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		if _, _, releases := n.Server.Counts(); releases == 1 {
			break
		} else if time.Now().After(deadline) {
			t.Fatalf("the server saw %d releases, want 1", releases)
		}
	}
	if _, err := os.Stat(LeasePath(c.LeaseDir, "eth0")); !os.IsNotExist(err) {
		t.Errorf("lease file after the release: %v", err)
	}
}

// TestRunRebindsWhenTheServerIsGone: the lease names a server identifier nobody has, so
// renewals (sent to it) go unanswered; at T2 the broadcast rebind reaches the server.
func TestRunRebindsWhenTheServerIsGone(t *testing.T) {
	n := dhcptest.Start(t, &dhcptest.Server{LeaseTime: 4, ServerID: net.IPv4(10, 77, 0, 2)})
	c, leases := newClient(t, n)
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
	if addrs, _ := linkState(t, n); len(addrs) != 1 {
		t.Errorf("eth0 addresses %v", addrs)
	}
}

// TestRunStartsOverOnNak: the server refuses the renewal; the lease is dropped (no
// address) and a new one acquired.
func TestRunStartsOverOnNak(t *testing.T) {
	n := dhcptest.Start(t, &dhcptest.Server{LeaseTime: 4, NakRenewal: true})
	c, leases := newClient(t, n)
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
	if discovers, _, _ := n.Server.Counts(); discovers < 2 {
		t.Errorf("%d discovers, want a second after the NAK", discovers)
	}
}

// TestRunTakesOverTheBootLease: what Acquire saved (the boot's lease) is kept by Run
// without a new discovery.
func TestRunTakesOverTheBootLease(t *testing.T) {
	n := dhcptest.Start(t, &dhcptest.Server{LeaseTime: 60})
	c, leases := newClient(t, n)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	boot, err := c.Acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	before, _, _ := n.Server.Counts() // the library may have sent the discovery twice
	stop := run(c)
	defer stop()
	l := next(t, leases)
	if l == nil || l.Address != boot.Address || !l.Acquired.Equal(boot.Acquired) {
		t.Fatalf("lease %+v, want the boot's %+v", l, boot)
	}
	if discovers, _, _ := n.Server.Counts(); discovers != before {
		t.Errorf("%d discovers, want only the boot's %d", discovers, before)
	}
}
