// Package provisiontest holds test doubles for provision.Provisioner; used by tests only.
// Provisioner keeps clusters in memory and lays them out as the docker provisioner does;
// Node is a node API that answers the calls a cluster create makes, served over mTLS by
// ServeNode.
package provisiontest

import (
	"context"
	"fmt"
	"io"
	"slices"
	"sync"

	"github.com/plinthos/plinth/internal/provision"
	"github.com/plinthos/plinth/pkg/config"
)

// Provisioner is a provision.Provisioner that keeps clusters in memory. Set its exported
// fields before the calls and read them after (no call runs concurrently with a test's
// reads).
type Provisioner struct {
	mu sync.Mutex
	// Clusters are the clusters by name.
	Clusters map[string]*provision.Cluster
	// Requests are Create's requests, FailWith a failure of Create after the request is
	// recorded, and Configs the configs Create rendered, by node name.
	Requests []provision.Request
	FailWith error
	Configs  map[string][]byte
	// OnCreate, when set, sees (and may change) each cluster Create makes before it is kept.
	OnCreate func(req provision.Request, c *provision.Cluster)
	// Destroyed and LogsRead record the calls of Destroy and Logs.
	Destroyed []Call
	LogsRead  []Call
}

// Call is a call of Destroy or Logs: the cluster or node named, and whether the call came
// with a context that had ended already.
type Call struct {
	Name    string
	CtxDone bool
}

// New returns a Provisioner without clusters.
func New() *Provisioner {
	return &Provisioner{Clusters: map[string]*provision.Cluster{}, Configs: map[string][]byte{}}
}

// ConfigMode is docker, as for the docker provisioner.
func (f *Provisioner) ConfigMode() config.Mode { return config.ModeDocker }

// Preflight refuses a name that is taken.
func (f *Provisioner) Preflight(_ context.Context, req provision.Request) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, ok := f.Clusters[req.Name]; ok {
		return fmt.Errorf("a cluster named %q exists already: destroy it", req.Name)
	}
	return nil
}

// Create lays the cluster out as the docker provisioner does (container "c" + node name)
// and publishes ports as it does: the node API of every control plane (41001, then
// 41003...), the Kubernetes API on the only control plane (41002) or on the load balancer
// (41010).
func (f *Provisioner) Create(ctx context.Context, req provision.Request) (*provision.Cluster, error) {
	if err := f.Preflight(ctx, req); err != nil {
		return nil, err
	}
	plan, err := provision.NewPlan(req.Name, req.ControlPlanes, req.Workers, req.CIDR)
	if err != nil {
		return nil, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.Requests = append(f.Requests, req)
	if f.FailWith != nil {
		return nil, f.FailWith
	}
	c := &provision.Cluster{Name: req.Name, Network: "plinth-" + req.Name, CIDR: plan.CIDR}
	if lb := plan.LoadBalancer; lb != nil {
		c.LoadBalancer = &provision.Node{Name: lb.Name, Role: lb.Role, IP: lb.IP, State: "running", Container: "c" + lb.Name, KubePort: 41010}
	}
	for i, n := range plan.Nodes {
		data, err := req.Configs(n)
		if err != nil {
			return nil, err
		}
		f.Configs[n.Name] = data
		node := provision.Node{Name: n.Name, Role: n.Role, IP: n.IP, State: "running", Container: "c" + n.Name}
		switch {
		case i == 0:
			node.APIPort = 41001
			if plan.LoadBalancer == nil {
				node.KubePort = 41002
			}
		case n.Role == provision.RoleControlPlane:
			node.APIPort = 41002 + i
		}
		c.Nodes = append(c.Nodes, node)
	}
	if f.OnCreate != nil {
		f.OnCreate(req, c)
	}
	fmt.Fprintf(req.Progress, "fake: created %d nodes\n", len(c.Nodes))
	f.Clusters[req.Name] = c
	return c, nil
}

// Show returns the cluster name, or provision.NotFound.
func (f *Provisioner) Show(_ context.Context, name string) (*provision.Cluster, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	c, ok := f.Clusters[name]
	if !ok {
		return nil, provision.NotFound("no cluster named %q", name)
	}
	return c, nil
}

// Destroy forgets the cluster name; a missing one is no error.
func (f *Provisioner) Destroy(ctx context.Context, name string, progress io.Writer) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.Destroyed = append(f.Destroyed, Call{name, ctx.Err() != nil})
	if _, ok := f.Clusters[name]; !ok {
		fmt.Fprintf(progress, "nothing of cluster %q\n", name)
		return nil
	}
	delete(f.Clusters, name)
	fmt.Fprintf(progress, "fake: removed %s\n", name)
	return nil
}

// List returns the clusters' names, sorted.
func (f *Provisioner) List(context.Context) ([]string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var names []string
	for n := range f.Clusters {
		names = append(names, n)
	}
	slices.Sort(names)
	return names, nil
}

// Logs returns one line naming node, or an error for the node named "broken".
func (f *Provisioner) Logs(ctx context.Context, node string, _ int) (string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.LogsRead = append(f.LogsRead, Call{node, ctx.Err() != nil})
	if node == "broken" {
		return "", fmt.Errorf("no such container")
	}
	return "fake log line of " + node + "\n", nil
}
