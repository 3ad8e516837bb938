package drain

import (
	"context"
	"errors"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/plinthos/plinth/internal/k8s/kubeclient"
	"github.com/plinthos/plinth/internal/k8s/objects"
)

// fakeAPI is a node's pods; an evicted pod is gone after one more look.
type fakeAPI struct {
	mu       sync.Mutex
	patches  []string
	pods     []objects.RunningPod
	evicted  []string
	refuse   map[string]int // evictions refused (429) this many times
	goneNext map[string]bool
}

func pod(ns, name string, mutate ...func(*objects.RunningPod)) objects.RunningPod {
	p := objects.RunningPod{}
	p.Metadata.Namespace, p.Metadata.Name, p.Metadata.UID = ns, name, "uid-"+name
	p.Status.Phase = "Running"
	for _, m := range mutate {
		m(&p)
	}
	return p
}

func (f *fakeAPI) MergePatchNode(_ context.Context, name string, patch []byte) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.patches = append(f.patches, name+" "+string(patch))
	return nil
}

func (f *fakeAPI) ListPodsOn(context.Context, string) ([]objects.RunningPod, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.pods), nil
}

func (f *fakeAPI) GetPod(_ context.Context, ns, name string) (*objects.RunningPod, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	key := ns + "/" + name
	if f.goneNext[key] {
		return nil, &kubeclient.APIError{StatusCode: http.StatusNotFound}
	}
	if slices.Contains(f.evicted, key) {
		f.goneNext[key] = true
	}
	for _, p := range f.pods {
		if p.Metadata.Namespace == ns && p.Metadata.Name == name {
			return &p, nil
		}
	}
	return nil, &kubeclient.APIError{StatusCode: http.StatusNotFound}
}

func (f *fakeAPI) Evict(_ context.Context, ns, name string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	key := ns + "/" + name
	if f.refuse[key] > 0 {
		f.refuse[key]--
		return &kubeclient.APIError{StatusCode: http.StatusTooManyRequests}
	}
	f.evicted = append(f.evicted, key)
	return nil
}

func TestDrain(t *testing.T) {
	retry = 10 * time.Millisecond
	f := &fakeAPI{goneNext: map[string]bool{}, refuse: map[string]int{"default/web": 2}, pods: []objects.RunningPod{
		pod("default", "web"),
		pod("kube-system", "coredns-1"),
		pod("kube-system", "kube-proxy-x", func(p *objects.RunningPod) {
			p.Metadata.OwnerReferences = []objects.OwnerReference{{Kind: "DaemonSet", Name: "kube-proxy"}}
		}),
		pod("kube-system", "etcd-cp", func(p *objects.RunningPod) { p.Metadata.Annotations = map[string]string{mirrorAnnotation: "x"} }),
		pod("default", "job-done", func(p *objects.RunningPod) { p.Status.Phase = "Succeeded" }),
		pod("default", "leaving", func(p *objects.RunningPod) { p.Metadata.DeletionTimestamp = "2026-12-02T10:00:00Z" }),
	}}
	var said []string
	evicted, err := Drain(context.Background(), f, "w-1", func(format string, a ...any) { said = append(said, format) })
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"default/web", "kube-system/coredns-1"}; !slices.Equal(evicted, want) {
		t.Errorf("evicted %v, want %v", evicted, want)
	}
	if len(f.patches) != 1 || f.patches[0] != `w-1 {"spec":{"unschedulable":true}}` {
		t.Errorf("patches %v", f.patches)
	}
	if !strings.Contains(strings.Join(said, "\n"), "disruption budget") {
		t.Errorf("a refused eviction was not reported: %v", said)
	}
	if err := Cordon(context.Background(), f, "w-1", false); err != nil || f.patches[1] != `w-1 {"spec":{"unschedulable":null}}` {
		t.Errorf("uncordon: %v %v", err, f.patches)
	}
}

func TestDrainGivesUp(t *testing.T) {
	retry = 10 * time.Millisecond
	f := &fakeAPI{goneNext: map[string]bool{}, refuse: map[string]int{"default/web": 1 << 30}, pods: []objects.RunningPod{pod("default", "web")}}
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	_, err := Drain(ctx, f, "w-1", func(string, ...any) {})
	if !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "default/web not evicted") {
		t.Errorf("err = %v", err)
	}
}
