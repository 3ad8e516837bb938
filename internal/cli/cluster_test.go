package cli

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/plinthos/plinth/internal/health"
	"github.com/plinthos/plinth/internal/localcluster"
	"github.com/plinthos/plinth/internal/provision"
	"github.com/plinthos/plinth/internal/provision/provisiontest"
	"github.com/plinthos/plinth/pkg/clientconfig"
	"github.com/plinthos/plinth/pkg/config"
	"github.com/plinthos/plinth/pkg/pki"
	"github.com/plinthos/plinth/pkg/role"
	"github.com/plinthos/plinth/pkg/secrets"
)

// newFakeProvisioner makes a fake provisioner the docker provisioner until the test ends.
func newFakeProvisioner(t *testing.T) *provisiontest.Provisioner {
	t.Helper()
	f := provisiontest.New()
	old := newProvisioner
	newProvisioner = func(name string) (provision.Provisioner, error) {
		if name != provisionerDocker {
			return nil, fmt.Errorf("unknown provisioner %q", name)
		}
		return f, nil
	}
	t.Cleanup(func() { newProvisioner = old })
	return f
}

// isolateHome points HOME and PLINTHCONFIG at a temporary directory.
func isolateHome(t *testing.T) (home, plinthconfig string) {
	t.Helper()
	home = t.TempDir()
	plinthconfig = filepath.Join(home, "pc")
	t.Setenv("HOME", home)
	t.Setenv("PLINTHCONFIG", plinthconfig)
	return home, plinthconfig
}

func runCLI(t *testing.T, args ...string) (string, error) {
	t.Helper()
	cmd := NewRootCommand()
	var buf bytes.Buffer
	cmd.SetArgs(args)
	cmd.SetOut(&buf)
	cmd.SetErr(&buf)
	err := cmd.Execute()
	return buf.String(), err
}

