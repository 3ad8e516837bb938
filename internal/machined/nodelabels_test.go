package machined

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/plinthos/plinth/internal/clock"
	"github.com/plinthos/plinth/internal/k8s/kubeclient"
	"github.com/plinthos/plinth/internal/k8s/objects"
	"github.com/plinthos/plinth/internal/k8s/paths"
	"github.com/plinthos/plinth/internal/k8s/render"
	"github.com/plinthos/plinth/internal/resource"
	"github.com/plinthos/plinth/internal/resources"
	"github.com/plinthos/plinth/pkg/config"
)

// applyMergePatch applies the metadata.labels and metadata.annotations of a JSON merge
// patch to a Node's maps, as the API server does (null removes a key).
func applyMergePatch(t *testing.T, patch []byte, labels, annotations map[string]string) {
	t.Helper()
	var p struct {
		Metadata map[string]map[string]*string `json:"metadata"`
	}
	dec := json.NewDecoder(bytes.NewReader(patch))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&p); err != nil {
		t.Fatalf("patch %s: %v", patch, err)
	}
	for field, m := range map[string]map[string]string{"labels": labels, "annotations": annotations} {
		for k, v := range p.Metadata[field] {
			if v == nil {
				delete(m, k)
			} else {
				m[k] = *v
			}
		}
		delete(p.Metadata, field)
	}
	if len(p.Metadata) > 0 {
		t.Fatalf("patch %s changes more than labels and annotations", patch)
	}
}

