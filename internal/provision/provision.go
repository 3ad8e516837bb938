// Package provision describes local clusters independently of what runs their nodes: the
// request, the resulting cluster and its nodes, the plan of node names and addresses, and
// the interface every provisioner (Docker, QEMU) implements.
package provision

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"regexp"
	"slices"
	"strconv"

	"github.com/plinthos/plinth/pkg/config"
)

// The node roles, and the role of a cluster's load balancer.
const (
	RoleControlPlane = "controlplane"
	RoleWorker       = "worker"
	RoleLoadBalancer = "loadbalancer"
)

// DefaultCIDR is the network of a local cluster when none is given.
const DefaultCIDR = "10.5.0.0/24"

// DefaultName is the cluster name when none is given.
const DefaultName = "plinth"

// ErrNotFound is returned (wrapped) by Show when no cluster has the name.
var ErrNotFound = errors.New("cluster not found")

// notFound is an ErrNotFound with its own message.
type notFound struct{ msg string }

func (e notFound) Error() string { return e.msg }
func (e notFound) Unwrap() error { return ErrNotFound }

// NotFound returns an error with the message that wraps ErrNotFound.
func NotFound(format string, args ...any) error {
	return notFound{msg: fmt.Sprintf(format, args...)}
}

// Overlaps reports whether two CIDRs share addresses; a CIDR that does not parse overlaps
// nothing.
func Overlaps(a, b string) bool {
	pa, errA := netip.ParsePrefix(a)
	pb, errB := netip.ParsePrefix(b)
	return errA == nil && errB == nil && pa.Overlaps(pb)
}

// NodeSpec is one node to create: its name (also its host name), role and address.
type NodeSpec struct {
	Name string
	Role string
	IP   string
}

// Request asks for a new cluster.
type Request struct {
	// Name names the cluster; node names and the network derive from it.
	Name string
	// Image is the node image.
	Image string
	// ControlPlanes and Workers are the node counts (at least one control plane).
	ControlPlanes, Workers int
	// CPUs and MemoryMB limit each node; zero means no limit.
	CPUs     float64
	MemoryMB int
	// CIDR is the cluster network; empty means DefaultCIDR. Its first address is the
	// gateway, the load balancer (more than one control plane only) and the nodes follow:
	// control planes first, then workers.
	CIDR string
	// Isolated gives the cluster a network with no route off the machine: packets its
	// nodes send to any address outside it die on the host (a Docker internal network;
	// QEMU clusters' networks always are). The host still reaches the nodes at their
	// addresses; nothing is published on 127.0.0.1.
	Isolated bool
	// Configs returns the machine configuration (YAML) of a node.
	Configs func(node NodeSpec) ([]byte, error)
	// Progress receives one line per step; nil discards them.
	Progress io.Writer
}

// Cluster is a cluster as it exists.
type Cluster struct {
	Name    string
	Network string
	CIDR    string
	Nodes   []Node
	// LoadBalancer is the Kubernetes API load balancer in front of the control planes, nil
	// when the cluster has none (one control plane). Its Role is RoleLoadBalancer.
	LoadBalancer *Node
	// NoKubernetes is set when the nodes' image carries no Kubernetes (the OS image of
	// the QEMU provisioner, until it gets its Kubernetes profile): the cluster is up once
	// every node's API answers, and there is nothing to bootstrap.
	NoKubernetes bool
	// Isolated is set when the cluster's network has no route off the machine.
	Isolated bool
}

// Node is one node of a cluster as it exists.
type Node struct {
	Name string
	Role string // RoleControlPlane or RoleWorker
	IP   string
	// State is the state of what runs the node: running, exited, restarting, created...
	State string
	// Container is the id of the node's container (or VM) for the provisioner's own tools.
	Container string
	// APIPort and KubePort are the host ports on 127.0.0.1 published for the node API
	// (50000) and the Kubernetes API (6443), zero when not published. Every control plane
	// publishes its node API; the Kubernetes API is published by the load balancer, or by
	// the control plane when there is only one.
	APIPort, KubePort int
	// Host, when set, is where the host reaches APIPort and KubePort instead of 127.0.0.1:
	// a QEMU node is reached on its own address, on the cluster network the host is part
	// of, at the node's own ports.
	Host string
}