func mustCLI(t *testing.T, args ...string) string {
	t.Helper()
	out, err := runCLI(t, args...)
	if err != nil {
		t.Fatalf("plinthctl %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return out
}

// hasRow reports a line of out whose fields are those of row.
func hasRow(out, row string) bool {
	want := strings.Join(strings.Fields(row), " ")
	for _, l := range strings.Split(out, "\n") {
		if strings.Join(strings.Fields(l), " ") == want {
			return true
		}
	}
	return false
}

func loadClient(t *testing.T, path string) *clientconfig.Config {
	t.Helper()
	c, err := clientconfig.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestClusterCreateShowDestroy(t *testing.T) {
	home, pc := isolateHome(t)
	f := newFakeProvisioner(t)
	// An unrelated context stays untouched throughout.
	other := &clientconfig.Config{Context: "other", Contexts: map[string]*clientconfig.Context{
		"other": {Endpoints: []string{"192.0.2.1"}, CA: []byte("other CA")}}}
	if err := other.Save(pc); err != nil {
		t.Fatal(err)
	}

	out := mustCLI(t, "cluster", "create", "--workers", "2", "--cpus", "1.5", "--memory", "2048", "--wait=false",
		"--config-patch-worker", `{"machine": {"kubelet": {"nodeLabels": {"pool": "blue"}}}}`)
	for _, want := range []string{"fake: created 3 nodes", "added context \"plinth\"", "current context is \"plinth\"",
		"plinth-worker-2", "plinthctl -n 10.5.0.2 bootstrap"} {
		if !strings.Contains(out, want) {
			t.Errorf("create output lacks %q:\n%s", want, out)
		}
	}
	if !hasRow(out, "NODE ROLE IP STATE PORTS") || !hasRow(out, "plinth-controlplane-1 controlplane 10.5.0.2 running 127.0.0.1:41001->50000, 127.0.0.1:41002->6443") {
		t.Errorf("create output has no node table:\n%s", out)
	}
	if len(f.Requests) != 1 {
		t.Fatalf("%d requests", len(f.Requests))
	}
	req := f.Requests[0]
	if req.Name != "plinth" || req.Image != "plinth/node:dev" || req.ControlPlanes != 1 || req.Workers != 2 ||
		req.CPUs != 1.5 || req.MemoryMB != 2048 || req.CIDR != provision.DefaultCIDR {
		t.Errorf("request %+v", req)
	}

	// The state directory.
	stateDir := filepath.Join(home, ".plinth", "clusters", "plinth")
	for _, file := range localcluster.StateFiles {
		st, err := os.Stat(filepath.Join(stateDir, file))
		if err != nil {
			t.Fatal(err)
		}
		if st.Mode().Perm() != 0o600 {
			t.Errorf("%s has mode %v", file, st.Mode().Perm())
		}
	}
	bundle, err := secrets.LoadFile(filepath.Join(stateDir, localcluster.StateSecrets))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		file, node string
		typ        config.MachineType
	}{{localcluster.StateControlPlane, "plinth-controlplane-1", config.TypeControlPlane}, {localcluster.StateWorker, "plinth-worker-2", config.TypeWorker}} {
		data, err := os.ReadFile(filepath.Join(stateDir, tc.file))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(data, f.Configs[tc.node]) {
			t.Errorf("%s got another config than %s", tc.node, tc.file)
		}
		doc, err := config.Load(data, tc.file)
		if err != nil {
			t.Fatal(err)
		}
		cfg := doc.Config
		if ps := config.Validate(cfg, config.ModeDocker); len(ps) > 0 {
			t.Errorf("%s: %v", tc.file, ps)
		}
		if cfg.Machine.Type != tc.typ || cfg.Cluster.ControlPlane.Endpoint != "https://10.5.0.2:6443" || cfg.Cluster.Name != "plinth" ||
			!slices.Contains(cfg.Machine.CertSANs, "127.0.0.1") || cfg.Cluster.ID != bundle.Cluster.ID {
			t.Errorf("%s: type %s endpoint %s name %s SANs %v", tc.file, cfg.Machine.Type, cfg.Cluster.ControlPlane.Endpoint, cfg.Cluster.Name, cfg.Machine.CertSANs)
		}
		if (cfg.Machine.Kubelet.NodeLabels["pool"] == "blue") != (tc.typ == config.TypeWorker) {
			t.Errorf("%s: node labels %v", tc.file, cfg.Machine.Kubelet.NodeLabels)
		}
	}

	// The context: in the state directory and merged into the user's client config.
	own := loadClient(t, filepath.Join(stateDir, localcluster.StatePlinthconfig))
	user := loadClient(t, pc)
	ctx := user.Contexts["plinth"]
	if user.Context != "plinth" || ctx == nil || user.Contexts["other"] == nil {
		t.Fatalf("client config %+v", user)
	}
	if !slices.Equal(ctx.Endpoints, []string{"127.0.0.1:41001"}) || !slices.Equal(ctx.Nodes, []string{"10.5.0.2", "10.5.0.3", "10.5.0.4"}) ||
		!bytes.Equal(ctx.CA, bundle.CAs.OS.Crt) || !bytes.Equal(own.Contexts["plinth"].Crt, ctx.Crt) {
		t.Errorf("context %+v", ctx)
	}
	cert, err := pki.ParseCertPEM(ctx.Crt)
	if err != nil || !slices.Equal(cert.Subject.Organization, []string{role.Admin}) {
		t.Errorf("client certificate %v, %v", cert.Subject, err)
	}

	// Show and list.
	out = mustCLI(t, "cluster", "show")
	if !strings.Contains(out, "network plinth-plinth (10.5.0.0/24)") || !hasRow(out, "plinth-worker-1 worker 10.5.0.3 running -") {
		t.Errorf("show:\n%s", out)
	}
	if out := mustCLI(t, "cluster", "list"); !hasRow(out, "NAME NETWORK NODES RUNNING") || !hasRow(out, "plinth 10.5.0.0/24 3 3") {
		t.Errorf("list:\n%s", out)
	}
	if _, err := runCLI(t, "cluster", "show", "--name", "nope"); !errors.Is(err, provision.ErrNotFound) {
		t.Errorf("show of a missing cluster: %v", err)
	}

	// A second create of the same name is refused before the state directory is touched.
	before, _ := os.ReadFile(filepath.Join(stateDir, localcluster.StateSecrets))
	if _, err := runCLI(t, "cluster", "create", "--wait=false"); err == nil || !strings.Contains(err.Error(), "destroy it") {
		t.Errorf("second create: %v", err)
	}
	if after, _ := os.ReadFile(filepath.Join(stateDir, localcluster.StateSecrets)); !bytes.Equal(before, after) {
		t.Error("a refused create changed the state directory")
	}

	// Destroy: containers, the context (the current one), the state directory.
	out = mustCLI(t, "cluster", "destroy")
	for _, want := range []string{"fake: removed plinth", `removed context "plinth"`, "none is current now", "removed the state directory"} {
		if !strings.Contains(out, want) {
			t.Errorf("destroy output lacks %q:\n%s", want, out)
		}
	}
	user = loadClient(t, pc)
	if user.Context != "" || user.Contexts["plinth"] != nil || user.Contexts["other"] == nil {
		t.Errorf("client config after destroy: %+v", user)
	}
	if _, err := os.Stat(stateDir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("state directory after destroy: %v", err)
	}
	out = mustCLI(t, "cluster", "destroy")
	if !strings.Contains(out, "nothing of cluster") || strings.Contains(out, "removed") {
		t.Errorf("second destroy:\n%s", out)
	}
}

func TestClusterLogs(t *testing.T) {
	isolateHome(t)
	f := newFakeProvisioner(t)
	mustCLI(t, "cluster", "create", "--wait=false")
	out := mustCLI(t, "cluster", "logs")
	for _, want := range []string{"last 50 log lines of plinth-controlplane-1:\nfake log line of plinth-controlplane-1", "fake log line of plinth-worker-1"} {
		if !strings.Contains(out, want) {
			t.Errorf("cluster logs lacks %q:\n%s", want, out)
		}
	}
	f.LogsRead = nil
	out = mustCLI(t, "cluster", "logs", "--lines", "7", "plinth-worker-1")
	if !strings.Contains(out, "last 7 log lines of plinth-worker-1") || strings.Contains(out, "controlplane") || len(f.LogsRead) != 1 {
		t.Errorf("cluster logs of one node:\n%s", out)
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"nobody"}, `has no node "nobody" (it has plinth-controlplane-1, plinth-worker-1)`},
		{[]string{"--lines", "0"}, "--lines must be positive"},
		{[]string{"--name", "other"}, "no cluster named"},
		{[]string{"--provisioner", "vbox"}, "unknown provisioner"},
	} {
		if _, err := runCLI(t, append([]string{"cluster", "logs"}, tc.args...)...); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("cluster logs %v: %v, want %q", tc.args, err, tc.want)
		}
	}
}

