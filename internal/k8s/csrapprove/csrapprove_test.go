package csrapprove

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"net"
	"net/netip"
	"net/url"
	"slices"
	"strings"
	"testing"
)

// csrSpec describes a certificate request to generate.
type csrSpec struct {
	cn     string
	org    []string
	dns    []string
	ips    []string
	emails []string
	uris   []string
}

// newCSR generates a real, signed certificate request and returns it as PEM.
func newCSR(t *testing.T, s csrSpec) []byte {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.CertificateRequest{
		Subject:        pkix.Name{CommonName: s.cn, Organization: s.org},
		DNSNames:       s.dns,
		EmailAddresses: s.emails,
	}
	for _, ip := range s.ips {
		tmpl.IPAddresses = append(tmpl.IPAddresses, net.ParseIP(ip))
	}
	for _, u := range s.uris {
		p, err := url.Parse(u)
		if err != nil {
			t.Fatal(err)
		}
		tmpl.URIs = append(tmpl.URIs, p)
	}
	der, err := x509.CreateCertificateRequest(rand.Reader, tmpl, key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der})
}

// badSignature returns a request whose signature does not match its content.
func badSignature(t *testing.T, s csrSpec) []byte {
	t.Helper()
	block, _ := pem.Decode(newCSR(t, s))
	block.Bytes[len(block.Bytes)-1] ^= 0xff
	return pem.EncodeToMemory(block)
}

func addrs(hostname string, ips ...string) []Address {
	out := []Address{{Type: AddressHostname, Address: hostname}}
	for _, ip := range ips {
		out = append(out, Address{Type: AddressInternalIP, Address: ip})
	}
	return out
}

var testNodes = []Node{
	{Name: "cp-1", Addresses: addrs("cp-1", "172.20.0.2")},
	{Name: "worker-1", Addresses: append(addrs("worker-1.lan", "172.20.0.3", "fd00:20::3"),
		Address{Type: AddressExternalIP, Address: "203.0.113.7"})},
	{Name: "worker-2", Addresses: addrs("worker-2", "172.20.0.4")},
	// rogue has put addresses that are not its own into its Node status (NodeRestriction
	// lets a kubelet do that), so the checks below are reached.
	{Name: "rogue", Addresses: addrs("rogue", "172.20.0.5", "172.20.0.4", "10.96.0.1", "10.244.1.5",
		"127.0.0.1", "::1", "169.254.1.1", "fe80::1", "224.0.0.1", "0.0.0.0", "172.20.0.9", "255.255.255.255")},
	{Name: "worker-3", Addresses: addrs("vault.corp.example.org", "172.20.0.6")},
	{Name: "kubernetes", Addresses: addrs("kubernetes", "172.20.0.7")},
	{Name: "api.example.org", Addresses: addrs("api.example.org", "172.20.0.8")},
	{Name: "web.default.svc", Addresses: addrs("web.default.svc", "172.20.0.10")},
	// edge.lan is edge's host name address and another node's name: neither gets it.
	{Name: "edge", Addresses: addrs("edge.lan", "172.20.0.14")},
	{Name: "edge.lan", Addresses: addrs("edge.lan", "172.20.0.11")},
	{Name: "db.cluster.local", Addresses: addrs("db.cluster.local", "172.20.0.12")},
	{Name: "localhost", Addresses: addrs("localhost", "172.20.0.13")},
}

// testCluster is a single-control-plane cluster: the endpoint is cp-1's address; the API
// server certificate also names 172.20.0.9 and api.example.org.
var testCluster = ClusterInfo{
	ServiceCIDRs:   []netip.Prefix{netip.MustParsePrefix("10.96.0.0/12"), netip.MustParsePrefix("fd00:10:96::/108")},
	PodCIDRs:       []netip.Prefix{netip.MustParsePrefix("10.244.0.0/16")},
	DNSDomain:      "cluster.local",
	APIServerNames: []string{"172.20.0.2", "172.20.0.9", "api.example.org"},
	Self:           "cp-1",
}

var servingUsages = []string{"digital signature", "server auth"}

// request builds a pending kubelet serving request from node with a generated CSR.
func request(t *testing.T, node string, s csrSpec) Request {
	t.Helper()
	if s.cn == "" {
		s.cn = "system:node:" + node
	}
	if s.org == nil {
		s.org = []string{"system:nodes"}
	}
	return Request{
		Name:       "csr-test",
		SignerName: SignerKubeletServing,
		Username:   "system:node:" + node,
		Groups:     []string{"system:nodes", "system:authenticated"},
		Usages:     servingUsages,
		PEM:        newCSR(t, s),
	}
}