// endpoint is HOST:port of a port the host reaches the node at, "" for port 0.
func (n Node) endpoint(port int) string {
	if port == 0 {
		return ""
	}
	host := n.Host
	if host == "" {
		host = "127.0.0.1"
	}
	return net.JoinHostPort(host, strconv.Itoa(port))
}

// APIEndpoint is where the host reaches the node API (HOST:PORT), "" when nowhere.
func (n Node) APIEndpoint() string { return n.endpoint(n.APIPort) }

// KubeEndpoint is where the host reaches the Kubernetes API (HOST:PORT), "" when nowhere.
func (n Node) KubeEndpoint() string { return n.endpoint(n.KubePort) }

// FirstControlPlane returns the control-plane node with the lowest address, or nil.
func (c *Cluster) FirstControlPlane() *Node {
	var first *Node
	for i := range c.Nodes {
		n := &c.Nodes[i]
		if n.Role != RoleControlPlane {
			continue
		}
		if first == nil || lessIP(n.IP, first.IP) {
			first = n
		}
	}
	return first
}

// ControlPlanes returns the control-plane nodes, lowest address first.
func (c *Cluster) ControlPlanes() []Node {
	var cps []Node
	for _, n := range c.Nodes {
		if n.Role == RoleControlPlane {
			cps = append(cps, n)
		}
	}
	slices.SortStableFunc(cps, func(a, b Node) int {
		switch {
		case lessIP(a.IP, b.IP):
			return -1
		case lessIP(b.IP, a.IP):
			return 1
		}
		return 0
	})
	return cps
}

// KubeHostPort is the host port on 127.0.0.1 that reaches the Kubernetes API: the load
// balancer's, or the first control plane's when there is no load balancer; 0 when none is
// published.
func (c *Cluster) KubeHostPort() int {
	if c.LoadBalancer != nil {
		return c.LoadBalancer.KubePort
	}
	if first := c.FirstControlPlane(); first != nil {
		return first.KubePort
	}
	return 0
}

// KubeEndpoint is where the host reaches the Kubernetes API (HOST:PORT): through the load
// balancer, or the first control plane when there is no load balancer; "" when nowhere.
func (c *Cluster) KubeEndpoint() string {
	if c.LoadBalancer != nil {
		return c.LoadBalancer.KubeEndpoint()
	}
	if first := c.FirstControlPlane(); first != nil {
		return first.KubeEndpoint()
	}
	return ""
}

// IPs lists the nodes' addresses in the order of Nodes.
func (c *Cluster) IPs() []string {
	ips := make([]string, 0, len(c.Nodes))
	for _, n := range c.Nodes {
		ips = append(ips, n.IP)
	}
	return ips
}

func lessIP(a, b string) bool {
	pa, errA := netip.ParseAddr(a)
	pb, errB := netip.ParseAddr(b)
	if errA != nil || errB != nil {
		return a < b
	}
	return pa.Less(pb)
}

// SortKey orders nodes by address (creation order), unknown addresses last, then by name.
func SortKey(a, b Node) int {
	pa, errA := netip.ParseAddr(a.IP)
	pb, errB := netip.ParseAddr(b.IP)
	switch {
	case errA == nil && errB == nil:
		if c := pa.Compare(pb); c != 0 {
			return c
		}
	case errA == nil:
		return -1
	case errB == nil:
		return 1
	}
	switch {
	case a.Name < b.Name:
		return -1
	case a.Name > b.Name:
		return 1
	}
	return 0
}

// Provisioner creates, shows and destroys local clusters: it is all a local cluster needs
// from what runs its nodes (internal/localcluster does the rest), so a new kind of node
// (QEMU) is one more implementation of it.
type Provisioner interface {
	// ConfigMode is the platform the nodes' machine configurations are validated for.
	ConfigMode() config.Mode
	// Preflight checks, without changing anything, that Create can succeed: the engine is
	// reachable, the image exists, and nothing of a cluster with that name exists.
	Preflight(ctx context.Context, req Request) error
	// Create makes the cluster's network and nodes and starts them. On failure it removes
	// what it made.
	Create(ctx context.Context, req Request) (*Cluster, error)
	// Show returns the cluster named name, or an error wrapping ErrNotFound.
	Show(ctx context.Context, name string) (*Cluster, error)
	// Destroy removes everything of the cluster; nothing left is not an error.
	Destroy(ctx context.Context, name string, progress io.Writer) error
	// List returns the names of the clusters present, sorted.
	List(ctx context.Context) ([]string, error)
	// Logs returns the last lines of a node's console output.
	Logs(ctx context.Context, node string, lines int) (string, error)
}

