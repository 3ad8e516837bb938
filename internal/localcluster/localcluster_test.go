package localcluster

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/plinthos/plinth/internal/health"
	"github.com/plinthos/plinth/internal/kubeconfig"
	"github.com/plinthos/plinth/internal/provision"
	"github.com/plinthos/plinth/internal/provision/provisiontest"
	"github.com/plinthos/plinth/pkg/clientconfig"
	"github.com/plinthos/plinth/pkg/config"
	"github.com/plinthos/plinth/pkg/config/patch"
	"github.com/plinthos/plinth/pkg/secrets"
)

// env is where a test's cluster keeps its files: the state directory, the user's client
// config (holding another cluster's context, current) and kubeconfig.
type env struct {
	stateDir, clientConfig, kubeconfig string
}

func newEnv(t *testing.T) env {
	t.Helper()
	dir := t.TempDir()
	e := env{stateDir: filepath.Join(dir, "state"), clientConfig: filepath.Join(dir, "pc"), kubeconfig: filepath.Join(dir, "kube", "config")}
	other := &clientconfig.Config{Context: "other", Contexts: map[string]*clientconfig.Context{
		"other": {Endpoints: []string{"192.0.2.1"}, CA: []byte("other CA")}}}
	if err := other.Save(e.clientConfig); err != nil {
		t.Fatal(err)
	}
	return e
}

func (e env) createOptions(out io.Writer) CreateOptions {
	return CreateOptions{Name: "plinth", Image: "plinth/node:test", ControlPlanes: 1, Workers: 1,
		StateDir: e.stateDir, ClientConfigPath: e.clientConfig, KubeconfigPath: e.kubeconfig, Progress: out}
}

func (e env) destroyOptions(out io.Writer) DestroyOptions {
	return DestroyOptions{StateDir: e.stateDir, ClientConfigPath: e.clientConfig, KubeconfigPath: e.kubeconfig, Progress: out}
}