func TestDecide(t *testing.T) {
	type tc struct {
		name    string
		req     Request
		approve bool
		reason  string // a part of the reason, for refusals
	}
	with := func(r Request, f func(*Request)) Request {
		f(&r)
		return r
	}
	good := csrSpec{dns: []string{"worker-1"}, ips: []string{"172.20.0.3"}}
	tests := []tc{
		{name: "good request", req: request(t, "worker-1", good), approve: true},
		{name: "good request with host name, external and IPv6 addresses", approve: true,
			req: request(t, "worker-1", csrSpec{dns: []string{"worker-1", "worker-1.lan"}, ips: []string{"172.20.0.3", "fd00:20::3", "203.0.113.7"}})},
		{name: "good request with IP addresses only", approve: true,
			req: request(t, "worker-1", csrSpec{ips: []string{"172.20.0.3"}})},
		{name: "key encipherment usage", approve: true,
			req: with(request(t, "worker-1", good), func(r *Request) { r.Usages = []string{"key encipherment", "digital signature", "server auth"} })},
		{name: "the approver's own node for the endpoint address", approve: true,
			req: request(t, "cp-1", csrSpec{dns: []string{"cp-1"}, ips: []string{"172.20.0.2"}})},
		{name: "wrong signer", reason: "signer",
			req: with(request(t, "worker-1", good), func(r *Request) { r.SignerName = "kubernetes.io/kube-apiserver-client-kubelet" })},
		{name: "requester not a node", reason: "not a node",
			req: with(request(t, "worker-1", good), func(r *Request) { r.Username = "alice" })},
		{name: "requester not in system:nodes", reason: "not in group",
			req: with(request(t, "worker-1", good), func(r *Request) { r.Groups = []string{"system:authenticated"} })},
		{name: "common name of another node", reason: "common name",
			req: request(t, "worker-1", csrSpec{cn: "system:node:worker-2", dns: []string{"worker-1"}, ips: []string{"172.20.0.3"}})},
		{name: "username does not match common name", reason: "common name",
			req: with(request(t, "worker-1", good), func(r *Request) { r.Username = "system:node:worker-2" })},
		{name: "extra organization", reason: "organization",
			req: request(t, "worker-1", csrSpec{org: []string{"system:nodes", "system:masters"}, dns: []string{"worker-1"}})},
		{name: "no organization", reason: "organization",
			req: request(t, "worker-1", csrSpec{org: []string{}, dns: []string{"worker-1"}})},
		{name: "email address", reason: "email",
			req: request(t, "worker-1", csrSpec{dns: []string{"worker-1"}, emails: []string{"root@worker-1"}})},
		{name: "URI", reason: "URI",
			req: request(t, "worker-1", csrSpec{dns: []string{"worker-1"}, uris: []string{"spiffe://cluster.local/ns/default/sa/default"}})},
		{name: "no names", reason: "no DNS name",
			req: request(t, "worker-1", csrSpec{})},
		{name: "extra DNS name", reason: "not node \"worker-1\"'s name",
			req: request(t, "worker-1", csrSpec{dns: []string{"worker-1", "evil.example.org"}, ips: []string{"172.20.0.3"}})},
		{name: "another node's name", reason: "not node \"worker-1\"'s name",
			req: request(t, "worker-1", csrSpec{dns: []string{"worker-2"}})},
		{name: "the API server's Service name", reason: "not node \"worker-1\"'s name",
			req: request(t, "worker-1", csrSpec{dns: []string{"kubernetes.default.svc.cluster.local"}})},
		{name: "host name address of another host", reason: "not node \"worker-3\"'s name",
			req: request(t, "worker-3", csrSpec{dns: []string{"vault.corp.example.org"}})},
		{name: "node named like the API server's Service", reason: "API server's Service name",
			req: request(t, "kubernetes", csrSpec{dns: []string{"kubernetes"}})},
		{name: "node named like a Service", reason: "a Service name",
			req: request(t, "web.default.svc", csrSpec{dns: []string{"web.default.svc"}})},
		{name: "node named like another node's host name", reason: "an address of node \"edge\"",
			req: request(t, "edge.lan", csrSpec{dns: []string{"edge.lan"}})},
		{name: "host name that is another node's name", reason: "node \"edge.lan\"'s name",
			req: request(t, "edge", csrSpec{dns: []string{"edge.lan"}})},
		{name: "node named in the cluster's DNS domain", reason: "cluster's DNS domain",
			req: request(t, "db.cluster.local", csrSpec{dns: []string{"db.cluster.local"}})},
		{name: "node named localhost", reason: "loopback name",
			req: request(t, "localhost", csrSpec{dns: []string{"localhost"}})},
		{name: "node named like the API server", reason: "the API server's",
			req: request(t, "api.example.org", csrSpec{dns: []string{"api.example.org"}})},
		{name: "foreign IP", reason: "not an address of node",
			req: request(t, "worker-1", csrSpec{dns: []string{"worker-1"}, ips: []string{"172.20.0.3", "198.51.100.10"}})},
		{name: "another node's IP", reason: "is an address of node \"worker-2\"",
			req: request(t, "rogue", csrSpec{ips: []string{"172.20.0.4"}})},
		{name: "another node's IP it does not list", reason: "is an address of node \"worker-2\"",
			req: request(t, "worker-1", csrSpec{ips: []string{"172.20.0.4"}})},
		{name: "service IP", reason: "Service network",
			req: request(t, "rogue", csrSpec{ips: []string{"10.96.0.1"}})},
		{name: "pod CIDR address", reason: "pod network",
			req: request(t, "rogue", csrSpec{ips: []string{"10.244.1.5"}})},
		{name: "loopback", reason: "loopback",
			req: request(t, "rogue", csrSpec{ips: []string{"127.0.0.1"}})},
		{name: "IPv6 loopback", reason: "loopback",
			req: request(t, "rogue", csrSpec{ips: []string{"::1"}})},
		{name: "link-local", reason: "link-local",
			req: request(t, "rogue", csrSpec{ips: []string{"169.254.1.1"}})},
		{name: "IPv6 link-local", reason: "link-local",
			req: request(t, "rogue", csrSpec{ips: []string{"fe80::1"}})},
		{name: "multicast", reason: "multicast",
			req: request(t, "rogue", csrSpec{ips: []string{"224.0.0.1"}})},
		{name: "unspecified", reason: "unspecified",
			req: request(t, "rogue", csrSpec{ips: []string{"0.0.0.0"}})},
		{name: "broadcast", reason: "not a unicast",
			req: request(t, "rogue", csrSpec{ips: []string{"255.255.255.255"}})},
		{name: "API server address claimed by another node", reason: "the API server's",
			req: request(t, "rogue", csrSpec{ips: []string{"172.20.0.9"}})},
		{name: "client auth usage", reason: "client auth",
			req: with(request(t, "worker-1", good), func(r *Request) { r.Usages = []string{"digital signature", "server auth", "client auth"} })},
		{name: "no server auth usage", reason: "lack",
			req: with(request(t, "worker-1", good), func(r *Request) { r.Usages = []string{"digital signature"} })},
		{name: "bad signature", reason: "signature",
			req: with(request(t, "worker-1", good), func(r *Request) {
				r.PEM = badSignature(t, csrSpec{cn: "system:node:worker-1", org: []string{"system:nodes"}, dns: []string{"worker-1"}})
			})},
		{name: "garbage PEM", reason: "not a PEM",
			req: with(request(t, "worker-1", good), func(r *Request) { r.PEM = []byte("not a request") })},
		{name: "no request", reason: "not a PEM",
			req: with(request(t, "worker-1", good), func(r *Request) { r.PEM = nil })},
		{name: "certificate instead of request", reason: "not a PEM",
			req: with(request(t, "worker-1", good), func(r *Request) {
				b, _ := pem.Decode(r.PEM)
				r.PEM = pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: b.Bytes})
			})},
		{name: "garbage DER", reason: "parse request",
			req: with(request(t, "worker-1", good), func(r *Request) {
				r.PEM = pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: []byte{0x30, 0x03, 0x02, 0x01, 0x01}})
			})},
		{name: "second block", reason: "data after",
			req: with(request(t, "worker-1", good), func(r *Request) {
				r.PEM = append(r.PEM, newCSR(t, csrSpec{cn: "system:node:worker-1", dns: []string{"evil.example.org"}})...)
			})},
		{name: "missing node", reason: "does not exist",
			req: request(t, "ghost", csrSpec{dns: []string{"ghost"}, ips: []string{"172.20.0.20"}})},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			approve, reason := Decide(tt.req, testNodes, testCluster)
			if approve != tt.approve {
				t.Fatalf("Decide = %v (%s), want %v", approve, reason, tt.approve)
			}
			if reason == "" {
				t.Error("empty reason")
			}
			if !tt.approve && !strings.Contains(reason, tt.reason) {
				t.Errorf("reason %q does not mention %q", reason, tt.reason)
			}
		})
	}
}

