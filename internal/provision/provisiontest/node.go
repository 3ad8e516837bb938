package provisiontest

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"net"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/plinthos/plinth/internal/provision"
	"github.com/plinthos/plinth/pkg/api/machine"
	"github.com/plinthos/plinth/pkg/client"
	"github.com/plinthos/plinth/pkg/clientconfig"
	"github.com/plinthos/plinth/pkg/config"
	"github.com/plinthos/plinth/pkg/pki"
	"github.com/plinthos/plinth/pkg/role"
	"github.com/plinthos/plinth/pkg/secrets"
)

// Node is a node API that answers Version, Bootstrap and Kubeconfig. Set its exported
// fields before serving it.
type Node struct {
	machine.UnimplementedMachineServiceServer
	mu           sync.Mutex
	Unready      int   // Bootstrap answers Unavailable this many times first
	Already      bool  // Bootstrap answers AlreadyExists after the unready ones
	BootstrapErr error // Bootstrap's answer after the unready ones, when set
	// Workers are the nodes (by the address a request is forwarded to) that hold no
	// Kubernetes CA key, as workers.
	Workers []string

	bootstraps  int
	kubeconfigs []string
}

// Bootstraps is how many times Bootstrap was called.
func (n *Node) Bootstraps() int {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.bootstraps
}

// KubeconfigTargets are the nodes each Kubeconfig call was forwarded to, in order;
// "(endpoint)" for the node that answered itself.
func (n *Node) KubeconfigTargets() []string {
	n.mu.Lock()
	defer n.mu.Unlock()
	return slices.Clone(n.kubeconfigs)
}

// Version names the node plinth-controlplane-1, tag v9.
func (n *Node) Version(context.Context, *machine.VersionRequest) (*machine.VersionResponse, error) {
	return &machine.VersionResponse{Hostname: "plinth-controlplane-1", Tag: "v9"}, nil
}

// Bootstrap answers as Unready, Already and BootstrapErr say, else that etcd is starting.
func (n *Node) Bootstrap(context.Context, *machine.BootstrapRequest) (*machine.BootstrapResponse, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.bootstraps++
	if n.Unready > 0 {
		n.Unready--
		return nil, status.Error(codes.Unavailable, "not yet")
	}
	if n.BootstrapErr != nil {
		return nil, n.BootstrapErr
	}
	if n.Already {
		return nil, status.Error(codes.AlreadyExists, "bootstrapped before")
	}
	return &machine.BootstrapResponse{Message: "etcd is starting"}, nil
}

// Kubeconfig answers as machined does: FailedPrecondition on a worker, else an admin
// kubeconfig of cluster plinth whose server names the node that answered (10.5.0.2 for the
// endpoint itself).
func (n *Node) Kubeconfig(ctx context.Context, _ *machine.KubeconfigRequest) (*machine.KubeconfigResponse, error) {
	target, host := "(endpoint)", "10.5.0.2"
	if md, ok := metadata.FromIncomingContext(ctx); ok && len(md.Get(client.NodeMetadataKey)) > 0 {
		target = md.Get(client.NodeMetadataKey)[0]
		host = target
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	n.kubeconfigs = append(n.kubeconfigs, target)
	if slices.Contains(n.Workers, target) {
		return nil, status.Error(codes.FailedPrecondition, "this node does not hold the Kubernetes CA key; ask a control-plane node")
	}
	return &machine.KubeconfigResponse{Kubeconfig: Kubeconfig("plinth", "https://"+host+":6443")}, nil
}

// Kubeconfig is an admin kubeconfig as a control plane hands out, for cluster: cluster
// cluster, user and context admin@cluster.
func Kubeconfig(cluster, server string) []byte {
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

// ServeNode serves n on addr after delay, with a certificate for 127.0.0.1 from the node
// API CA (caCrt, caKey), until the test ends. Without delay, addr listens on return.
func ServeNode(t testing.TB, caCrt, caKey []byte, addr string, delay time.Duration, n *Node) {
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

// ServeFirstControlPlane makes f publish the node API of a new cluster's first control
// plane on a port where n answers, with a certificate of the cluster's node API CA.
func ServeFirstControlPlane(t testing.TB, f *Provisioner, n *Node) {
	t.Helper()
	f.OnCreate = func(req provision.Request, c *provision.Cluster) {
		first := c.FirstControlPlane()
		data, err := req.Configs(provision.NodeSpec{Name: first.Name, Role: first.Role, IP: first.IP})
		if err != nil {
			t.Fatal(err)
		}
		doc, err := config.Load(data, "controlplane.yaml")
		if err != nil {
			t.Fatal(err)
		}
		addr := FreeAddr(t)
		ServeNode(t, doc.Config.Machine.CA.Crt, doc.Config.Machine.CA.Key, addr, 0, n)
		_, port, _ := net.SplitHostPort(addr)
		if first.APIPort, err = strconv.Atoi(port); err != nil {
			t.Fatal(err)
		}
	}
}

// FreeAddr is a 127.0.0.1 address with a port that was free a moment ago.
func FreeAddr(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// AdminContext is a client context of the bundle's node API CA, with an admin client
// certificate.
func AdminContext(t testing.TB, b *secrets.Bundle) *clientconfig.Context {
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
