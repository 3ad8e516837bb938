package controllers

import (
	"context"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/plinthos/plinth/internal/clock"
	"github.com/plinthos/plinth/internal/configgen"
	"github.com/plinthos/plinth/internal/controller"
	"github.com/plinthos/plinth/internal/etcdintent"
	"github.com/plinthos/plinth/internal/k8s/paths"
	"github.com/plinthos/plinth/internal/k8s/render"
	"github.com/plinthos/plinth/internal/resource"
	"github.com/plinthos/plinth/internal/resources"
	"github.com/plinthos/plinth/pkg/config"
	"github.com/plinthos/plinth/pkg/pki"
	"github.com/plinthos/plinth/pkg/secrets"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

type harness struct {
	store  *resource.Store
	clk    *clock.Fake
	config *testConfig // the configuration source, unless started by startWith
	stop   func()
}

// start runs the controllers with a test configuration source holding initial (may be nil).
func start(t *testing.T, initial *config.MachineConfig, extra ...controller.Controller) *harness {
	t.Helper()
	src := newTestConfig(initial)
	h := startWith(t, src, src.changed, extra...)
	h.config = src
	return h
}

// startWith runs the controllers with the MachineConfig controller reading src.
func startWith(t *testing.T, src ConfigSource, changed <-chan struct{}, extra ...controller.Controller) *harness {
	t.Helper()
	clk := clock.NewFake(time.Now())
	store := resource.NewStore(clk)
	eng := controller.NewEngine(store, clk, slog.New(slog.DiscardHandler))
	h := &harness{store: store, clk: clk}
	all := append([]controller.Controller{
		&MachineConfig{Source: src, Changed: changed},
		&Hostname{Default: "default-host"},
		&Static[resources.NodeAddressSpec]{ControllerName: "network.NodeAddress", Namespace: resources.NamespaceNetwork,
			Type: resources.NodeAddressType, ID: resources.DefaultID, Spec: resources.NodeAddressSpec{Addresses: []string{"127.0.0.1"}}},
	}, extra...)
	for _, c := range all {
		if err := eng.Register(c); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = eng.Run(ctx) }()
	h.stop = func() { cancel(); <-done }
	t.Cleanup(h.stop)
	return h
}

// waitSpec polls the store until the resource exists and cond holds.
func waitSpec[S any](t *testing.T, h *harness, ns, typ, id string, cond func(S) bool) S {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		r, err := h.store.Get(ns, typ, id)
		if err == nil {
			s := *r.(*resource.Typed[S]).TypedSpec()
			if cond(s) {
				return s
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s/%s never reached the expected state (last error %v)", typ, id, err)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

func generated(t *testing.T) *configgen.Configs {
	t.Helper()
	b, err := secrets.Generate(time.Now())
	if err != nil {
		t.Fatal(err)
	}
	cs, err := configgen.Generate(b, configgen.Options{ClusterName: "demo", Endpoint: "https://10.5.0.2:6443"})
	if err != nil {
		t.Fatal(err)
	}
	return cs
}

func TestHostnameFollowsConfig(t *testing.T) {
	cs := generated(t)
	h := start(t, cs.ControlPlane)
	waitSpec(t, h, resources.NamespaceNetwork, resources.HostnameType, resources.HostnameID,
		func(s resources.HostnameSpec) bool { return s.Hostname == "default-host" })
	next := *cs.ControlPlane
	next.Machine.Network.Hostname = "cp-1.example.com"
	h.config.set(&next)
	waitSpec(t, h, resources.NamespaceNetwork, resources.HostnameType, resources.HostnameID,
		func(s resources.HostnameSpec) bool { return s.Hostname == "cp-1" && s.Domainname == "example.com" })
}

func TestNodeIdentityPersists(t *testing.T) {
	dir := t.TempDir()
	h := start(t, nil, &NodeIdentity{StateDir: dir})
	first := waitSpec(t, h, resources.NamespaceCluster, resources.NodeIdentityType, resources.LocalID,
		func(s resources.NodeIdentitySpec) bool { return len(s.NodeID) == 32 })
	h.stop()
	h2 := start(t, nil, &NodeIdentity{StateDir: dir})
	waitSpec(t, h2, resources.NamespaceCluster, resources.NodeIdentityType, resources.LocalID,
		func(s resources.NodeIdentitySpec) bool { return s == first })
}

func TestAPICertificateIssuedRenewedAndReissued(t *testing.T) {
	cs := generated(t)
	dir := t.TempDir()
	h := start(t, cs.ControlPlane, &APICertificate{IdentityDir: dir})
	get := func(cond func(*pkiCert) bool) *pkiCert {
		var c *pkiCert
		waitSpec(t, h, resources.NamespaceSecrets, resources.APICertificateType, resources.APIID, func(s resources.APICertificateSpec) bool {
			cert, err := pki.ParseCertPEM(s.Crt)
			if err != nil {
				return false
			}
			c = &pkiCert{serial: cert.SerialNumber.String(), ips: cert.IPAddresses, dns: cert.DNSNames, notAfter: cert.NotAfter, orgs: cert.Subject.Organization}
			return cond(c)
		})
		return c
	}
	first := get(func(*pkiCert) bool { return true })
	if len(first.ips) != 1 || !first.ips[0].Equal(net.ParseIP("127.0.0.1")) || !slices.Contains(first.dns, "default-host") {
		t.Errorf("SANs %v %v, want 127.0.0.1 and default-host", first.ips, first.dns)
	}
	ca, _ := pki.ParseCertPEM(cs.ControlPlane.Machine.CA.Crt)
	crtPEM, err := os.ReadFile(filepath.Join(dir, "apid.crt"))
	if err != nil {
		t.Fatal(err)
	}
	onDisk, err := pki.ParseCertPEM(crtPEM)
	if err != nil || onDisk.SerialNumber.String() != first.serial {
		t.Fatalf("apid.crt on disk is not the issued certificate: %v", err)
	}
	if err := pki.Verify(ca, onDisk, pki.UsageServer|pki.UsageClient, h.clk.Now()); err != nil {
		t.Errorf("issued certificate does not verify against the node API CA: %v", err)
	}

	// A new certSAN: reissued at once.
	next := *cs.ControlPlane
	next.Machine.CertSANs = []string{"api.example.com"}
	h.config.set(&next)
	second := get(func(c *pkiCert) bool { return slices.Contains(c.dns, "api.example.com") })
	if second.serial == first.serial {
		t.Error("not reissued")
	}

	// Renewed once two thirds of its lifetime have passed.
	h.clk.Advance(APICertValidity * 2 / 3)
	third := get(func(c *pkiCert) bool { return c.serial != second.serial })
	if !third.notAfter.After(second.notAfter) {
		t.Errorf("renewed certificate expires %v, not after the previous %v", third.notAfter, second.notAfter)
	}
}

type pkiCert struct {
	serial   string
	ips      []net.IP
	dns      []string
	orgs     []string
	notAfter time.Time
}

func TestEtcdStateFollowsBootstrapAndJoin(t *testing.T) {
	cs := generated(t)
	root := t.TempDir()
	keeper, err := etcdintent.Open(filepath.Join(root, "etcd-intent.json"), filepath.Join(root, "etcd"), time.Now)
	if err != nil {
		t.Fatal(err)
	}
	h := start(t, cs.ControlPlane, &EtcdState{Intent: keeper})
	waitSpec(t, h, resources.NamespaceEtcd, resources.EtcdStateType, resources.LocalID,
		func(s resources.EtcdStateSpec) bool { return !s.Run && s.Role == "" })

	// A join: etcd starts as a member of the existing cluster, with the join's peers.
	initial := "cp-1=https://10.5.0.3:2380,default-host=https://127.0.0.1:2380"
	if err := keeper.Join(context.Background(), func(context.Context) (string, error) { return initial, nil }); err != nil {
		t.Fatal(err)
	}
	waitSpec(t, h, resources.NamespaceEtcd, resources.EtcdStateType, resources.LocalID,
		func(s resources.EtcdStateSpec) bool {
			return s.Run && s.Role == "join" && s.ClusterState == "existing" && s.InitialCluster == initial
		})

	// After a reset, data of an earlier run means "existing" with this member alone.
	if err := keeper.Reset(); err != nil {
		t.Fatal(err)
	}
	waitSpec(t, h, resources.NamespaceEtcd, resources.EtcdStateType, resources.LocalID,
		func(s resources.EtcdStateSpec) bool { return !s.Run })
	if err := os.MkdirAll(filepath.Join(root, "etcd", "member"), 0o755); err != nil {
		t.Fatal(err)
	}
	member, err := etcdintent.Open(filepath.Join(root, "etcd-intent.json"), filepath.Join(root, "etcd"), time.Now)
	if err != nil {
		t.Fatal(err)
	}
	h2 := start(t, cs.ControlPlane, &EtcdState{Intent: member})
	waitSpec(t, h2, resources.NamespaceEtcd, resources.EtcdStateType, resources.LocalID,
		func(s resources.EtcdStateSpec) bool {
			return s.Run && s.Role == "member" && s.ClusterState == "existing" && s.InitialCluster == "default-host=https://127.0.0.1:2380"
		})

	// A bootstrap (of a fresh node) means "new".
	if err := os.RemoveAll(filepath.Join(root, "etcd")); err != nil {
		t.Fatal(err)
	}
	if err := keeper.Bootstrap(context.Background(), func(context.Context) error { return nil }); err != nil {
		t.Fatal(err)
	}
	waitSpec(t, h, resources.NamespaceEtcd, resources.EtcdStateType, resources.LocalID,
		func(s resources.EtcdStateSpec) bool { return s.Run && s.Role == "bootstrap" && s.ClusterState == "new" })

	// etcd wrote its data, then the data is lost: etcd must not start again as a new,
	// empty cluster.
	if err := os.MkdirAll(filepath.Join(root, "etcd", "member"), 0o755); err != nil {
		t.Fatal(err)
	}
	if _, err := keeper.Refresh(); err != nil {
		t.Fatal(err)
	}
	if err := os.RemoveAll(filepath.Join(root, "etcd")); err != nil {
		t.Fatal(err)
	}
	if _, err := keeper.Refresh(); err != nil {
		t.Fatal(err)
	}
	waitSpec(t, h, resources.NamespaceEtcd, resources.EtcdStateType, resources.LocalID,
		func(s resources.EtcdStateSpec) bool { return !s.Run && s.Role == "lost" })
}

// A control plane whose etcd data is lost loses its static pods, so that kubelet does not
// start etcd on the empty directory as a new, empty cluster.
func TestStaticPodsGoWhenEtcdDataIsLost(t *testing.T) {
	cs := generated(t)
	root := t.TempDir()
	keeper, err := etcdintent.Open(filepath.Join(root, "etcd-intent.json"), filepath.Join(root, "etcd"), time.Now)
	if err != nil {
		t.Fatal(err)
	}
	host := filepath.Join(root, "host")
	h := start(t, cs.ControlPlane, &EtcdState{Intent: keeper}, &StaticPods{Layout: paths.Layout{Root: host}},
		&Static[resources.KubeletSpecSpec]{ControllerName: "k8s.KubeletSpec", Namespace: resources.NamespaceK8s,
			Type: resources.KubeletSpecType, ID: resources.DefaultID, Spec: resources.KubeletSpecSpec{ControlPlane: true}})
	etcdManifest := filepath.Join(host, paths.ManifestsDir, render.EtcdManifest)
	if err := keeper.Bootstrap(context.Background(), func(context.Context) error { return nil }); err != nil {
		t.Fatal(err)
	}
	waitSpec(t, h, resources.NamespaceK8s, resources.StaticPodsType, resources.DefaultID,
		func(s resources.StaticPodSetSpec) bool { return slices.Contains(s.Pods, render.EtcdManifest) })
	if _, err := os.Stat(etcdManifest); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(root, "etcd", "member"), 0o755); err != nil {
		t.Fatal(err)
	}
	if _, err := keeper.Refresh(); err != nil {
		t.Fatal(err)
	}
	if err := os.RemoveAll(filepath.Join(root, "etcd")); err != nil {
		t.Fatal(err)
	}
	if _, err := keeper.Refresh(); err != nil {
		t.Fatal(err)
	}
	// The controller removes the four manifests one after the other, etcd's first.
	deadline := time.Now().Add(5 * time.Second)
	for _, m := range []string{render.EtcdManifest, render.APIServerManifest, render.ControllerManagerManifest, render.SchedulerManifest} {
		for {
			_, err := os.Stat(filepath.Join(host, paths.ManifestsDir, m))
			if os.IsNotExist(err) {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s stays after etcd's data was lost: %v", m, err)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	for _, m := range []string{render.EtcdManifest, render.APIServerManifest, render.ControllerManagerManifest, render.SchedulerManifest} {
		if _, err := os.Stat(filepath.Join(host, paths.ManifestsDir, m)); !os.IsNotExist(err) {
			t.Errorf("%s came back after etcd's data was lost: %v", m, err)
		}
	}
}
