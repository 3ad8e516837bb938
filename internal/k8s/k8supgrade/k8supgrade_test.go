package k8supgrade

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/plinthos/plinth/pkg/config"
)

func nodeConfig(version string, cp bool) *config.MachineConfig {
	im := config.ImagesFor(version)
	cfg := &config.MachineConfig{}
	cfg.Machine.Type = config.TypeWorker
	if cp {
		cfg.Machine.Type = config.TypeControlPlane
	}
	cfg.Machine.Kubelet.Image = im.Kubelet
	cfg.Cluster.APIServer.Image = im.APIServer
	cfg.Cluster.ControllerManager.Image = im.ControllerManager
	cfg.Cluster.Scheduler.Image = im.Scheduler
	cfg.Cluster.Proxy.Image = im.Proxy
	return cfg
}

func cluster(version string) []Node {
	return []Node{
		{Name: "w1", Address: "10.5.0.4", Config: nodeConfig(version, false)},
		{Name: "cp2", Address: "10.5.0.3", ControlPlane: true, Config: nodeConfig(version, true)},
		{Name: "cp1", Address: "10.5.0.2", ControlPlane: true, Config: nodeConfig(version, true)},
	}
}

func TestPlanOrder(t *testing.T) {
	steps, err := Plan(cluster("v1.36.3"), "1.37.2")
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, s := range steps {
		got = append(got, string(s.Component)+"@"+s.Node)
		if s.From != strings.Replace(s.To, "v1.37.2", "v1.36.3", 1) || !strings.HasSuffix(s.To, ":v1.37.2") {
			t.Errorf("step %s: %s -> %s", s.Component, s.From, s.To)
		}
	}
	want := []string{"kube-apiserver@cp1", "kube-apiserver@cp2", "kube-controller-manager@cp1", "kube-controller-manager@cp2",
		"kube-scheduler@cp1", "kube-scheduler@cp2", "kube-proxy@", "kubelet@cp1", "kubelet@cp2", "kubelet@w1"}
	if !slices.Equal(got, want) {
		t.Fatalf("plan:\n  %v\nwant\n  %v", got, want)
	}
	if imgs := NeededImages(steps, "w1"); !slices.Equal(imgs, []string{"plinth.local/kube-proxy:v1.37.2", "plinth.local/kubelet:v1.37.2"}) {
		t.Errorf("a worker needs %v", imgs)
	}
	if imgs := NeededImages(steps, "cp1"); len(imgs) != 5 {
		t.Errorf("a control plane needs %v", imgs)
	}
}

func TestPlanRefusals(t *testing.T) {
	for _, tc := range []struct {
		from, to, want string
		edit           func([]Node)
	}{
		{from: "v1.37.2", to: "v1.36.3", want: "downgrade"},
		{from: "v1.35.4", to: "v1.37.2", want: "one minor version at a time (to v1.36.x first)"},
		{from: "v1.37.2", to: "v2.0.0", want: "one minor version at a time"},
		{from: "v1.36.3", to: "1.37", want: "not a Kubernetes version"},
		{from: "v1.36.3", to: "v1.37.2", want: "pinned by digest", edit: func(ns []Node) {
			ns[1].Config.Cluster.Scheduler.Image = "plinth.local/kube-scheduler@sha256:aaaa"
		}},
		{from: "v1.36.3", to: "v1.37.2", want: "not a Kubernetes version, so the move cannot be checked", edit: func(ns []Node) {
			ns[0].Config.Machine.Kubelet.Image = "example.org/kubelet:latest"
		}},
		{from: "v1.36.3", to: "v1.37.2", want: "no control-plane node", edit: func(ns []Node) {
			ns[1].ControlPlane, ns[2].ControlPlane = false, false
		}},
	} {
		nodes := cluster(tc.from)
		if tc.edit != nil {
			tc.edit(nodes)
		}
		_, err := Plan(nodes, tc.to)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s -> %s: %v; want an error with %q", tc.from, tc.to, err, tc.want)
		}
	}
	// A registry's own images keep their name; a half-done upgrade has done steps.
	nodes := cluster("v1.36.3")
	nodes[2].Config.Cluster.APIServer.Image = "registry.example:5000/k8s/kube-apiserver:v1.37.2"
	steps, err := Plan(nodes, "v1.37.2")
	if err != nil {
		t.Fatal(err)
	}
	if s := steps[0]; !s.Done() || s.Node != "cp1" || s.To != "registry.example:5000/k8s/kube-apiserver:v1.37.2" {
		t.Fatalf("first step %+v, want cp1's API server done with the registry's name", s)
	}
}