func loadClient(t *testing.T, path string) *clientconfig.Config {
	t.Helper()
	c, err := clientconfig.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestCreateAndDestroy(t *testing.T) {
	e := newEnv(t)
	prov := provisiontest.New()
	var out bytes.Buffer
	opts := e.createOptions(&out)
	opts.Workers, opts.CPUs, opts.MemoryMB = 2, 1.5, 2048
	p, err := patch.LoadAll([]string{`{"machine": {"kubelet": {"nodeLabels": {"pool": "blue"}}}}`})
	if err != nil {
		t.Fatal(err)
	}
	opts.WorkerPatches = p
	res, err := Create(t.Context(), prov, opts)
	if err != nil {
		t.Fatalf("Create: %v\n%s", err, out.String())
	}
	if res.Context != "plinth" || res.ClientConfigPath != e.clientConfig || res.Bootstrapped || len(res.Cluster.Nodes) != 3 {
		t.Errorf("result %+v", res)
	}
	for _, want := range []string{"created " + filepath.Join(e.stateDir, StateSecrets), "fake: created 3 nodes",
		`added context "plinth"`, `current context is "plinth"`, "127.0.0.1:41001->50000, 127.0.0.1:41002->6443"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("progress lacks %q:\n%s", want, out.String())
		}
	}
	req := prov.Requests[0]
	if req.Image != "plinth/node:test" || req.ControlPlanes != 1 || req.Workers != 2 || req.CPUs != 1.5 || req.MemoryMB != 2048 || req.CIDR != provision.DefaultCIDR {
		t.Errorf("request %+v", req)
	}
	for _, file := range StateFiles {
		st, err := os.Stat(filepath.Join(e.stateDir, file))
		if err != nil {
			t.Fatal(err)
		}
		if st.Mode().Perm() != 0o600 {
			t.Errorf("%s has mode %v", file, st.Mode().Perm())
		}
	}
	bundle, err := secrets.LoadFile(filepath.Join(e.stateDir, StateSecrets))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		file, node string
		typ        config.MachineType
	}{{StateControlPlane, "plinth-controlplane-1", config.TypeControlPlane}, {StateWorker, "plinth-worker-2", config.TypeWorker}} {
		data, err := os.ReadFile(filepath.Join(e.stateDir, tc.file))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(data, prov.Configs[tc.node]) {
			t.Errorf("%s got another config than %s", tc.node, tc.file)
		}
		doc, err := config.Load(data, tc.file)
		if err != nil {
			t.Fatal(err)
		}
		cfg := doc.Config
		if cfg.Machine.Type != tc.typ || cfg.Cluster.ControlPlane.Endpoint != "https://10.5.0.2:6443" || cfg.Cluster.ID != bundle.Cluster.ID ||
			!slices.Contains(cfg.Machine.CertSANs, "127.0.0.1") || cfg.Cluster.AllowSchedulingOnControlPlanes {
			t.Errorf("%s: %+v", tc.file, cfg.Cluster)
		}
		if (cfg.Machine.Kubelet.NodeLabels["pool"] == "blue") != (tc.typ == config.TypeWorker) {
			t.Errorf("%s: node labels %v", tc.file, cfg.Machine.Kubelet.NodeLabels)
		}
	}
	user := loadClient(t, e.clientConfig)
	ctx := user.Contexts["plinth"]
	if user.Context != "plinth" || ctx == nil || user.Contexts["other"] == nil {
		t.Fatalf("client config %+v", user)
	}
	if !slices.Equal(ctx.Endpoints, []string{"127.0.0.1:41001"}) || !slices.Equal(ctx.Nodes, []string{"10.5.0.2", "10.5.0.3", "10.5.0.4"}) ||
		!bytes.Equal(ctx.CA, bundle.CAs.OS.Crt) {
		t.Errorf("context %+v", ctx)
	}
	if own, err := LoadClientContext(e.stateDir, "plinth"); err != nil || !bytes.Equal(own.Crt, ctx.Crt) {
		t.Errorf("LoadClientContext: %v", err)
	}

	// A second create of the same name is refused before the state directory is touched.
	before, _ := os.ReadFile(filepath.Join(e.stateDir, StateSecrets))
	if _, err := Create(t.Context(), prov, e.createOptions(io.Discard)); err == nil || !strings.Contains(err.Error(), "destroy it") {
		t.Errorf("second create: %v", err)
	}
	if after, _ := os.ReadFile(filepath.Join(e.stateDir, StateSecrets)); !bytes.Equal(before, after) {
		t.Error("a refused create changed the state directory")
	}

	out.Reset()
	if err := Destroy(t.Context(), prov, "plinth", e.destroyOptions(&out)); err != nil {
		t.Fatalf("Destroy: %v\n%s", err, out.String())
	}
	for _, want := range []string{"fake: removed plinth", `removed context "plinth"`, "none is current now", "removed the state directory"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("destroy progress lacks %q:\n%s", want, out.String())
		}
	}
	if user := loadClient(t, e.clientConfig); user.Context != "" || !slices.Equal(user.Names(), []string{"other"}) {
		t.Errorf("client config after destroy: %v, current %q", user.Names(), user.Context)
	}
	if _, err := os.Stat(e.stateDir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("state directory after destroy: %v", err)
	}
	out.Reset()
	if err := Destroy(t.Context(), prov, "plinth", e.destroyOptions(&out)); err != nil || strings.Contains(out.String(), "removed") {
		t.Errorf("second destroy: %v\n%s", err, out.String())
	}
}

func TestCreateWithoutWorkersSchedulesOnControlPlanes(t *testing.T) {
	e := newEnv(t)
	opts := e.createOptions(io.Discard)
	opts.ControlPlanes, opts.Workers = 3, 0
	res, err := Create(t.Context(), provisiontest.New(), opts)
	if err != nil {
		t.Fatal(err)
	}
	if res.Cluster.LoadBalancer == nil {
		t.Error("three control planes without a load balancer")
	}
	doc, err := config.LoadFile(filepath.Join(e.stateDir, StateControlPlane))
	if err != nil {
		t.Fatal(err)
	}
	if !doc.Config.Cluster.AllowSchedulingOnControlPlanes || doc.Config.Cluster.ControlPlane.Endpoint != "https://10.5.0.2:6443" {
		t.Errorf("cluster %+v, want workloads on the control planes and the load balancer's endpoint", doc.Config.Cluster)
	}
	if want := []string{"127.0.0.1:41001", "127.0.0.1:41003", "127.0.0.1:41004"}; !slices.Equal(loadClient(t, e.clientConfig).Contexts["plinth"].Endpoints, want) {
		t.Errorf("endpoints, want %v", want)
	}
}