// The API server address may go only to the approver's own node, even when another node
// lists it as its own (as cp-1 would in a cluster whose endpoint is cp-1's address).
func TestDecideAPIServerAddressNotSelf(t *testing.T) {
	cluster := testCluster
	cluster.Self = "cp-2"
	r := request(t, "cp-1", csrSpec{dns: []string{"cp-1"}, ips: []string{"172.20.0.2"}})
	if approve, reason := Decide(r, testNodes, cluster); approve || !strings.Contains(reason, "API server") {
		t.Fatalf("Decide = %v (%s), want a refusal for the API server address", approve, reason)
	}
}

func TestPending(t *testing.T) {
	r := Request{SignerName: SignerKubeletServing, Username: "system:node:worker-1"}
	tests := []struct {
		name string
		f    func(*Request)
		want bool
	}{
		{"pending kubelet serving request", func(*Request) {}, true},
		{"wrong signer is skipped", func(r *Request) { r.SignerName = "kubernetes.io/kube-apiserver-client-kubelet" }, false},
		{"approved", func(r *Request) { r.Conditions = []string{"Approved"} }, false},
		{"denied", func(r *Request) { r.Conditions = []string{"Denied"} }, false},
		{"not from a node", func(r *Request) { r.Username = "kubernetes-admin" }, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := r
			r.Conditions = slices.Clone(r.Conditions)
			tt.f(&r)
			if got := Pending(r); got != tt.want {
				t.Errorf("Pending = %v, want %v", got, tt.want)
			}
		})
	}
}