// TestClusterCreateWithoutKubernetes: a cluster whose image has no Kubernetes says what it
// offers once its nodes answer, and how to reach it with its provisioner.
func TestClusterCreateWithoutKubernetes(t *testing.T) {
	isolateHome(t)
	f := newFakeProvisioner(t)
	f.OnCreate = func(_ provision.Request, c *provision.Cluster) { c.NoKubernetes = true }
	out := mustCLI(t, "cluster", "create", "--wait=false")
	for _, want := range []string{"with --wait=false nobody waited for its nodes", "plinthctl cluster logs --name plinth",
		"The nodes' OS image has no Kubernetes: nothing was bootstrapped"} {
		if !strings.Contains(out, want) {
			t.Errorf("create output lacks %q:\n%s", want, out)
		}
	}
	if out := mustCLI(t, "cluster", "show"); !strings.Contains(out, "the nodes' image has no Kubernetes") {
		t.Errorf("show:\n%s", out)
	}
}

func TestClusterCreateWithLoadBalancer(t *testing.T) {
	home, pc := isolateHome(t)
	f := newFakeProvisioner(t)
	out := mustCLI(t, "cluster", "create", "--name", "ha", "--controlplanes", "3", "--workers", "1", "--wait=false")
	for _, row := range []string{
		"ha-lb loadbalancer 10.5.0.2 running 127.0.0.1:41010->6443",
		"ha-controlplane-1 controlplane 10.5.0.3 running 127.0.0.1:41001->50000",
		"ha-controlplane-2 controlplane 10.5.0.4 running 127.0.0.1:41003->50000",
		"ha-controlplane-3 controlplane 10.5.0.5 running 127.0.0.1:41004->50000",
		"ha-worker-1 worker 10.5.0.6 running -",
	} {
		if !hasRow(out, row) {
			t.Errorf("create output lacks the row %q:\n%s", row, out)
		}
	}
	if !strings.Contains(out, "plinthctl -n 10.5.0.3 bootstrap") {
		t.Errorf("create output does not bootstrap the first control plane:\n%s", out)
	}
	if req := f.Requests[0]; req.ControlPlanes != 3 || req.Workers != 1 {
		t.Errorf("request %+v", req)
	}
	// The Kubernetes endpoint is the load balancer; the apiserver certificate gets its
	// address from the endpoint.
	stateDir := filepath.Join(home, ".plinth", "clusters", "ha")
	for _, file := range []string{localcluster.StateControlPlane, localcluster.StateWorker} {
		doc, err := config.LoadFile(filepath.Join(stateDir, file))
		if err != nil {
			t.Fatal(err)
		}
		if ep := doc.Config.Cluster.ControlPlane.Endpoint; ep != "https://10.5.0.2:6443" {
			t.Errorf("%s: endpoint %s, want the load balancer's https://10.5.0.2:6443", file, ep)
		}
	}
	// The context: every control plane's node API, the first first; the nodes without the
	// load balancer.
	ctx := loadClient(t, pc).Contexts["ha"]
	if ctx == nil {
		t.Fatal("no context ha")
	}
	if want := []string{"127.0.0.1:41001", "127.0.0.1:41003", "127.0.0.1:41004"}; !slices.Equal(ctx.Endpoints, want) {
		t.Errorf("endpoints %v, want %v", ctx.Endpoints, want)
	}
	if want := []string{"10.5.0.3", "10.5.0.4", "10.5.0.5", "10.5.0.6"}; !slices.Equal(ctx.Nodes, want) {
		t.Errorf("nodes %v, want %v", ctx.Nodes, want)
	}
	out = mustCLI(t, "cluster", "show", "--name", "ha")
	if !hasRow(out, "ha-lb loadbalancer 10.5.0.2 running 127.0.0.1:41010->6443") {
		t.Errorf("show lacks the load balancer:\n%s", out)
	}
	if out := mustCLI(t, "cluster", "list"); !hasRow(out, "ha 10.5.0.0/24 4 4") {
		t.Errorf("list:\n%s", out)
	}
}

