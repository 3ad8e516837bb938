package dhcpclient

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv4"

	"github.com/plinthos/plinth/internal/atomicfile"
)

// Route is a route a lease gives: through Gateway, or on the link when Gateway is not
// valid.
type Route struct {
	Destination netip.Prefix
	Gateway     netip.Addr
}

// Lease is an acknowledged DHCPv4 lease of one link.
type Lease struct {
	// Link is the name of the link the lease is for.
	Link string
	// Address is the leased address with the subnet's prefix length.
	Address netip.Prefix
	// Server is the DHCP server that granted the lease.
	Server netip.Addr
	// Routes are the routes the lease gives: its classless static routes (option 121)
	// when it has them, else a default route through its first router (option 3).
	Routes []Route
	// DNS are the name servers of the lease.
	DNS []netip.Addr
	// Search are its domain name and search domains.
	Search []string
	// Acquired is when the server acknowledged it; Duration, T1 (renewal) and T2
	// (rebinding) count from then.
	Acquired         time.Time
	Duration, T1, T2 time.Duration
	offer, ack       *dhcpv4.DHCPv4
}

// Expires is when the lease ends unless it is renewed.
func (l *Lease) Expires() time.Time { return l.Acquired.Add(l.Duration) }

// defaultLeaseTime is the lease time of an ACK without one (RFC 2131 leaves it to the
// server; this only guards against a server that omits it).
const defaultLeaseTime = time.Hour

// newLease parses an ACK (and the offer it answers, kept for renewals).
func newLease(link string, offer, ack *dhcpv4.DHCPv4, acquired time.Time) (*Lease, error) {
	ip, ok := netip.AddrFromSlice(ack.YourIPAddr.To4())
	if !ok || !ip.IsGlobalUnicast() {
		return nil, fmt.Errorf("the server's answer has no usable address (%v)", ack.YourIPAddr)
	}
	bits := 24
	if mask := ack.SubnetMask(); mask != nil {
		ones, size := mask.Size()
		if size != 32 || ones == 0 {
			return nil, fmt.Errorf("the server's subnet mask %v is not valid", net.IP(mask))
		}
		bits = ones
	} else if ip.Is4() {
		bits = classfulBits(ip)
	}
	l := &Lease{Link: link, Address: netip.PrefixFrom(ip, bits), Acquired: acquired, offer: offer, ack: ack}
	if server, ok := netip.AddrFromSlice(ack.ServerIdentifier().To4()); ok {
		l.Server = server
	} else if server, ok := netip.AddrFromSlice(ack.ServerIPAddr.To4()); ok && !server.IsUnspecified() {
		l.Server = server
	}
	l.Duration = ack.IPAddressLeaseTime(defaultLeaseTime)
	if l.Duration <= 0 {
		l.Duration = defaultLeaseTime
	}
	// RFC 2131 4.4.5: T1 defaults to half the lease, T2 to 7/8 of it.
	l.T1 = ack.IPAddressRenewalTime(l.Duration / 2)
	l.T2 = ack.IPAddressRebindingTime(l.Duration * 7 / 8)
	if l.T2 <= 0 || l.T2 > l.Duration {
		l.T2 = l.Duration * 7 / 8
	}
	if l.T1 <= 0 || l.T1 > l.T2 {
		l.T1 = l.T2 / 2
	}
	// RFC 3442: with classless static routes, the router option is ignored.
	if routes := ack.ClasslessStaticRoute(); len(routes) > 0 {
		for _, r := range routes {
			dst, ok := netip.AddrFromSlice(r.Dest.IP.To4())
			if !ok {
				continue
			}
			ones, _ := r.Dest.Mask.Size()
			route := Route{Destination: netip.PrefixFrom(dst, ones).Masked()}
			if gw, ok := netip.AddrFromSlice(r.Router.To4()); ok && !gw.IsUnspecified() {
				route.Gateway = gw
			}
			l.Routes = append(l.Routes, route)
		}
	} else if routers := ack.Router(); len(routers) > 0 {
		if gw, ok := netip.AddrFromSlice(routers[0].To4()); ok && !gw.IsUnspecified() {
			l.Routes = []Route{{Destination: netip.PrefixFrom(netip.IPv4Unspecified(), 0), Gateway: gw}}
		}
	}
	for _, d := range ack.DNS() {
		if a, ok := netip.AddrFromSlice(d.To4()); ok && !a.IsUnspecified() {
			l.DNS = append(l.DNS, a)
		}
	}
	if d := strings.TrimSuffix(ack.DomainName(), "."); d != "" {
		l.Search = append(l.Search, d)
	}
	if labels := ack.DomainSearch(); labels != nil {
		for _, d := range labels.Labels {
			if d = strings.TrimSuffix(d, "."); d != "" && !contains(l.Search, d) {
				l.Search = append(l.Search, d)
			}
		}
	}
	return l, nil
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// classfulBits is the prefix length of an address's class, for servers that send no
// subnet mask.
func classfulBits(ip netip.Addr) int {
	switch b := ip.As4()[0]; {
	case b < 128:
		return 8
	case b < 192:
		return 16
	}
	return 24
}

// leaseFile is how a lease is kept on disk: the server's messages as they came, so that a
// later reader (the controller taking over from the boot) parses them the same way.
type leaseFile struct {
	Link     string    `json:"link"`
	Acquired time.Time `json:"acquired"`
	Offer    []byte    `json:"offer"`
	ACK      []byte    `json:"ack"`
}

// LeasePath is the file of link's lease in dir.
func LeasePath(dir, link string) string { return filepath.Join(dir, link+".json") }

// Save writes the lease to its file in dir.
func (l *Lease) Save(dir string) error {
	data, err := json.Marshal(leaseFile{Link: l.Link, Acquired: l.Acquired, Offer: l.offer.ToBytes(), ACK: l.ack.ToBytes()})
	if err != nil {
		return fmt.Errorf("encode the lease of %s: %w", l.Link, err)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("save the lease of %s: %w", l.Link, err)
	}
	if err := atomicfile.Write(LeasePath(dir, l.Link), data, 0o600); err != nil {
		return fmt.Errorf("save the lease of %s: %w", l.Link, err)
	}
	return nil
}

// Load reads link's lease from dir; it returns nil and no error when there is none.
func Load(dir, link string) (*Lease, error) {
	data, err := os.ReadFile(LeasePath(dir, link))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read the lease of %s: %w", link, err)
	}
	var f leaseFile
	if err := json.Unmarshal(data, &f); err != nil {
		return nil, fmt.Errorf("the lease file of %s: %w", link, err)
	}
	if f.Link != link {
		return nil, fmt.Errorf("the lease file of %s is for %q", link, f.Link)
	}
	offer, err := dhcpv4.FromBytes(f.Offer)
	if err != nil {
		return nil, fmt.Errorf("the lease file of %s: offer: %w", link, err)
	}
	ack, err := dhcpv4.FromBytes(f.ACK)
	if err != nil {
		return nil, fmt.Errorf("the lease file of %s: ack: %w", link, err)
	}
	return newLease(link, offer, ack, f.Acquired)
}

// Forget removes link's lease file from dir.
func Forget(dir, link string) error {
	if err := os.Remove(LeasePath(dir, link)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("remove the lease of %s: %w", link, err)
	}
	return nil
}