// TestOldCheckWouldApproveForeignIP shows what finding 7 was about: the approver used to
// look only at the signer, the username prefix and the group, so a kubelet got a serving
// certificate for any address. Such a request is now refused.
func TestOldCheckWouldApproveForeignIP(t *testing.T) {
	r := request(t, "worker-1", csrSpec{dns: []string{"worker-1"}, ips: []string{"172.20.0.2"}}) // cp-1's address
	old := r.SignerName == SignerKubeletServing && len(r.Conditions) == 0 &&
		strings.HasPrefix(r.Username, "system:node:") && slices.Contains(r.Groups, "system:nodes")
	if !old {
		t.Fatal("the old check would not have approved the request; the test no longer shows the finding")
	}
	if approve, reason := Decide(r, testNodes, testCluster); approve {
		t.Fatalf("Decide approved a request for another node's address (%s)", reason)
	}
}

func TestSameHost(t *testing.T) {
	for _, tt := range []struct {
		a, b string
		want bool
	}{
		{"worker-1", "worker-1", true},
		{"worker-1", "worker-1.lan", true},
		{"worker-1.lan", "worker-1", true},
		{"worker-1.lan", "worker-1.example.org", false},
		{"worker-1", "worker-10", false},
		{"worker-1", "vault.corp", false},
	} {
		if got := sameHost(tt.a, tt.b); got != tt.want {
			t.Errorf("sameHost(%q, %q) = %v, want %v", tt.a, tt.b, got, tt.want)
		}
	}
}

// An address the node does not list (yet) leaves the request pending; one that another
// node lists, or a Service address, is a denial.
func TestVerdictWaitOrDeny(t *testing.T) {
	nodes := []Node{{Name: "worker-1", Addresses: addrs("worker-1", "10.5.0.3")}, {Name: "cp-1", Addresses: addrs("cp-1", "10.5.0.2")}}
	cluster := ClusterInfo{ServiceCIDRs: []netip.Prefix{netip.MustParsePrefix("10.96.0.0/12")}}
	for _, tc := range []struct {
		ip         string
		wait, deny bool
	}{{"10.5.0.3", false, false}, {"10.5.0.9", true, false}, {"10.5.0.2", false, true}, {"10.96.0.1", false, true}} {
		r := request(t, "worker-1", csrSpec{ips: []string{tc.ip}})
		approve, wait, reason := verdict(r, nodes, cluster)
		if wait != tc.wait || (!approve && !wait) != tc.deny {
			t.Errorf("%s: approve %v, wait %v (%s)", tc.ip, approve, wait, reason)
		}
	}
}