func TestClusterCreateWithoutWorkersSchedulesOnControlPlanes(t *testing.T) {
	home, _ := isolateHome(t)
	newFakeProvisioner(t)
	mustCLI(t, "cluster", "create", "--name", "solo", "--workers", "0", "--wait=false")
	doc, err := config.LoadFile(filepath.Join(home, ".plinth", "clusters", "solo", localcluster.StateControlPlane))
	if err != nil {
		t.Fatal(err)
	}
	if !doc.Config.Cluster.AllowSchedulingOnControlPlanes {
		t.Error("a cluster without workers does not let workloads run on its control planes")
	}
}

func TestClusterCreateRenamedContext(t *testing.T) {
	home, pc := isolateHome(t)
	newFakeProvisioner(t)
	taken := &clientconfig.Config{Context: "demo", Contexts: map[string]*clientconfig.Context{
		"demo": {Endpoints: []string{"192.0.2.1"}, CA: []byte("another cluster's CA")}}}
	if err := taken.Save(pc); err != nil {
		t.Fatal(err)
	}
	stateDir := filepath.Join(home, "state")
	out := mustCLI(t, "cluster", "create", "--name", "demo", "--state-dir", stateDir, "--wait=false", "--cidr", "10.6.0.0/24")
	if !strings.Contains(out, `context "demo" already existed`) || !strings.Contains(out, `"demo-1"`) || !strings.Contains(out, "--context demo-1 -n 10.6.0.2 bootstrap") {
		t.Errorf("create output:\n%s", out)
	}
	if _, err := os.Stat(filepath.Join(stateDir, localcluster.StatePlinthconfig)); err != nil {
		t.Error(err)
	}
	// Destroy finds the renamed context by its CA and leaves the other "demo" alone.
	out = mustCLI(t, "cluster", "destroy", "--name", "demo", "--state-dir", stateDir)
	if !strings.Contains(out, `removed context "demo-1"`) {
		t.Errorf("destroy output:\n%s", out)
	}
	user := loadClient(t, pc)
	if user.Contexts["demo-1"] != nil || user.Contexts["demo"] == nil || string(user.Contexts["demo"].CA) != "another cluster's CA" {
		t.Errorf("client config after destroy: %+v", user.Names())
	}
}

func TestClusterCreateFailureRemovesStateFiles(t *testing.T) {
	home, pc := isolateHome(t)
	f := newFakeProvisioner(t)
	f.FailWith = errors.New("docker run: no luck")
	_, err := runCLI(t, "cluster", "create")
	if err == nil || !strings.Contains(err.Error(), "no luck") {
		t.Fatalf("create: %v", err)
	}
	if _, err := os.Stat(filepath.Join(home, ".plinth", "clusters", "plinth")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("state directory after a failed create: %v", err)
	}
	if _, err := os.Stat(pc); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("client config after a failed create: %v", err)
	}
}