func TestCreateIsolated(t *testing.T) {
	e := newEnv(t)
	opts := e.createOptions(io.Discard)
	opts.Isolated = true
	prov := provisiontest.New()
	var got provision.Request
	prov.OnCreate = func(req provision.Request, _ *provision.Cluster) { got = req }
	if _, err := Create(t.Context(), prov, opts); err != nil {
		t.Fatal(err)
	}
	if !got.Isolated {
		t.Error("the provisioner was not asked for an isolated network")
	}
	// Pod traffic between nodes crosses a Docker internal network only encapsulated.
	for _, f := range []string{StateControlPlane, StateWorker} {
		doc, err := config.LoadFile(filepath.Join(e.stateDir, f))
		if err != nil {
			t.Fatal(err)
		}
		if b := doc.Config.Cluster.Network.CNI.Backend; b != config.FlannelVXLAN {
			t.Errorf("%s: flannel backend %q, want vxlan", f, b)
		}
	}
}

func TestCreateRefusals(t *testing.T) {
	e := newEnv(t)
	if err := os.MkdirAll(e.stateDir, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(e.stateDir, StateWorker), []byte("old"), 0o600); err != nil {
		t.Fatal(err)
	}
	prov := provisiontest.New()
	for _, tc := range []struct {
		change func(*CreateOptions)
		want   string
	}{
		{func(o *CreateOptions) { o.Name = "Bad_Name" }, "not valid"},
		{func(o *CreateOptions) { o.MemoryMB = -1 }, "cannot be negative"},
		{func(o *CreateOptions) { o.StateDir = "" }, "state directory"},
		{func(o *CreateOptions) { o.KubernetesVersion = "1.37" }, "MAJOR.MINOR.PATCH"},
		{func(o *CreateOptions) {
			o.Patches = []patch.Patch{mustPatch(t, `{"machine": {"type": "router"}}`)}
		}, "machine.type"},
		{func(*CreateOptions) {}, "holds files of an earlier cluster"},
	} {
		opts := e.createOptions(io.Discard)
		tc.change(&opts)
		if _, err := Create(t.Context(), prov, opts); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Create: %v, want %q", err, tc.want)
		}
	}
	if len(prov.Requests) != 0 {
		t.Errorf("refused creates reached the provisioner: %d", len(prov.Requests))
	}
	if data, _ := os.ReadFile(filepath.Join(e.stateDir, StateWorker)); string(data) != "old" {
		t.Error("a refused create overwrote a stale state directory")
	}
}

func mustPatch(t *testing.T, s string) patch.Patch {
	t.Helper()
	p, err := patch.LoadAll([]string{s})
	if err != nil {
		t.Fatal(err)
	}
	return p[0]
}

func TestCreateProvisionerFailureRemovesStateFiles(t *testing.T) {
	e := newEnv(t)
	prov := provisiontest.New()
	prov.FailWith = errors.New("docker run: no luck")
	var out bytes.Buffer
	_, err := Create(t.Context(), prov, e.createOptions(&out))
	if err == nil || !strings.Contains(err.Error(), "no luck") {
		t.Fatalf("Create: %v", err)
	}
	var ce *CreateError
	if errors.As(err, &ce) {
		t.Errorf("a failure before the nodes started is a CreateError: %v", err)
	}
	if _, err := os.Stat(e.stateDir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("state directory after a failed create: %v\n%s", err, out.String())
	}
	if user := loadClient(t, e.clientConfig); !slices.Equal(user.Names(), []string{"other"}) {
		t.Errorf("client config after a failed create: %v", user.Names())
	}
}