// fakeCluster records applies and fails the waits it is told to.
type fakeCluster struct {
	applied []string             // node:component=image, for the changed component
	state   map[string]string    // node/component -> image as applied
	fail    map[string]bool      // node/component -> its wait for the new image fails
	prev    map[string]*Snapshot // for diffing applies
}

type Snapshot struct{ images map[Component]string }

func snapshot(cfg *config.MachineConfig) *Snapshot {
	s := &Snapshot{images: map[Component]string{}}
	for _, c := range []Component{APIServer, ControllerManager, Scheduler, Proxy, Kubelet} {
		f, _ := Field(cfg, c)
		s.images[c] = *f
	}
	return s
}

func (f *fakeCluster) Apply(_ context.Context, n Node, cfg *config.MachineConfig) error {
	now := snapshot(cfg)
	before := f.prev[n.Name]
	for _, c := range []Component{APIServer, ControllerManager, Scheduler, Proxy, Kubelet} {
		if before == nil || before.images[c] != now.images[c] {
			f.applied = append(f.applied, fmt.Sprintf("%s:%s=%s", n.Name, c, now.images[c][strings.LastIndex(now.images[c], ":")+1:]))
		}
		f.state[n.Name+"/"+string(c)] = now.images[c]
	}
	f.prev[n.Name] = now
	return nil
}

func (f *fakeCluster) check(ctx context.Context, key, image string) error {
	if f.state[key] != image {
		return fmt.Errorf("%s runs %s, not %s", key, f.state[key], image)
	}
	if f.fail[key] && strings.HasSuffix(image, "v1.37.2") {
		<-ctx.Done()
		return fmt.Errorf("%s not ready: %w", key, ctx.Err())
	}
	return nil
}

func (f *fakeCluster) WaitStaticPod(ctx context.Context, node string, c Component, image string) error {
	return f.check(ctx, node+"/"+string(c), image)
}

func (f *fakeCluster) WaitProxy(ctx context.Context, image string) error {
	for k, v := range f.state {
		if strings.HasSuffix(k, "/"+string(Proxy)) && v != image {
			return fmt.Errorf("%s runs %s", k, v)
		}
	}
	return f.check(ctx, "cluster/kube-proxy", image)
}

func (f *fakeCluster) WaitKubelet(ctx context.Context, node, version string) error {
	return f.check(ctx, node+"/kubelet", "plinth.local/kubelet:"+version)
}

func newRun(fail ...string) (Run, *fakeCluster) {
	nodes := cluster("v1.36.3")
	fc := &fakeCluster{state: map[string]string{"cluster/kube-proxy": "plinth.local/kube-proxy:v1.36.3"}, fail: map[string]bool{}, prev: map[string]*Snapshot{}}
	for _, n := range nodes {
		fc.prev[n.Name] = snapshot(n.Config)
	}
	for _, k := range fail {
		fc.fail[k] = true
	}
	return Run{Cluster: fc, Nodes: nodes, StepTimeout: 50 * time.Millisecond, Say: func(string, ...any) {}}, fc
}

// proxyAware makes the cluster-wide kube-proxy follow the control planes' configuration.
type proxyAware struct{ *fakeCluster }

func (p proxyAware) Apply(ctx context.Context, n Node, cfg *config.MachineConfig) error {
	if n.ControlPlane {
		p.state["cluster/kube-proxy"] = cfg.Cluster.Proxy.Image
	}
	return p.fakeCluster.Apply(ctx, n, cfg)
}

func TestRunUpgradesInOrder(t *testing.T) {
	r, fc := newRun()
	r.Cluster = proxyAware{fc}
	steps, err := Plan(r.Nodes, "v1.37.2")
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Do(context.Background(), steps); err != nil {
		t.Fatal(err)
	}
	want := []string{"cp1:kube-apiserver=v1.37.2", "cp2:kube-apiserver=v1.37.2", "cp1:kube-controller-manager=v1.37.2",
		"cp2:kube-controller-manager=v1.37.2", "cp1:kube-scheduler=v1.37.2", "cp2:kube-scheduler=v1.37.2",
		"cp1:kube-proxy=v1.37.2", "cp2:kube-proxy=v1.37.2", "w1:kube-proxy=v1.37.2",
		"cp1:kubelet=v1.37.2", "cp2:kubelet=v1.37.2", "w1:kubelet=v1.37.2"}
	if !slices.Equal(fc.applied, want) {
		t.Fatalf("applied\n  %v\nwant\n  %v", fc.applied, want)
	}
	// Run again: everything is done, nothing is applied.
	fc.applied = nil
	steps, err = Plan(r.Nodes, "v1.37.2")
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Do(context.Background(), steps); err != nil || len(fc.applied) != 0 {
		t.Fatalf("a second run applied %v (%v)", fc.applied, err)
	}
}