// TestPlanNodeLabels is the regression test of issue 8: a no-reboot apply that changed
// machine.kubelet.nodeLabels restarted kubelet, which applies --node-labels only when it
// registers the Node, so the Node kept its old labels. The plan adds and updates the
// configured labels, removes those an earlier configuration set (the owned annotation) and
// no longer has, and leaves every other label alone.
func TestPlanNodeLabels(t *testing.T) {
	base := map[string]string{"kubernetes.io/hostname": "w1", "kubernetes.io/os": "linux"}
	with := func(extra map[string]string) map[string]string {
		m := maps.Clone(base)
		maps.Copy(m, extra)
		return m
	}
	owned := func(keys string) map[string]string {
		return map[string]string{ownedLabelsAnnotation: keys, "other": "x"}
	}
	for _, tc := range []struct {
		name                  string
		labels, annotations   map[string]string
		wanted                map[string]string
		settable              func(string) bool
		wantLabels, wantAnnot map[string]string
		noop                  bool
	}{
		{
			name:   "a label added by a no-reboot apply is put on the Node",
			labels: with(map[string]string{"pool": "green"}), annotations: owned("pool"),
			wanted:     map[string]string{"pool": "green", "plinth.dev/e2e-pool": "blue"},
			wantLabels: with(map[string]string{"pool": "green", "plinth.dev/e2e-pool": "blue"}),
			wantAnnot:  owned("plinth.dev/e2e-pool,pool"),
		},
		{
			name:   "a changed value is updated",
			labels: with(map[string]string{"pool": "green"}), annotations: owned("pool"),
			wanted:     map[string]string{"pool": "blue"},
			wantLabels: with(map[string]string{"pool": "blue"}),
			wantAnnot:  owned("pool"),
		},
		{
			name:   "a label the configuration no longer has is removed, one someone else set stays",
			labels: with(map[string]string{"pool": "green", "zone": "a", "team": "x"}), annotations: owned("pool,zone"),
			wanted:     map[string]string{"pool": "green"},
			wantLabels: with(map[string]string{"pool": "green", "team": "x"}),
			wantAnnot:  owned("pool"),
		},
		{
			name:   "all labels gone from the configuration: owned ones removed, the annotation too",
			labels: with(map[string]string{"pool": "green", "team": "x"}), annotations: owned("pool"),
			wanted:     nil,
			wantLabels: with(map[string]string{"team": "x"}),
			wantAnnot:  map[string]string{"other": "x"},
		},
		{
			name:   "first pass after kubelet registered with --node-labels: the labels are there, only the annotation is written",
			labels: with(map[string]string{"pool": "green"}), annotations: nil,
			wanted:     map[string]string{"pool": "green"},
			wantLabels: with(map[string]string{"pool": "green"}),
			wantAnnot:  map[string]string{ownedLabelsAnnotation: "pool"},
		},
		{
			name:   "a label someone else set that the configuration now has becomes owned, with the configured value",
			labels: with(map[string]string{"team": "x"}), annotations: nil,
			wanted:     map[string]string{"team": "y"},
			wantLabels: with(map[string]string{"team": "y"}),
			wantAnnot:  map[string]string{ownedLabelsAnnotation: "team"},
		},
		{
			name:   "an owned label someone removed by hand is not removed again; it leaves the owned list",
			labels: with(nil), annotations: owned("gone,pool"),
			wanted:     map[string]string{"pool": "green"},
			wantLabels: with(map[string]string{"pool": "green"}),
			wantAnnot:  owned("pool"),
		},
		{
			name:   "nothing to do",
			labels: with(map[string]string{"pool": "green"}), annotations: owned("pool"),
			wanted:     map[string]string{"pool": "green"},
			wantLabels: with(map[string]string{"pool": "green"}),
			wantAnnot:  owned("pool"),
			noop:       true,
		},
		{
			name:   "nothing configured, nothing owned: nothing to do",
			labels: with(map[string]string{"team": "x"}), annotations: nil,
			wantLabels: with(map[string]string{"team": "x"}),
			wantAnnot:  map[string]string{},
			noop:       true,
		},
		{
			name:   "a worker's own credentials: restricted keys are neither set nor removed nor owned",
			labels: with(map[string]string{"node-role.kubernetes.io/ingress": "", "pool": "green"}), annotations: owned("node-role.kubernetes.io/ingress,pool"),
			wanted:     map[string]string{"node-role.kubernetes.io/worker": "", "node.kubernetes.io/pool": "a"},
			settable:   selfSettableLabel,
			wantLabels: with(map[string]string{"node-role.kubernetes.io/ingress": "", "node.kubernetes.io/pool": "a"}),
			wantAnnot:  owned("node.kubernetes.io/pool"),
		},
		{
			name:   "a control plane's admin credentials set any key",
			labels: with(nil), annotations: nil,
			wanted:     map[string]string{"node-role.kubernetes.io/ingress": ""},
			wantLabels: with(map[string]string{"node-role.kubernetes.io/ingress": ""}),
			wantAnnot:  map[string]string{ownedLabelsAnnotation: "node-role.kubernetes.io/ingress"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			labels, annotations := maps.Clone(tc.labels), maps.Clone(tc.annotations)
			if annotations == nil {
				annotations = map[string]string{}
			}
			c := planNodeLabels(tc.labels, tc.annotations, tc.wanted, tc.settable)
			if c.empty() != tc.noop {
				t.Fatalf("empty() = %v, want %v: %+v", c.empty(), tc.noop, c)
			}
			patch, err := c.mergePatch()
			if err != nil {
				t.Fatal(err)
			}
			applyMergePatch(t, patch, labels, annotations)
			if !reflect.DeepEqual(labels, tc.wantLabels) {
				t.Errorf("labels after the patch %s:\n got %v\nwant %v", patch, labels, tc.wantLabels)
			}
			if !reflect.DeepEqual(annotations, tc.wantAnnot) {
				t.Errorf("annotations after the patch %s:\n got %v\nwant %v", patch, annotations, tc.wantAnnot)
			}
			// The plan is a fixed point: planned again on the result, there is nothing to do.
			if again := planNodeLabels(labels, annotations, tc.wanted, tc.settable); !again.empty() {
				t.Errorf("a second pass would change %+v", again)
			}
		})
	}
}

func TestSelfSettableLabel(t *testing.T) {
	for key, want := range map[string]bool{
		"pool": true, "plinth.dev/e2e-pool": true, "node.kubernetes.io/pool": true, "topology.kubernetes.io/zone": true,
		"node-role.kubernetes.io/worker": false, "node-restriction.kubernetes.io/x": false, "example.k8s.io/x": false,
	} {
		if got := selfSettableLabel(key); got != want {
			t.Errorf("selfSettableLabel(%q) = %v, want %v", key, got, want)
		}
	}
}