// A kubeconfig of the user's: another cluster's context, current, and entries of an
// earlier cluster "plinth" that the merge replaces.
const userKubeconfig = "apiVersion: v1\nkind: Config\n" +
	"clusters:\n- name: mine\n  cluster: {server: https://192.0.2.9:6443}\n- name: plinth\n  cluster: {server: https://old:6443}\n" +
	"users:\n- name: admin@plinth\n  user: {token: old}\n- name: me\n  user: {token: mine}\n" +
	"contexts:\n- name: plinth\n  context: {cluster: plinth, user: admin@plinth}\n- name: mine\n  context: {cluster: mine, user: me}\n" +
	"current-context: mine\n"

func TestCreateWait(t *testing.T) {
	for _, tc := range []struct {
		name        string
		node        *provisiontest.Node
		healthErr   error
		retain      bool
		interrupt   bool
		wantErr     string
		wantCreated bool // the cluster stays
	}{
		{name: "healthy", node: &provisiontest.Node{}, wantCreated: true},
		{name: "bootstrap fails", node: &provisiontest.Node{BootstrapErr: status.Error(codes.Internal, "etcd would not start")}, wantErr: "bootstrap plinth-controlplane-1: etcd would not start"},
		{name: "bootstrap fails, retained", node: &provisiontest.Node{BootstrapErr: status.Error(codes.Internal, "etcd would not start")}, retain: true,
			wantErr: "etcd would not start", wantCreated: true},
		{name: "unhealthy", node: &provisiontest.Node{}, healthErr: errors.New("CoreDNS is not ready"), wantErr: "CoreDNS is not ready"},
		{name: "interrupted", interrupt: true, wantErr: context.Canceled.Error()},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fastWait(t)
			e := newEnv(t)
			if err := os.MkdirAll(filepath.Dir(e.kubeconfig), 0o700); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(e.kubeconfig, []byte(userKubeconfig), 0o600); err != nil {
				t.Fatal(err)
			}
			prov := provisiontest.New()
			ctx, cancel := context.WithCancel(t.Context())
			defer cancel()
			if tc.interrupt {
				// Ctrl-C right after the nodes started: the wait for the node API ends at once.
				prov.OnCreate = func(provision.Request, *provision.Cluster) { cancel() }
			} else {
				provisiontest.ServeFirstControlPlane(t, prov, tc.node)
			}
			var out bytes.Buffer
			opts := e.createOptions(&out)
			opts.Wait, opts.Retain, opts.RemoveNote = true, tc.retain, "finish it with destroy"
			var expected health.Expect
			var merged string
			opts.CheckHealth = func(_ context.Context, kubeconfig []byte, server string, expect health.Expect, w io.Writer) error {
				expected = expect
				data, _ := os.ReadFile(e.kubeconfig)
				merged = string(data)
				if !bytes.Contains(kubeconfig, []byte(server)) || server != "https://127.0.0.1:41002" {
					t.Errorf("health check through %s with\n%s", server, kubeconfig)
				}
				return tc.healthErr
			}
			failures := 0
			opts.OnFailure = func() { failures++ }

			res, err := Create(ctx, prov, opts)
			if tc.wantErr == "" {
				if err != nil || !res.Bootstrapped {
					t.Fatalf("Create: %v, %+v\n%s", err, res, out.String())
				}
				if expected.Nodes != 2 || expected.ControlPlanes != 1 || expected.EtcdMembers == nil {
					t.Errorf("health expected %+v", expected)
				}
				if !strings.Contains(merged, "https://127.0.0.1:41002") || !strings.Contains(merged, "current-context: plinth") || !strings.Contains(merged, "name: mine") {
					t.Errorf("merged kubeconfig:\n%s", merged)
				}
				if failures != 0 || len(prov.LogsRead) != 0 {
					t.Errorf("a healthy create failed %d times, read logs %v", failures, prov.LogsRead)
				}
				return
			}
			var ce *CreateError
			if !errors.As(err, &ce) || !strings.Contains(ce.Err.Error(), tc.wantErr) || ce.Retained != tc.retain || ce.RemoveErr != nil {
				t.Fatalf("Create: %#v, want a CreateError of %q\n%s", err, tc.wantErr, out.String())
			}
			if tc.interrupt && !errors.Is(err, context.Canceled) {
				t.Errorf("an interrupted create: %v, want context.Canceled", err)
			}
			if failures != 1 {
				t.Errorf("OnFailure called %d times", failures)
			}
			if want := []provisiontest.Call{{Name: "plinth-controlplane-1"}, {Name: "plinth-worker-1"}}; !slices.Equal(prov.LogsRead, want) {
				t.Errorf("Logs calls %+v, want %+v (a context not ended)", prov.LogsRead, want)
			}
			s := out.String()
			if !strings.Contains(s, "last 50 log lines of plinth-worker-1:\nfake log line of plinth-worker-1") {
				t.Errorf("progress lacks the logs:\n%s", s)
			}
			user := loadClient(t, e.clientConfig)
			got, _ := kubeconfig.ReadFile(e.kubeconfig)
			want, _ := kubeconfig.Parse([]byte(userKubeconfig))
			if tc.wantCreated {
				if len(prov.Destroyed) != 0 || user.Context != "plinth" || strings.Contains(s, "removing cluster") {
					t.Errorf("a retained cluster was removed: %v, context %q\n%s", prov.Destroyed, user.Context, s)
				}
				for _, file := range StateFiles {
					if _, err := os.Stat(filepath.Join(e.stateDir, file)); err != nil {
						t.Error(err)
					}
				}
				return
			}
			if !strings.Contains(s, "removing cluster \"plinth\" (finish it with destroy)") || strings.Index(s, "fake log line") > strings.Index(s, "fake: removed plinth") {
				t.Errorf("progress of the removal:\n%s", s)
			}
			if want := []provisiontest.Call{{Name: "plinth"}}; !slices.Equal(prov.Destroyed, want) {
				t.Errorf("Destroy calls %+v, want %+v (a context not ended)", prov.Destroyed, want)
			}
			if _, err := os.Stat(e.stateDir); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("state directory after a failed create: %v", err)
			}
			if !slices.Equal(user.Names(), []string{"other"}) || user.Context != "other" {
				t.Errorf("client config after a failed create: contexts %v, current %q", user.Names(), user.Context)
			}
			if !reflect.DeepEqual(got, want) {
				data, _ := os.ReadFile(e.kubeconfig)
				t.Errorf("kubeconfig after a failed create:\n%s\nwant it as before:\n%s", data, userKubeconfig)
			}
		})
	}
}

