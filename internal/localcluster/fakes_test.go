package localcluster

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/status"

	"github.com/plinthos/plinth/internal/provision"
	"github.com/plinthos/plinth/pkg/api/machine"
	"github.com/plinthos/plinth/pkg/clientconfig"
	"github.com/plinthos/plinth/pkg/config"
	"github.com/plinthos/plinth/pkg/pki"
	"github.com/plinthos/plinth/pkg/role"
	"github.com/plinthos/plinth/pkg/secrets"
)

// fakeProvisioner keeps clusters in memory.
type fakeProvisioner struct {
	mu       sync.Mutex
	clusters map[string]*provision.Cluster
	requests []provision.Request
	configs  map[string][]byte // node name -> config
	failWith error
	// onCreate, when set, sees (and may change) each cluster Create makes before it is kept.
	onCreate func(req provision.Request, c *provision.Cluster)
	// destroyed and logsRead record the calls of Destroy and Logs; ctxDone records whether
	// a call came with a context that had ended already.
	destroyed []fakeCall
	logsRead  []fakeCall
}

type fakeCall struct {
	name    string
	ctxDone bool
}

func newFakeProvisioner() *fakeProvisioner {
	return &fakeProvisioner{clusters: map[string]*provision.Cluster{}, configs: map[string][]byte{}}
}

func (f *fakeProvisioner) ConfigMode() config.Mode { return config.ModeDocker }

func (f *fakeProvisioner) Preflight(_ context.Context, req provision.Request) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, ok := f.clusters[req.Name]; ok {
		return fmt.Errorf("a cluster named %q exists already: destroy it", req.Name)
	}
	return nil
}