// fakeNode is a Node object behind a fake API.
type fakeNode struct {
	mu          sync.Mutex
	registered  bool
	labels      map[string]string
	annotations map[string]string
	kubeconfigs []string // of each request
	patches     int
}

// client is the nodeLabeler's client factory: clients of f with a kubeconfig.
func (f *fakeNode) client(t *testing.T) func(kubeconfig string) (nodeAPI, error) {
	return func(kubeconfig string) (nodeAPI, error) {
		return &fakeNodeClient{t: t, node: f, kubeconfig: kubeconfig}, nil
	}
}

// fakeNodeClient is a client of a fakeNode with a kubeconfig.
type fakeNodeClient struct {
	t          *testing.T
	node       *fakeNode
	kubeconfig string
}

func (c *fakeNodeClient) GetNode(_ context.Context, name string) (*objects.Node, error) {
	f := c.node
	f.mu.Lock()
	defer f.mu.Unlock()
	f.kubeconfigs = append(f.kubeconfigs, c.kubeconfig)
	if name != "w1" || !f.registered {
		return nil, &kubeclient.APIError{Method: "GET", Path: "/api/v1/nodes/" + name, StatusCode: http.StatusNotFound, Reason: "NotFound", Message: `nodes "` + name + `" not found`}
	}
	// A copy, as a client decodes it.
	return &objects.Node{Metadata: objects.ObjectMeta{Name: name, Labels: maps.Clone(f.labels), Annotations: maps.Clone(f.annotations)}}, nil
}

func (c *fakeNodeClient) MergePatchNode(_ context.Context, name string, patch []byte) error {
	f := c.node
	f.mu.Lock()
	defer f.mu.Unlock()
	f.kubeconfigs = append(f.kubeconfigs, c.kubeconfig)
	if name != "w1" || !f.registered {
		return fmt.Errorf("patch of node %s that is not there", name)
	}
	applyMergePatch(c.t, patch, f.labels, f.annotations)
	f.patches++
	return nil
}

func (c *fakeNodeClient) Close() {}

func (f *fakeNode) state() (map[string]string, map[string]string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return maps.Clone(f.labels), maps.Clone(f.annotations)
}