// TestCreateWaitWithoutKubernetes: a cluster whose image has no Kubernetes is up once
// every node's API answers, at the node's own endpoint or through the first control
// plane; nothing is bootstrapped and no kubeconfig is merged.
func TestCreateWaitWithoutKubernetes(t *testing.T) {
	fastWait(t)
	e := newEnv(t)
	prov := provisiontest.New()
	node := &provisiontest.Node{}
	provisiontest.ServeFirstControlPlane(t, prov, node)
	serve := prov.OnCreate
	prov.OnCreate = func(req provision.Request, c *provision.Cluster) {
		serve(req, c)
		c.NoKubernetes = true
		// Reached on its own address, as a QEMU node is (the fake's is 127.0.0.1).
		c.FirstControlPlane().Host = "127.0.0.1"
	}
	var out bytes.Buffer
	opts := e.createOptions(&out)
	opts.Wait = true
	opts.CheckHealth = func(context.Context, []byte, string, health.Expect, io.Writer) error {
		t.Error("a cluster without Kubernetes was health-checked")
		return nil
	}
	res, err := Create(t.Context(), prov, opts)
	if err != nil {
		t.Fatalf("Create: %v\n%s", err, out.String())
	}
	if !res.NodesUp || res.Bootstrapped || node.Bootstraps() != 0 {
		t.Errorf("nodes up %v, bootstrapped %v, %d bootstrap calls", res.NodesUp, res.Bootstrapped, node.Bootstraps())
	}
	first := res.Cluster.FirstControlPlane().APIEndpoint()
	s := out.String()
	for _, want := range []string{
		"waiting for the node API of plinth-controlplane-1 on " + first + "  up after",
		"waiting for the node API of plinth-worker-1 on " + first + " (to 10.5.0.3)  up after",
		"plinth-controlplane-1  controlplane  10.5.0.2  running  " + first + ", 127.0.0.1:41002\n",
	} {
		if !strings.Contains(s, want) {
			t.Errorf("progress lacks %q:\n%s", want, s)
		}
	}
	if _, err := os.Stat(e.kubeconfig); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a kubeconfig was written: %v", err)
	}
}