// Create lays the cluster out as the docker provisioner does and publishes ports as it
// does: the node API of every control plane (41001, then 41003...), the Kubernetes API on
// the only control plane (41002) or on the load balancer (41010).
func (f *fakeProvisioner) Create(ctx context.Context, req provision.Request) (*provision.Cluster, error) {
	if err := f.Preflight(ctx, req); err != nil {
		return nil, err
	}
	plan, err := provision.NewPlan(req.Name, req.ControlPlanes, req.Workers, req.CIDR)
	if err != nil {
		return nil, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.requests = append(f.requests, req)
	if f.failWith != nil {
		return nil, f.failWith
	}
	c := &provision.Cluster{Name: req.Name, Network: "plinth-" + req.Name, CIDR: plan.CIDR}
	if lb := plan.LoadBalancer; lb != nil {
		c.LoadBalancer = &provision.Node{Name: lb.Name, Role: lb.Role, IP: lb.IP, State: "running", KubePort: 41010}
	}
	for i, n := range plan.Nodes {
		data, err := req.Configs(n)
		if err != nil {
			return nil, err
		}
		f.configs[n.Name] = data
		node := provision.Node{Name: n.Name, Role: n.Role, IP: n.IP, State: "running"}
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
	if f.onCreate != nil {
		f.onCreate(req, c)
	}
	fmt.Fprintf(req.Progress, "fake: created %d nodes\n", len(c.Nodes))
	f.clusters[req.Name] = c
	return c, nil
}

func (f *fakeProvisioner) Show(_ context.Context, name string) (*provision.Cluster, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	c, ok := f.clusters[name]
	if !ok {
		return nil, provision.NotFound("no cluster named %q", name)
	}
	return c, nil
}

func (f *fakeProvisioner) Destroy(ctx context.Context, name string, progress io.Writer) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.destroyed = append(f.destroyed, fakeCall{name, ctx.Err() != nil})
	if _, ok := f.clusters[name]; !ok {
		fmt.Fprintf(progress, "nothing of cluster %q\n", name)
		return nil
	}
	delete(f.clusters, name)
	fmt.Fprintf(progress, "fake: removed %s\n", name)
	return nil
}

func (f *fakeProvisioner) List(context.Context) ([]string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var names []string
	for n := range f.clusters {
		names = append(names, n)
	}
	slices.Sort(names)
	return names, nil
}

func (f *fakeProvisioner) Logs(ctx context.Context, node string, _ int) (string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.logsRead = append(f.logsRead, fakeCall{node, ctx.Err() != nil})
	if node == "broken" {
		return "", fmt.Errorf("no such container")
	}
	return "fake log line of " + node + "\n", nil
}

// fakeNode is a node API that answers Version, Bootstrap and Kubeconfig over mTLS.
type fakeNode struct {
	machine.UnimplementedMachineServiceServer
	mu           sync.Mutex
	bootstraps   int
	unready      int // Bootstrap answers Unavailable this many times first
	already      bool
	bootstrapErr error // Bootstrap's answer after the unready ones, when set
}

func (n *fakeNode) Version(context.Context, *machine.VersionRequest) (*machine.VersionResponse, error) {
	return &machine.VersionResponse{Hostname: "plinth-controlplane-1", Tag: "v9"}, nil
}

func (n *fakeNode) Bootstrap(context.Context, *machine.BootstrapRequest) (*machine.BootstrapResponse, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.bootstraps++
	if n.unready > 0 {
		n.unready--
		return nil, status.Error(codes.Unavailable, "not yet")
	}
	if n.bootstrapErr != nil {
		return nil, n.bootstrapErr
	}
	if n.already {
		return nil, status.Error(codes.AlreadyExists, "bootstrapped before")
	}
	return &machine.BootstrapResponse{Message: "etcd is starting"}, nil
}

func (n *fakeNode) Kubeconfig(context.Context, *machine.KubeconfigRequest) (*machine.KubeconfigResponse, error) {
	return &machine.KubeconfigResponse{Kubeconfig: fakeKubeconfig("plinth", "https://10.5.0.2:6443")}, nil
}

// fakeKubeconfig is an admin kubeconfig as a control plane hands out, for cluster.
func fakeKubeconfig(cluster, server string) []byte {
	return []byte(`apiVersion: v1
kind: Config
clusters:
- name: ` + cluster + `
  cluster:
    server: ` + server + `
    certificate-authority-data: Q0E=
users:
- name: admin@` + cluster + `
  user:
    client-certificate-data: Q1JU
    client-key-data: S0VZ
contexts:
- name: admin@` + cluster + `
  context:
    cluster: ` + cluster + `
    user: admin@` + cluster + `
current-context: admin@` + cluster + `
`)
}

// serveFakeNode serves n on addr after delay, with a certificate for 127.0.0.1 from the
// node API CA (caCrt, caKey), until the test ends. Without delay, addr listens on return.
func serveFakeNode(t *testing.T, caCrt, caKey []byte, addr string, delay time.Duration, n *fakeNode) {
	t.Helper()
	ca, err := pki.LoadCA(caCrt, caKey)
	if err != nil {
		t.Fatal(err)
	}
	kp, err := pki.Issue(ca, pki.CertOptions{CommonName: "node", IPAddresses: []net.IP{net.ParseIP("127.0.0.1")},
		Usage: pki.UsageServer, Validity: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	cert, err := tls.X509KeyPair(kp.CertPEM, kp.KeyPEM)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(caCrt)
	srv := grpc.NewServer(grpc.Creds(credentials.NewTLS(&tls.Config{
		MinVersion: tls.VersionTLS13, Certificates: []tls.Certificate{cert}, ClientCAs: pool, ClientAuth: tls.RequireAndVerifyClientCert})))
	machine.RegisterMachineServiceServer(srv, n)
	var l net.Listener
	if delay == 0 {
		if l, err = net.Listen("tcp", addr); err != nil {
			t.Fatal(err)
		}
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		if l == nil {
			select {
			case <-time.After(delay):
			case <-t.Context().Done():
				return
			}
			var err error
			if l, err = net.Listen("tcp", addr); err != nil {
				t.Errorf("listen: %v", err)
				return
			}
		}
		_ = srv.Serve(l)
	}()
	t.Cleanup(func() { srv.Stop(); <-done })
}

// serveFirstControlPlane makes the fake provisioner publish the node API of a new
// cluster's first control plane on a port where n answers, with a certificate of the
// cluster's node API CA.
func serveFirstControlPlane(t *testing.T, f *fakeProvisioner, n *fakeNode) {
	t.Helper()
	f.onCreate = func(req provision.Request, c *provision.Cluster) {
		first := c.FirstControlPlane()
		data, err := req.Configs(provision.NodeSpec{Name: first.Name, Role: first.Role, IP: first.IP})
		if err != nil {
			t.Fatal(err)
		}
		doc, err := config.Load(data, "controlplane.yaml")
		if err != nil {
			t.Fatal(err)
		}
		addr := freeAddr(t)
		serveFakeNode(t, doc.Config.Machine.CA.Crt, doc.Config.Machine.CA.Key, addr, 0, n)
		_, port, _ := net.SplitHostPort(addr)
		if first.APIPort, err = strconv.Atoi(port); err != nil {
			t.Fatal(err)
		}
	}
}

func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

func fastWait(t *testing.T) {
	oldInterval, oldAttempt := waitInterval, attemptTimeout
	waitInterval, attemptTimeout = 50*time.Millisecond, time.Second
	t.Cleanup(func() { waitInterval, attemptTimeout = oldInterval, oldAttempt })
}

// clientContextFor is an admin client context of the bundle's node API CA.
func clientContextFor(t *testing.T, b *secrets.Bundle) *clientconfig.Context {
	t.Helper()
	ca, err := pki.LoadCA(b.CAs.OS.Crt, b.CAs.OS.Key)
	if err != nil {
		t.Fatal(err)
	}
	kp, err := pki.Issue(ca, pki.CertOptions{CommonName: "admin", Organization: []string{role.Admin}, Usage: pki.UsageClient, Validity: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	return &clientconfig.Context{CA: b.CAs.OS.Crt, Crt: kp.CertPEM, Key: kp.KeyPEM}
}
