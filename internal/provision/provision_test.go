package provision

import (
	"errors"
	"slices"
	"strings"
	"testing"
)

func TestNewPlan(t *testing.T) {
	// One control plane: no load balancer, the nodes follow the gateway.
	p, err := NewPlan("demo", 1, 2, "")
	if err != nil {
		t.Fatal(err)
	}
	if p.CIDR != DefaultCIDR || p.Gateway != "10.5.0.1" {
		t.Errorf("plan %s gateway %s, want %s and 10.5.0.1", p.CIDR, p.Gateway, DefaultCIDR)
	}
	want := []NodeSpec{
		{"demo-controlplane-1", RoleControlPlane, "10.5.0.2"},
		{"demo-worker-1", RoleWorker, "10.5.0.3"},
		{"demo-worker-2", RoleWorker, "10.5.0.4"},
	}
	if !slices.Equal(p.Nodes, want) || p.LoadBalancer != nil {
		t.Errorf("nodes %v load balancer %v, want %v and none", p.Nodes, p.LoadBalancer, want)
	}
	p, err = NewPlan("x", 1, 0, "10.250.7.0/29")
	if err != nil || len(p.Nodes) != 1 || p.Nodes[0].IP != "10.250.7.2" || p.LoadBalancer != nil {
		t.Errorf("small plan %+v, %v", p, err)
	}
}

func TestNewPlanLoadBalancer(t *testing.T) {
	// More than one control plane: the load balancer takes the address after the gateway.
	p, err := NewPlan("demo", 2, 2, "")
	if err != nil {
		t.Fatal(err)
	}
	if lb := p.LoadBalancer; lb == nil || *lb != (NodeSpec{"demo-lb", RoleLoadBalancer, "10.5.0.2"}) {
		t.Errorf("load balancer %+v, want demo-lb at 10.5.0.2", lb)
	}
	want := []NodeSpec{
		{"demo-controlplane-1", RoleControlPlane, "10.5.0.3"},
		{"demo-controlplane-2", RoleControlPlane, "10.5.0.4"},
		{"demo-worker-1", RoleWorker, "10.5.0.5"},
		{"demo-worker-2", RoleWorker, "10.5.0.6"},
	}
	if !slices.Equal(p.Nodes, want) {
		t.Errorf("nodes %v, want %v", p.Nodes, want)
	}
	// A /29 holds the gateway, the load balancer and four nodes.
	p, err = NewPlan("x", 3, 1, "10.250.7.0/29")
	if err != nil || p.LoadBalancer == nil || p.LoadBalancer.IP != "10.250.7.2" || p.Nodes[3].IP != "10.250.7.6" {
		t.Errorf("full /29 plan %+v, %v", p, err)
	}
}

func TestNewPlanErrors(t *testing.T) {
	for _, tc := range []struct {
		name    string
		cps, ws int
		cidr    string
		want    string
	}{
		{"", 1, 1, "", "name is empty"},
		{"Demo", 1, 1, "", "not valid"},
		{"-demo", 1, 1, "", "not valid"},
		{strings.Repeat("a", 41), 1, 1, "", "not valid"},
		{"demo", 0, 1, "", "at least one control-plane"},
		{"demo", 1, -1, "", "cannot be negative"},
		{"demo", 1, 1, "10.5.0.0", "not an IPv4 CIDR"},
		{"demo", 1, 1, "fd00::/64", "not IPv4"},
		{"demo", 1, 1, "10.5.0.1/24", "did you mean 10.5.0.0/24"},
		{"demo", 1, 5, "10.5.0.0/29", "room for 5 nodes, not 6"},
		{"demo", 3, 2, "10.5.0.0/29", "room for 4 nodes and the load balancer, not 5"},
		{"demo", 1, 0, "10.5.0.0/31", "room for 0 nodes"},
	} {
		_, err := NewPlan(tc.name, tc.cps, tc.ws, tc.cidr)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("NewPlan(%q, %d, %d, %q) = %v, want an error with %q", tc.name, tc.cps, tc.ws, tc.cidr, err, tc.want)
		}
	}
}