func TestFailedStepIsPutBackAndStops(t *testing.T) {
	r, fc := newRun("cp2/kube-controller-manager")
	r.Cluster = proxyAware{fc}
	steps, _ := Plan(r.Nodes, "v1.37.2")
	err := r.Do(context.Background(), steps)
	if err == nil || !strings.Contains(err.Error(), "kube-controller-manager on cp2 failed") ||
		!strings.Contains(err.Error(), "runs plinth.local/kube-controller-manager:v1.36.3 again") || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("error %v", err)
	}
	want := []string{"cp1:kube-apiserver=v1.37.2", "cp2:kube-apiserver=v1.37.2", "cp1:kube-controller-manager=v1.37.2",
		"cp2:kube-controller-manager=v1.37.2", "cp2:kube-controller-manager=v1.36.3"}
	if !slices.Equal(fc.applied, want) {
		t.Fatalf("applied\n  %v\nwant\n  %v", fc.applied, want)
	}
	if got := r.Nodes[1].Config.Cluster.ControllerManager.Image; got != "plinth.local/kube-controller-manager:v1.36.3" {
		t.Fatalf("cp2's configuration holds %s after the failed step", got)
	}
	// Run again after the cause is gone: the done steps are skipped.
	delete(fc.fail, "cp2/kube-controller-manager")
	fc.applied = nil
	steps, _ = Plan(r.Nodes, "v1.37.2")
	if err := r.Do(context.Background(), steps); err != nil {
		t.Fatal(err)
	}
	if fc.applied[0] != "cp2:kube-controller-manager=v1.37.2" {
		t.Fatalf("the second run began with %s", fc.applied[0])
	}
}

func TestFailedProxyIsPutBackEverywhere(t *testing.T) {
	r, fc := newRun("cluster/kube-proxy")
	r.Cluster = proxyAware{fc}
	steps, _ := Plan(r.Nodes, "v1.37.2")
	err := r.Do(context.Background(), steps)
	if err == nil || !strings.Contains(err.Error(), "kube-proxy failed") || !strings.Contains(err.Error(), "runs plinth.local/kube-proxy:v1.36.3 again") {
		t.Fatalf("error %v", err)
	}
	for _, n := range r.Nodes {
		if got := n.Config.Cluster.Proxy.Image; got != "plinth.local/kube-proxy:v1.36.3" {
			t.Errorf("%s: cluster.proxy.image %s after the failed step", n.Name, got)
		}
		if got := n.Config.Machine.Kubelet.Image; got != "plinth.local/kubelet:v1.36.3" {
			t.Errorf("%s: the kubelet moved after a failed step: %s", n.Name, got)
		}
	}
}

func TestParseDeprecated(t *testing.T) {
	lines := []string{
		`apiserver_requested_deprecated_apis{group="flowcontrol.apiserver.k8s.io",removed_release="1.38",resource="flowschemas",subresource="",version="v1beta3"} 1`,
		`apiserver_requested_deprecated_apis{group="",removed_release="",resource="componentstatuses",subresource="",version="v1"} 1`,
		`apiserver_requested_deprecated_apis{group="batch",removed_release="1.40",resource="jobs",subresource="status",version="v1beta9"} 1`,
		`apiserver_requested_deprecated_apis{group="x",removed_release="1.37",resource="gone",subresource="",version="v1"} 0`,
	}
	apis := ParseDeprecated(lines)
	if len(apis) != 3 {
		t.Fatalf("parsed %v", apis)
	}
	if got := apis[0].String(); got != "flowcontrol.apiserver.k8s.io/v1beta3 flowschemas (removed in 1.38)" {
		t.Errorf("String() = %q", got)
	}
	if got := apis[1].String(); got != "v1 componentstatuses (deprecated)" {
		t.Errorf("String() = %q", got)
	}
	if got := apis[2].String(); got != "batch/v1beta9 jobs/status (removed in 1.40)" {
		t.Errorf("String() = %q", got)
	}
	v138, _ := ParseVersion("v1.38.0")
	removed := RemovedBy(apis, v138)
	if len(removed) != 1 || removed[0].Resource != "flowschemas" {
		t.Fatalf("removed by v1.38: %v", removed)
	}
	v137, _ := ParseVersion("v1.37.9")
	if r := RemovedBy(apis, v137); len(r) != 0 {
		t.Fatalf("removed by v1.37.9: %v", r)
	}
}