// TestNodeLabelerFollowsConfig runs the node-labels service against a fake Node: it waits
// for kubelet to register the Node, then follows each change of the MachineConfig
// resource, with the kubeconfig of the machine's type.
func TestNodeLabelerFollowsConfig(t *testing.T) {
	store := resource.NewStore(clock.Real{})
	node := &fakeNode{labels: map[string]string{"kubernetes.io/hostname": "w1"}, annotations: map[string]string{}}
	l := nodeLabeler{store: store, nodeName: func() string { return "w1" }, client: node.client(t),
		retry: 10 * time.Millisecond, resync: time.Hour}
	ctx, cancel := context.WithCancel(context.Background())
	var logs syncBuffer
	done := make(chan error, 1)
	go func() { done <- l.Run(ctx, &logs) }()
	defer func() {
		cancel()
		if err := recv(t, done, "end of the service"); err != nil {
			t.Errorf("Run: %v", err)
		}
	}()

	worker := func(labels map[string]string) resources.MachineConfigSpec {
		cfg := &config.MachineConfig{}
		cfg.Machine.Type = config.TypeWorker
		cfg.Machine.Kubelet.NodeLabels = labels
		return resources.MachineConfigSpec{Config: cfg}
	}
	res := resource.New(resources.NamespaceConfig, resources.MachineConfigType, resources.ActiveID, worker(map[string]string{"pool": "green"}))
	if err := store.Create(res); err != nil {
		t.Fatal(err)
	}
	waitFor := func(what string, want map[string]string, wantOwned string) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for {
			labels, annotations := node.state()
			if reflect.DeepEqual(labels, want) && annotations[ownedLabelsAnnotation] == wantOwned {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: labels %v, annotations %v; want labels %v, owned %q\nlog:\n%s", what, labels, annotations, want, wantOwned, logs.String())
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	// Not registered yet: the service waits, and says so once.
	time.Sleep(50 * time.Millisecond)
	node.mu.Lock()
	node.registered = true
	node.labels["pool"] = "green" // kubelet registered with --node-labels
	node.mu.Unlock()
	waitFor("after the registration", map[string]string{"kubernetes.io/hostname": "w1", "pool": "green"}, "pool")
	if n := strings.Count(logs.String(), "has not registered it yet"); n != 1 {
		t.Errorf("said %d times that the node is not registered:\n%s", n, logs.String())
	}

	// A no-reboot apply: a label added, one changed; a label set by someone else stays.
	node.mu.Lock()
	node.labels["team"] = "x"
	node.mu.Unlock()
	*res.TypedSpec() = worker(map[string]string{"pool": "blue", "plinth.dev/e2e-pool": "blue", "node-role.kubernetes.io/worker": ""})
	if err := store.Update(res); err != nil {
		t.Fatal(err)
	}
	waitFor("after the apply", map[string]string{"kubernetes.io/hostname": "w1", "pool": "blue", "plinth.dev/e2e-pool": "blue", "team": "x"}, "plinth.dev/e2e-pool,pool")
	if !strings.Contains(logs.String(), "node-role.kubernetes.io/worker: left alone") {
		t.Errorf("the log does not say that the worker role label was left alone:\n%s", logs.String())
	}

	// Another apply drops a label: it goes, the one someone else set stays.
	*res.TypedSpec() = worker(map[string]string{"plinth.dev/e2e-pool": "blue"})
	if err := store.Update(res); err != nil {
		t.Fatal(err)
	}
	waitFor("after the second apply", map[string]string{"kubernetes.io/hostname": "w1", "plinth.dev/e2e-pool": "blue", "team": "x"}, "plinth.dev/e2e-pool")

	node.mu.Lock()
	defer node.mu.Unlock()
	for _, kc := range node.kubeconfigs {
		if kc != render.WorkerKubeconfig {
			t.Errorf("a worker used the kubeconfig %s, want kubelet's %s", kc, render.WorkerKubeconfig)
		}
	}
	if node.patches != 3 {
		t.Errorf("%d patches, want 3 (one per change)", node.patches)
	}
}

// TestNodeLabelerControlPlaneUsesAdmin: a control plane sets even the labels a node may
// not set on itself, with the admin kubeconfig.
func TestNodeLabelerControlPlaneUsesAdmin(t *testing.T) {
	store := resource.NewStore(clock.Real{})
	node := &fakeNode{registered: true, labels: map[string]string{}, annotations: map[string]string{}}
	l := nodeLabeler{store: store, nodeName: func() string { return "w1" }, client: node.client(t), retry: 10 * time.Millisecond, resync: time.Hour}
	cfg := &config.MachineConfig{}
	cfg.Machine.Type = config.TypeControlPlane
	cfg.Machine.Kubelet.NodeLabels = map[string]string{"node-role.kubernetes.io/ingress": ""}
	if err := store.Create(resource.New(resources.NamespaceConfig, resources.MachineConfigType, resources.ActiveID, resources.MachineConfigSpec{Config: cfg})); err != nil {
		t.Fatal(err)
	}
	did, note, err := l.once(context.Background())
	if err != nil || note != "" || !strings.Contains(did, "set node-role.kubernetes.io/ingress=") {
		t.Fatalf("once: %q, %q, %v", did, note, err)
	}
	labels, _ := node.state()
	if _, ok := labels["node-role.kubernetes.io/ingress"]; !ok {
		t.Errorf("labels %v", labels)
	}
	if want := paths.PKIFile(paths.AdminKubeconfig); !reflect.DeepEqual(node.kubeconfigs, []string{want, want}) {
		t.Errorf("kubeconfigs %v, want the admin one %s", node.kubeconfigs, want)
	}
}

// syncBuffer is a bytes.Buffer safe for a writer and a reader in two goroutines.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