func TestFirstControlPlaneAndSort(t *testing.T) {
	nodes := []Node{
		{Name: "d-worker-1", Role: RoleWorker, IP: "10.5.0.4"},
		{Name: "d-controlplane-2", Role: RoleControlPlane, IP: "10.5.0.10"},
		{Name: "d-controlplane-1", Role: RoleControlPlane, IP: "10.5.0.2"},
		{Name: "d-lost", Role: RoleWorker},
	}
	c := &Cluster{Nodes: slices.Clone(nodes)}
	if f := c.FirstControlPlane(); f == nil || f.Name != "d-controlplane-1" {
		t.Errorf("first control plane %+v", f)
	}
	slices.SortFunc(c.Nodes, SortKey)
	var got []string
	for _, n := range c.Nodes {
		got = append(got, n.Name)
	}
	if want := []string{"d-controlplane-1", "d-worker-1", "d-controlplane-2", "d-lost"}; !slices.Equal(got, want) {
		t.Errorf("sorted %v, want %v", got, want)
	}
	var cps []string
	for _, n := range (&Cluster{Nodes: nodes}).ControlPlanes() {
		cps = append(cps, n.Name)
	}
	if want := []string{"d-controlplane-1", "d-controlplane-2"}; !slices.Equal(cps, want) {
		t.Errorf("control planes %v, want %v", cps, want)
	}
	if (&Cluster{Nodes: nodes[:1]}).FirstControlPlane() != nil {
		t.Error("a cluster of workers has a first control plane")
	}
}

func TestKubeHostPort(t *testing.T) {
	c := &Cluster{Nodes: []Node{
		{Name: "d-controlplane-2", Role: RoleControlPlane, IP: "10.5.0.4", APIPort: 41003},
		{Name: "d-controlplane-1", Role: RoleControlPlane, IP: "10.5.0.3", APIPort: 41001, KubePort: 41002},
	}}
	if got := c.KubeHostPort(); got != 41002 {
		t.Errorf("without a load balancer: %d, want the first control plane's 41002", got)
	}
	c.LoadBalancer = &Node{Name: "d-lb", Role: RoleLoadBalancer, IP: "10.5.0.2", KubePort: 41010}
	if got := c.KubeHostPort(); got != 41010 {
		t.Errorf("with a load balancer: %d, want its 41010", got)
	}
	if got := (&Cluster{}).KubeHostPort(); got != 0 {
		t.Errorf("empty cluster: %d", got)
	}
}

func TestEndpoints(t *testing.T) {
	c := &Cluster{Nodes: []Node{
		{Name: "d-controlplane-1", Role: RoleControlPlane, IP: "10.5.0.2", APIPort: 41001, KubePort: 41002},
		{Name: "d-worker-1", Role: RoleWorker, IP: "10.5.0.3"},
	}}
	if got := c.Nodes[0].APIEndpoint(); got != "127.0.0.1:41001" {
		t.Errorf("published node API: %q", got)
	}
	if got := c.KubeEndpoint(); got != "127.0.0.1:41002" {
		t.Errorf("published Kubernetes API: %q", got)
	}
	if got := c.Nodes[1].APIEndpoint(); got != "" {
		t.Errorf("a node that publishes nothing: %q", got)
	}
	// A node reached on its own address (QEMU).
	c.Nodes[0].Host, c.Nodes[0].APIPort, c.Nodes[0].KubePort = "10.5.0.2", 50000, 6443
	if got, kube := c.Nodes[0].APIEndpoint(), c.KubeEndpoint(); got != "10.5.0.2:50000" || kube != "10.5.0.2:6443" {
		t.Errorf("a node on its own address: %q, %q", got, kube)
	}
	c.LoadBalancer = &Node{Name: "d-lb", Role: RoleLoadBalancer, KubePort: 41010}
	if got := c.KubeEndpoint(); got != "127.0.0.1:41010" {
		t.Errorf("through the load balancer: %q", got)
	}
	if got := (&Cluster{}).KubeEndpoint(); got != "" {
		t.Errorf("empty cluster: %q", got)
	}
}

func TestOverlapsAndNotFound(t *testing.T) {
	for _, tc := range []struct {
		a, b string
		want bool
	}{
		{"10.5.0.0/24", "10.5.0.0/16", true},
		{"10.5.0.0/24", "10.5.1.0/24", false},
		{"172.17.0.0/16", "10.5.0.0/24", false},
		{"", "10.5.0.0/24", false},
	} {
		if got := Overlaps(tc.a, tc.b); got != tc.want {
			t.Errorf("Overlaps(%q, %q) = %v", tc.a, tc.b, got)
		}
	}
	err := NotFound("no cluster named %q", "x")
	if err.Error() != `no cluster named "x"` || !errors.Is(err, ErrNotFound) {
		t.Errorf("NotFound: %v", err)
	}
}