// failedCreateSetup isolates HOME, the client config (holding another cluster's context,
// current) and the kubeconfig, and returns them with a fake provisioner.
func failedCreateSetup(t *testing.T) (home, pc, kc string, f *provisiontest.Provisioner) {
	t.Helper()
	home, pc = isolateHome(t)
	kc = filepath.Join(home, "kube", "config")
	t.Setenv("KUBECONFIG", kc)
	other := &clientconfig.Config{Context: "other", Contexts: map[string]*clientconfig.Context{
		"other": {Endpoints: []string{"192.0.2.1"}, CA: []byte("other CA")}}}
	if err := other.Save(pc); err != nil {
		t.Fatal(err)
	}
	return home, pc, kc, newFakeProvisioner(t)
}

// checkRemoved checks that a failed create removed the cluster "plinth" of two nodes:
// each node's log was shown first, Destroy ran with a live context, and the state
// directory and the context are gone, the earlier context current again.
func checkRemoved(t *testing.T, f *provisiontest.Provisioner, out, home, pc string) {
	t.Helper()
	for _, want := range []string{"fake log line of plinth-controlplane-1", "fake log line of plinth-worker-1", "fake: removed plinth",
		`removed context "plinth"`, "removed the state directory"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	if strings.Index(out, "fake log line") > strings.Index(out, "fake: removed plinth") {
		t.Errorf("the logs were read after the removal:\n%s", out)
	}
	if want := []provisiontest.Call{{Name: "plinth"}}; !slices.Equal(f.Destroyed, want) {
		t.Errorf("Destroy calls %+v, want %+v (a context not ended)", f.Destroyed, want)
	}
	if want := []provisiontest.Call{{Name: "plinth-controlplane-1"}, {Name: "plinth-worker-1"}}; !slices.Equal(f.LogsRead, want) {
		t.Errorf("Logs calls %+v, want %+v", f.LogsRead, want)
	}
	if _, err := os.Stat(filepath.Join(home, ".plinth", "clusters", "plinth")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("state directory after a failed create: %v", err)
	}
	user := loadClient(t, pc)
	if !slices.Equal(user.Names(), []string{"other"}) || user.Context != "other" {
		t.Errorf("client config after a failed create: contexts %v, current %q", user.Names(), user.Context)
	}
}

func TestClusterCreateFailedBootstrapRemovesCluster(t *testing.T) {
	home, pc, kc, f := failedCreateSetup(t)
	provisiontest.ServeFirstControlPlane(t, f, &provisiontest.Node{BootstrapErr: status.Error(codes.Internal, "etcd would not start")})
	out, err := runCLI(t, "cluster", "create")
	if err == nil || !strings.Contains(err.Error(), "etcd would not start") || !strings.Contains(err.Error(), "--retain") {
		t.Errorf("create: %v, want the bootstrap's error and how to keep the cluster\n%s", err, out)
	}
	checkRemoved(t, f, out, home, pc)
	if _, err := os.Stat(kc); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("kubeconfig after a create that failed before merging it: %v", err)
	}
}

func TestClusterCreateInterruptedWaitRemovesCluster(t *testing.T) {
	home, pc, _, f := failedCreateSetup(t)
	// Ctrl-C right after the nodes started: the wait for the node API ends at once.
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	f.OnCreate = func(provision.Request, *provision.Cluster) { cancel() }
	cmd := NewRootCommand()
	var buf bytes.Buffer
	cmd.SetArgs([]string{"cluster", "create"})
	cmd.SetOut(&buf)
	cmd.SetErr(&buf)
	err := cmd.ExecuteContext(ctx)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("create: %v, want context.Canceled\n%s", err, buf.String())
	}
	checkRemoved(t, f, buf.String(), home, pc)
}