func TestWait(t *testing.T) {
	fastWait(t)
	e := newEnv(t)
	prov := provisiontest.New()
	node := &provisiontest.Node{Already: true}
	provisiontest.ServeFirstControlPlane(t, prov, node)
	res, err := Create(t.Context(), prov, e.createOptions(io.Discard))
	if err != nil {
		t.Fatal(err)
	}
	cc, err := LoadClientContext(e.stateDir, "plinth")
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	checked := false
	err = Wait(t.Context(), res.Cluster, cc, WaitOptions{KubeconfigPath: e.kubeconfig, Progress: &out,
		CheckHealth: func(context.Context, []byte, string, health.Expect, io.Writer) error { checked = true; return nil }})
	if err != nil || !checked || node.Bootstraps() != 1 {
		t.Fatalf("Wait: %v, health checked %v, %d bootstraps\n%s", err, checked, node.Bootstraps(), out.String())
	}
	if !strings.Contains(out.String(), "bootstrapped before") || !strings.Contains(out.String(), `merged kubeconfig context "plinth" into `+e.kubeconfig) {
		t.Errorf("progress:\n%s", out.String())
	}
}

func TestListAndLogs(t *testing.T) {
	prov := provisiontest.New()
	prov.Clusters["b"] = &provision.Cluster{Name: "b", CIDR: "10.6.0.0/24",
		Nodes:        []provision.Node{{Name: "b-controlplane-1", State: "running"}, {Name: "broken", State: "exited"}},
		LoadBalancer: &provision.Node{Name: "b-lb"}}
	prov.Clusters["a"] = &provision.Cluster{Name: "a", CIDR: "10.5.0.0/24", Nodes: []provision.Node{{Name: "a-controlplane-1", State: "running"}}}
	list, err := List(t.Context(), prov)
	if err != nil {
		t.Fatal(err)
	}
	if want := []Summary{{"a", "10.5.0.0/24", 1, 1}, {"b", "10.6.0.0/24", 2, 1}}; !slices.Equal(list, want) {
		t.Errorf("List: %+v, want %+v", list, want)
	}

	var out bytes.Buffer
	WriteLogs(t.Context(), &out, prov, prov.Clusters["b"], 7)
	want := "\nlast 7 log lines of b-controlplane-1:\nfake log line of b-controlplane-1\n" +
		"\nthe log of broken cannot be read: no such container\n" +
		"\nlast 7 log lines of b-lb:\nfake log line of b-lb\n"
	if out.String() != want {
		t.Errorf("WriteLogs:\n%s\nwant:\n%s", out.String(), want)
	}
}

func TestRemoveStateFilesLeavesOtherFiles(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "state")
	if err := writeStateFiles(dir, io.Discard, []stateFile{{StateSecrets, []byte("s")}, {StatePlinthconfig, []byte("p")}}); err != nil {
		t.Fatal(err)
	}
	if err := checkStateDirFree(dir, "demo"); err == nil || !strings.Contains(err.Error(), StateSecrets) {
		t.Errorf("checkStateDirFree of a used directory: %v", err)
	}
	if err := os.WriteFile(filepath.Join(dir, "notes"), []byte("mine"), 0o600); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	if err := removeStateFiles(dir, &out); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "other files are left there") {
		t.Errorf("progress: %s", out.String())
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 || entries[0].Name() != "notes" {
		t.Errorf("left in the state directory: %v", entries)
	}
	if err := checkStateDirFree(dir, "demo"); err != nil {
		t.Errorf("checkStateDirFree after the removal: %v", err)
	}
}
