// Package csrapprove decides which kubelet serving certificate requests
// (signer kubernetes.io/kubelet-serving) the control plane approves: only those in which
// a node asks, for itself, for the names and addresses its Node object gives it and that
// belong to no other node and to nothing of the cluster's own (Services, pods, the API
// server).
//
// Residual risk: NodeRestriction lets a kubelet update the status of its own Node object,
// addresses included, and the bootstrap token lets its holder register a new node under a
// name of its choosing. So a compromised kubelet (or a bootstrap token holder) can claim
// an address that no other Node object lists and get a serving certificate for it. The
// checks below bound that to addresses that are unused by other nodes and outside the
// cluster's Service and pod networks, the API server's addresses and the special ranges
// (loopback, link-local, multicast, unspecified), and to DNS names that are the node's
// own name (or the same host's short or long form) and none of the cluster's own names.
package csrapprove

import (
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"
)

// SignerKubeletServing is the signer of kubelet serving certificates.
const SignerKubeletServing = "kubernetes.io/kubelet-serving"

const (
	nodeUserPrefix = "system:node:"
	nodesGroup     = "system:nodes"
	usageServer    = "server auth"
)

// allowedUsages are the key usages a kubelet serving certificate may have; "server auth"
// is also required.
var allowedUsages = []string{"digital signature", "key encipherment", usageServer}

// Request is the part of a CertificateSigningRequest object the approver looks at.
type Request struct {
	// Name is the object's name.
	Name string
	// SignerName is spec.signerName.
	SignerName string
	// Username and Groups are who created the request (spec.username, spec.groups), as
	// the API server authenticated them.
	Username string
	Groups   []string
	// Usages is spec.usages.
	Usages []string
	// PEM is spec.request, base64-decoded: a PEM "CERTIFICATE REQUEST" block. Nil when
	// spec.request was not valid base64.
	PEM []byte
	// Conditions are the types of status.conditions (Approved, Denied, Failed).
	Conditions []string
}

// Node is the part of a Node object the approver looks at.
type Node struct {
	Name      string
	Addresses []Address
}

// Address is one entry of a Node's status.addresses.
type Address struct {
	// Type is Hostname, InternalIP, ExternalIP, InternalDNS or ExternalDNS.
	Type    string
	Address string
}

// Node address types.
const (
	AddressHostname   = "Hostname"
	AddressInternalIP = "InternalIP"
	AddressExternalIP = "ExternalIP"
)

// ClusterInfo is what the approver knows of the cluster besides its nodes.
type ClusterInfo struct {
	// ServiceCIDRs and PodCIDRs are the cluster's Service and pod networks.
	ServiceCIDRs []netip.Prefix
	PodCIDRs     []netip.Prefix
	// DNSDomain is the cluster's DNS domain (cluster.local).
	DNSDomain string
	// APIServerNames are the DNS names and IP addresses at which clients reach the API
	// server: the control-plane endpoint's host and cluster.apiServer.certSANs.
	APIServerNames []string
	// Self is the name of the node that runs the approver. It may have a serving
	// certificate for an API server name or address its Node object lists (a cluster
	// whose endpoint is this node's address): it holds the cluster's CA key anyway.
	Self string
}

// Pending reports whether r is for the approver to decide: a kubelet serving request, not
// yet approved, denied or failed, made by a node's user. Anything else is left alone.
func Pending(r Request) bool {
	return r.SignerName == SignerKubeletServing && len(r.Conditions) == 0 &&
		strings.HasPrefix(r.Username, nodeUserPrefix)
}

// errNotYet marks a refusal that may turn into an approval once the Node object appears
// or lists the address: a kubelet asks for its serving certificate as it registers.
var errNotYet = errors.New("not yet")

// Decide says whether to approve r, a kubelet serving certificate request, and why (or why
// not). nodes are the cluster's Node objects.
func Decide(r Request, nodes []Node, cluster ClusterInfo) (approve bool, reason string) {
	approve, _, reason = verdict(r, nodes, cluster)
	return approve, reason
}

// verdict is Decide, and also says whether a request that is not approved may be
// approved later (wait): the node does not exist yet or does not list the address yet.
// Such a request is left pending rather than denied; Kubernetes removes pending requests
// after a day.
func verdict(r Request, nodes []Node, cluster ClusterInfo) (approve, wait bool, reason string) {
	if err := check(r, nodes, cluster); err != nil {
		return false, errors.Is(err, errNotYet), err.Error()
	}
	return true, false, "names and addresses are the node's own"
}

