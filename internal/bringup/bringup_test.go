package bringup

import (
	"strings"
	"testing"
	"time"

	"github.com/plinthos/plinth/internal/k8s/objects"
)

var t0 = time.Date(2026, 12, 3, 16, 55, 26, 0, time.UTC)

func at(s float64) time.Time { return t0.Add(time.Duration(s * float64(time.Second))) }

func svc(s float64, id, state, healthy string) Event {
	d := map[string]string{"id": id, "state": state}
	if healthy != "" {
		d["healthy"] = healthy
	}
	return Event{Time: at(s), Type: "service", Data: d}
}

func boot(s float64) Event {
	return Event{Time: at(s), Type: "sequence", Message: "boot started", Data: map[string]string{"sequence": "boot"}}
}

func ready(s float64) []objects.NodeCondition {
	return []objects.NodeCondition{{Type: "Ready", Status: "True", LastTransitionTime: at(s).Format(time.RFC3339)}}
}

func pod(name string, created, readyAt float64) objects.RunningPod {
	var p objects.RunningPod
	p.Metadata.Name, p.Metadata.Namespace = name, "kube-system"
	p.Metadata.CreationTimestamp = at(created).Format(time.RFC3339)
	p.Status.Conditions = ready(readyAt)
	return p
}

func TestPhasesOfAControlPlane(t *testing.T) {
	events := []Event{
		// An earlier boot is left out.
		boot(-100), svc(-99, "containerd", "Running", "true"),
		boot(1.5),
		svc(1.6, "containerd", "Running", ""), svc(2.7, "containerd", "Running", "true"),
		svc(2.7, "images", "Running", ""), svc(9.0, "images", "Finished", ""),
		svc(9.0, "kubelet", "Running", ""),
	}
	phases := FromEvents(t0, events)
	var node objects.Node
	node.Metadata.Name = "cp1"
	node.Metadata.CreationTimestamp = at(12).Format(time.RFC3339)
	node.Status.Conditions = ready(26)
	pods := []objects.RunningPod{
		pod("etcd-cp1", 13, 20), pod("kube-apiserver-cp1", 13, 22), pod("kube-controller-manager-cp1", 13, 24),
		pod("kube-scheduler-cp1", 13, 25), pod("kube-flannel-x7", 24, 25), pod("kube-proxy-abcde", 24, 24),
		pod("coredns-1", 26, 27),
	}
	got := FromKubernetes(phases, node, pods)
	want := map[string][2]float64{
		MachinedUp: {0, 1.5}, Containerd: {1.5, 2.7}, Images: {2.7, 9}, Registered: {9, 12},
		Etcd: {9, 20}, APIServer: {9, 22}, StaticPods: {9, 25}, CNI: {24, 25}, KubeProxy: {24, 24}, NodeReady: {12, 26},
	}
	if len(got) != len(want) {
		t.Fatalf("phases %+v, want %d", got, len(want))
	}
	for _, p := range got {
		w, ok := want[p.Name]
		if !ok || !p.Begin.Equal(at(w[0])) || !p.End.Equal(at(w[1])) {
			t.Errorf("%s: %s..%s, want %v", p.Name, p.Begin.Sub(t0), p.End.Sub(t0), w)
		}
	}
	var b strings.Builder
	if err := Write(&b, t0, []Node{{Name: "cp1", Phases: got}}); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(b.String()), "\n")
	if len(lines) != 11 || !strings.Contains(lines[1], "machined up") || !strings.Contains(lines[10], "node Ready") {
		t.Fatalf("table:\n%s", b.String())
	}
	if f := strings.Fields(lines[3]); strings.Join(f[len(f)-3:], " ") != "2.7 9.0 6.3" {
		t.Errorf("images row %q, want 2.7 9.0 6.3", lines[3])
	}
}

// A worker that is not Ready yet, with no static pods: only what happened is listed.
func TestPhasesOfAWorkerStillComingUp(t *testing.T) {
	phases := FromEvents(t0, []Event{boot(2), svc(3, "containerd", "Running", "true")})
	var node objects.Node
	node.Metadata.Name = "w1"
	got := FromKubernetes(phases, node, nil)
	if len(got) != 2 || got[0].Name != MachinedUp || got[1].Name != Containerd {
		t.Fatalf("phases %+v", got)
	}
}