// Plan is the layout of a new cluster's network and nodes.
type Plan struct {
	CIDR    string // the network, normalised
	Gateway string
	// LoadBalancer is the Kubernetes API load balancer (Role RoleLoadBalancer) of a cluster
	// with more than one control plane; nil otherwise.
	LoadBalancer *NodeSpec
	Nodes        []NodeSpec
}

var nameRE = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]*[a-z0-9])?$`)

// MaxNameLength keeps node names (NAME-controlplane-NN) within a 63-byte host name.
const MaxNameLength = 40

// ValidateName checks a cluster name: lower-case letters, digits and dashes, not starting
// or ending with a dash, at most MaxNameLength bytes.
func ValidateName(name string) error {
	if name == "" {
		return errors.New("the cluster name is empty: pass --name, such as --name demo")
	}
	if len(name) > MaxNameLength || !nameRE.MatchString(name) {
		return fmt.Errorf("cluster name %q is not valid: use up to %d lower-case letters, digits and dashes, starting and ending with a letter or digit", name, MaxNameLength)
	}
	return nil
}

// LoadBalancerName is the name of a cluster's load balancer.
func LoadBalancerName(cluster string) string { return cluster + "-lb" }

// NodeName is the name of a cluster's index-th (1-based) node of a role.
func NodeName(cluster, role string, index int) string {
	return cluster + "-" + role + "-" + strconv.Itoa(index)
}

// NewPlan lays out a cluster: the gateway takes the network's first address; with more
// than one control plane the load balancer (NAME-lb) takes the next; then come the control
// planes (NAME-controlplane-1...), then the workers (NAME-worker-1...).
func NewPlan(name string, controlPlanes, workers int, cidr string) (*Plan, error) {
	if err := ValidateName(name); err != nil {
		return nil, err
	}
	if controlPlanes < 1 {
		return nil, fmt.Errorf("a cluster needs at least one control-plane node (--controlplanes is %d)", controlPlanes)
	}
	if workers < 0 {
		return nil, fmt.Errorf("the number of workers cannot be negative (--workers is %d)", workers)
	}
	if cidr == "" {
		cidr = DefaultCIDR
	}
	prefix, err := netip.ParsePrefix(cidr)
	if err != nil {
		return nil, fmt.Errorf("network %q is not an IPv4 CIDR such as %s", cidr, DefaultCIDR)
	}
	if !prefix.Addr().Is4() {
		return nil, fmt.Errorf("network %q is not IPv4: local clusters use an IPv4 network such as %s", cidr, DefaultCIDR)
	}
	if masked := prefix.Masked(); masked != prefix {
		return nil, fmt.Errorf("network %q has host bits set; did you mean %s?", cidr, masked)
	}
	// Usable: every address but the network, the broadcast and the gateway.
	hostBits := 32 - prefix.Bits()
	usable := (1 << hostBits) - 3
	if hostBits >= 31 {
		usable = 0
	}
	total := controlPlanes + workers
	withLB := controlPlanes > 1
	if withLB {
		usable-- // the load balancer's address
	}
	if total > usable {
		room := fmt.Sprintf("%d nodes", max(usable, 0))
		if withLB {
			room += " and the load balancer"
		}
		return nil, fmt.Errorf("network %s has room for %s, not %d: pick a larger --cidr", prefix, room, total)
	}
	gw := prefix.Addr().Next()
	p := &Plan{CIDR: prefix.String(), Gateway: gw.String()}
	ip := gw
	if withLB {
		ip = ip.Next()
		p.LoadBalancer = &NodeSpec{Name: LoadBalancerName(name), Role: RoleLoadBalancer, IP: ip.String()}
	}
	add := func(role string, n int) {
		for i := 1; i <= n; i++ {
			ip = ip.Next()
			p.Nodes = append(p.Nodes, NodeSpec{Name: NodeName(name, role, i), Role: role, IP: ip.String()})
		}
	}
	add(RoleControlPlane, controlPlanes)
	add(RoleWorker, workers)
	return p, nil
}