func check(r Request, nodes []Node, cluster ClusterInfo) error {
	if r.SignerName != SignerKubeletServing {
		return fmt.Errorf("signer is %q, not %s", r.SignerName, SignerKubeletServing)
	}
	name, ok := strings.CutPrefix(r.Username, nodeUserPrefix)
	if !ok || name == "" {
		return fmt.Errorf("requester %q is not a node", r.Username)
	}
	if !slices.Contains(r.Groups, nodesGroup) {
		return fmt.Errorf("requester %q is not in group %s", r.Username, nodesGroup)
	}
	if err := checkUsages(r.Usages); err != nil {
		return err
	}
	csr, err := parseCSR(r.PEM)
	if err != nil {
		return err
	}
	if csr.Subject.CommonName != r.Username {
		return fmt.Errorf("subject common name %q is not the requester %q", csr.Subject.CommonName, r.Username)
	}
	if !slices.Equal(csr.Subject.Organization, []string{nodesGroup}) {
		return fmt.Errorf("subject organization %q is not [%s]", csr.Subject.Organization, nodesGroup)
	}
	if len(csr.EmailAddresses) > 0 {
		return fmt.Errorf("request has email addresses %q", csr.EmailAddresses)
	}
	if len(csr.URIs) > 0 {
		return fmt.Errorf("request has URIs")
	}
	if len(csr.DNSNames) == 0 && len(csr.IPAddresses) == 0 {
		return fmt.Errorf("request names no DNS name and no IP address")
	}
	i := slices.IndexFunc(nodes, func(n Node) bool { return n.Name == name })
	if i < 0 {
		return fmt.Errorf("node %q does not exist (%w)", name, errNotYet)
	}
	node, others := nodes[i], slices.Delete(slices.Clone(nodes), i, i+1)
	for _, d := range csr.DNSNames {
		if err := checkDNSName(d, node, others, cluster); err != nil {
			return err
		}
	}
	for _, ip := range csr.IPAddresses {
		a, ok := netip.AddrFromSlice(ip)
		if !ok {
			return fmt.Errorf("request has a malformed IP address")
		}
		if err := checkIP(a.Unmap(), node, others, cluster); err != nil {
			return err
		}
	}
	return nil
}

func checkUsages(usages []string) error {
	for _, u := range usages {
		if !slices.Contains(allowedUsages, u) {
			return fmt.Errorf("usage %q is not a kubelet serving certificate usage %q", u, allowedUsages)
		}
	}
	if !slices.Contains(usages, usageServer) {
		return fmt.Errorf("usages %q lack %q", usages, usageServer)
	}
	return nil
}

func parseCSR(data []byte) (*x509.CertificateRequest, error) {
	block, rest := pem.Decode(data)
	if block == nil || block.Type != "CERTIFICATE REQUEST" {
		return nil, fmt.Errorf("request is not a PEM CERTIFICATE REQUEST")
	}
	if len(strings.TrimSpace(string(rest))) > 0 {
		return nil, fmt.Errorf("request has data after its CERTIFICATE REQUEST block")
	}
	csr, err := x509.ParseCertificateRequest(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("parse request: %w", err)
	}
	if err := csr.CheckSignature(); err != nil {
		return nil, fmt.Errorf("request signature: %w", err)
	}
	return csr, nil
}

// checkDNSName accepts the node's name, and its Hostname address when that is the same
// host's short or long name, unless the name is one of the cluster's, the API server's or
// another node's.
func checkDNSName(d string, node Node, others []Node, cluster ClusterInfo) error {
	d = strings.ToLower(d)
	own := d == strings.ToLower(node.Name)
	if !own {
		for _, a := range node.Addresses {
			h := strings.ToLower(a.Address)
			if a.Type == AddressHostname && h == d && validDNSName(h) && sameHost(strings.ToLower(node.Name), h) {
				own = true
			}
		}
	}
	if !own {
		return fmt.Errorf("DNS name %q is not node %q's name or host name", d, node.Name)
	}
	if reserved := reservedDNSName(d, cluster.DNSDomain); reserved != "" {
		return fmt.Errorf("DNS name %q is %s", d, reserved)
	}
	if node.Name != cluster.Self {
		for _, n := range cluster.APIServerNames {
			if strings.EqualFold(n, d) {
				return fmt.Errorf("DNS name %q is the API server's", d)
			}
		}
	}
	for _, o := range others {
		if strings.EqualFold(o.Name, d) {
			return fmt.Errorf("DNS name %q is node %q's name", d, o.Name)
		}
		for _, a := range o.Addresses {
			if strings.EqualFold(a.Address, d) {
				return fmt.Errorf("DNS name %q is an address of node %q", d, o.Name)
			}
		}
	}
	return nil
}

