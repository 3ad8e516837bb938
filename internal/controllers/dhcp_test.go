package controllers

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/plinthos/plinth/internal/dhcpclient"
	"github.com/plinthos/plinth/internal/dhcptest"
	"github.com/plinthos/plinth/internal/resources"
	"github.com/plinthos/plinth/pkg/config"
)

func waitFile(t *testing.T, path string, cond func(string) bool) string {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		data, _ := os.ReadFile(path)
		if cond(string(data)) {
			return string(data)
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s never reached the expected content; it is:\n%s", path, data)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestDHCPLeasesAndResolvers: a link with dhcp gets a lease from a DHCP server in a
// namespace of the test's, shown as a DHCPLease; its name server goes to resolv.conf until
// machine.network.nameservers is set; dropping dhcp releases the lease.
func TestDHCPLeasesAndResolvers(t *testing.T) {
	n := dhcptest.Start(t, &dhcptest.Server{LeaseTime: 600})
	resolv := filepath.Join(t.TempDir(), "resolv.conf")
	cs := generated(t)
	cfg := *cs.ControlPlane
	cfg.Machine.Network.Interfaces = []config.Interface{{Name: "eth0", DHCP: true}}
	h := start(t, &cfg,
		&DHCP{Handle: n.Client, Namespace: &n.ClientNS, LeaseDir: t.TempDir(),
			Tune: func(c *dhcpclient.Client) { c.ExchangeTimeout, c.RetryMin = 300*time.Millisecond, 100*time.Millisecond }},
		&Resolvers{Path: resolv})
	lease := waitSpec(t, h, resources.NamespaceNetwork, resources.DHCPLeaseType, "eth0",
		func(s resources.DHCPLeaseSpec) bool { return s.Address != "" })
	if lease.Address != dhcptest.PoolAddr.String() || lease.Gateway != dhcptest.ServerAddr.Addr().String() ||
		lease.Server != dhcptest.ServerAddr.Addr().String() || len(lease.DNS) != 1 || lease.DNS[0] != dhcptest.DNS.String() || lease.Expires == "" {
		t.Errorf("lease %+v", lease)
	}
	waitFile(t, resolv, func(s string) bool {
		return strings.Contains(s, "nameserver "+dhcptest.DNS.String()+"\n") && strings.Contains(s, "search "+dhcptest.Domain+"\n")
	})

	withNS := cfg
	withNS.Machine.Network.Nameservers = []string{"192.0.2.53"}
	h.config.set(&withNS)
	waitFile(t, resolv, func(s string) bool {
		return strings.Contains(s, "nameserver 192.0.2.53\n") && !strings.Contains(s, dhcptest.DNS.String())
	})

	static := withNS
	static.Machine.Network.Interfaces = []config.Interface{{Name: "eth0", Addresses: []string{"10.77.0.9/24"}}}
	h.config.set(&static)
	waitGone(t, h, resources.NamespaceNetwork, resources.DHCPLeaseType, "eth0")
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		if _, _, releases := n.Server.Counts(); releases == 1 {
			break
		} else if time.Now().After(deadline) {
			t.Fatalf("the server saw %d releases, want 1", releases)
		}
	}
}