func TestClusterCreateFailedHealthWaitRemovesCluster(t *testing.T) {
	home, pc, kc, f := failedCreateSetup(t)
	// The kubeconfig holds another cluster's context, current, and entries of an earlier
	// cluster "plinth" that the merge replaces.
	before := "apiVersion: v1\nkind: Config\n" +
		"clusters:\n- name: mine\n  cluster: {server: https://192.0.2.9:6443}\n- name: plinth\n  cluster: {server: https://old:6443}\n" +
		"users:\n- name: admin@plinth\n  user: {token: old}\n- name: me\n  user: {token: mine}\n" +
		"contexts:\n- name: plinth\n  context: {cluster: plinth, user: admin@plinth}\n- name: mine\n  context: {cluster: mine, user: me}\n" +
		"current-context: mine\n"
	if err := os.MkdirAll(filepath.Dir(kc), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(kc, []byte(before), 0o600); err != nil {
		t.Fatal(err)
	}
	provisiontest.ServeFirstControlPlane(t, f, &provisiontest.Node{})
	old := checkHealth
	t.Cleanup(func() { checkHealth = old })
	merged := ""
	checkHealth = func(context.Context, []byte, string, health.Expect, io.Writer) error {
		data, _ := os.ReadFile(kc)
		merged = string(data)
		return errors.New("CoreDNS is not ready")
	}

	out, err := runCLI(t, "cluster", "create")
	if err == nil || !strings.Contains(err.Error(), "CoreDNS is not ready") {
		t.Errorf("create: %v, want the health check's error\n%s", err, out)
	}
	if !strings.Contains(merged, "https://127.0.0.1:41002") {
		t.Errorf("the kubeconfig was not merged before the health wait:\n%s", merged)
	}
	checkRemoved(t, f, out, home, pc)
	if !strings.Contains(out, `removed kubeconfig context "plinth"`) {
		t.Errorf("output lacks the kubeconfig's cleanup:\n%s", out)
	}
	got := readYAML(t, kc)
	want := map[string]any{}
	if err := yaml.Unmarshal([]byte(before), &want); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, want) {
		data, _ := os.ReadFile(kc)
		t.Errorf("kubeconfig after a failed create:\n%s\nwant it as before:\n%s", data, before)
	}
}

func TestClusterCreateRetainKeepsFailedCluster(t *testing.T) {
	home, pc, _, f := failedCreateSetup(t)
	provisiontest.ServeFirstControlPlane(t, f, &provisiontest.Node{BootstrapErr: status.Error(codes.Internal, "etcd would not start")})
	out, err := runCLI(t, "cluster", "create", "--retain")
	if err == nil || !strings.Contains(err.Error(), "etcd would not start") || !strings.Contains(err.Error(), "plinthctl cluster destroy --name plinth") {
		t.Fatalf("create --retain: %v\n%s", err, out)
	}
	if !strings.Contains(out, "fake log line of plinth-controlplane-1") {
		t.Errorf("create --retain does not show the logs:\n%s", out)
	}
	if len(f.Destroyed) != 0 {
		t.Errorf("create --retain destroyed the cluster: %+v", f.Destroyed)
	}
	for _, file := range localcluster.StateFiles {
		if _, err := os.Stat(filepath.Join(home, ".plinth", "clusters", "plinth", file)); err != nil {
			t.Error(err)
		}
	}
	if user := loadClient(t, pc); user.Contexts["plinth"] == nil || user.Context != "plinth" {
		t.Errorf("client config after create --retain: contexts %v, current %q", user.Names(), user.Context)
	}
}

func TestClusterCreateRefusals(t *testing.T) {
	home, _ := isolateHome(t)
	f := newFakeProvisioner(t)
	stale := filepath.Join(home, "stale")
	if err := os.MkdirAll(stale, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(stale, localcluster.StateSecrets), []byte("old"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--name", "Bad_Name"}, "not valid"},
		{[]string{"--controlplanes", "0"}, "at least one control-plane"},
		{[]string{"--cidr", "10.5.0.1/24"}, "did you mean 10.5.0.0/24"},
		{[]string{"--memory", "-1"}, "cannot be negative"},
		{[]string{"--provisioner", "vbox"}, "unknown provisioner"},
		{[]string{"--provisioner", "qemu", "--image", "plinth/node:x"}, "--image is the Docker provisioner's"},
		{[]string{"--os-image", "/tmp/os"}, "--os-image is for --provisioner qemu"},
		{[]string{"--config-patch", "{not yaml"}, "patch"},
		{[]string{"--config-patch", `{"machine": {"type": "router"}}`}, "machine.type"},
		{[]string{"--kubernetes-version", "1.37"}, "MAJOR.MINOR.PATCH"},
		{[]string{"--state-dir", stale}, "holds files of an earlier cluster"},
	} {
		_, err := runCLI(t, append([]string{"cluster", "create", "--wait=false"}, tc.args...)...)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("create %v: %v, want %q", tc.args, err, tc.want)
		}
	}
	if len(f.Requests) != 0 {
		t.Errorf("refused creates reached the provisioner: %d", len(f.Requests))
	}
	if data, _ := os.ReadFile(filepath.Join(stale, localcluster.StateSecrets)); string(data) != "old" {
		t.Error("a refused create overwrote a stale state directory")
	}
}