// sameHost reports whether two DNS names are the same host's short and long name (node-1
// and node-1.example.org), or equal.
func sameHost(a, b string) bool {
	first := func(s string) string {
		l, _, _ := strings.Cut(s, ".")
		return l
	}
	return a == b || a == first(b) || first(a) == b
}

// validDNSName reports whether s is a lower-case DNS name: labels of letters, digits and
// '-', no wildcard, no trailing dot.
func validDNSName(s string) bool {
	if s == "" || len(s) > 253 {
		return false
	}
	for _, l := range strings.Split(s, ".") {
		if l == "" || len(l) > 63 || l[0] == '-' || l[len(l)-1] == '-' {
			return false
		}
		for _, c := range l {
			if (c < 'a' || c > 'z') && (c < '0' || c > '9') && c != '-' {
				return false
			}
		}
	}
	return true
}

// reservedDNSName says what cluster name d is ("" when none): the API server's built-in
// names, Service and pod names, localhost.
func reservedDNSName(d, domain string) string {
	switch {
	case !validDNSName(d):
		return "not a plain DNS name"
	case d == "localhost" || strings.HasSuffix(d, ".localhost"):
		return "a loopback name"
	case d == "kubernetes" || d == "kubernetes.default":
		return "the API server's Service name"
	case d == "svc" || strings.HasSuffix(d, ".svc"):
		return "a Service name"
	case domain != "" && (d == domain || strings.HasSuffix(d, "."+domain)):
		return "in the cluster's DNS domain"
	}
	return ""
}

// checkIP accepts an InternalIP or ExternalIP address of the node that no other node lists
// and that is no special, cluster or API server address.
func checkIP(a netip.Addr, node Node, others []Node, cluster ClusterInfo) error {
	if special := specialAddr(a); special != "" {
		return fmt.Errorf("IP address %s is %s", a, special)
	}
	for _, p := range cluster.ServiceCIDRs {
		if p.Contains(a) {
			return fmt.Errorf("IP address %s is in the Service network %s", a, p)
		}
	}
	for _, p := range cluster.PodCIDRs {
		if p.Contains(a) {
			return fmt.Errorf("IP address %s is in the pod network %s", a, p)
		}
	}
	if node.Name != cluster.Self {
		for _, n := range cluster.APIServerNames {
			if b, err := netip.ParseAddr(n); err == nil && b.Unmap() == a {
				return fmt.Errorf("IP address %s is the API server's", a)
			}
		}
	}
	for _, o := range others {
		if slices.ContainsFunc(o.Addresses, func(x Address) bool { return sameAddr(x.Address, a) }) {
			return fmt.Errorf("IP address %s is an address of node %q", a, o.Name)
		}
	}
	if !slices.ContainsFunc(node.Addresses, func(x Address) bool {
		return (x.Type == AddressInternalIP || x.Type == AddressExternalIP) && sameAddr(x.Address, a)
	}) {
		return fmt.Errorf("IP address %s is not an address of node %q (%w)", a, node.Name, errNotYet)
	}
	return nil
}

// sameAddr reports whether the text s is the address a.
func sameAddr(s string, a netip.Addr) bool {
	b, err := netip.ParseAddr(s)
	return err == nil && b.WithZone("").Unmap() == a
}

// specialAddr says which special range a is in ("" when none).
func specialAddr(a netip.Addr) string {
	switch {
	case a.IsUnspecified():
		return "unspecified"
	case a.IsLoopback():
		return "a loopback address"
	case a.IsMulticast():
		return "a multicast address"
	case a.IsLinkLocalUnicast():
		return "a link-local address"
	case !a.IsGlobalUnicast():
		return "not a unicast address"
	}
	return ""
}
