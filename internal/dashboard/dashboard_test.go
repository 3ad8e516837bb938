package dashboard

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	tea "github.com/charmbracelet/bubbletea"
	"github.com/charmbracelet/x/exp/teatest"
)

// fakeSource is two nodes, the second of which stops answering after the first refresh,
// and a cluster; it counts the refreshes.
type fakeSource struct {
	mu        sync.Mutex
	refreshes int
}

func (f *fakeSource) Snapshot(context.Context) Snapshot {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.refreshes++
	cp := Node{Address: "10.5.0.2", Hostname: "cp-1", Version: "v1.2.3", Platform: "docker", MemTotal: 4 << 30, MemUsed: 1 << 30, CPU: 0.25,
		Services: []Service{{ID: "apid", State: "Running", Health: "healthy"}, {ID: "etcd", State: "Running", Health: "healthy", Restarts: 1}, {ID: "kubelet", State: "Running"}}}
	w := Node{Address: "10.5.0.3", Hostname: "worker-1", Version: "v1.2.3", CPU: -1, Services: []Service{{ID: "kubelet", State: "Waiting"}}}
	if f.refreshes > 1 {
		w = Node{Address: "10.5.0.3", Err: "connection refused"}
	}
	return Snapshot{Nodes: []Node{cp, w}, Taken: time.Date(2026, 12, 3, 11, 30, 0, 0, time.UTC), Cluster: Cluster{
		Nodes: []KubeNode{{Name: "cp-1", Version: "v1.37.2", Ready: true}, {Name: "worker-1", Version: "v1.37.2"}},
		Pods:  []Pod{{Name: "kube-apiserver-cp-1", Node: "cp-1", Phase: "Running", Ready: true}},
	}}
}

func (f *fakeSource) Logs(_ context.Context, node, service string, lines int) ([]string, error) {
	if service == "kubelet" && node == "10.5.0.2" {
		return nil, errors.New("no log")
	}
	return []string{fmt.Sprintf("%s says hello on %s (%d lines)", service, node, lines)}, nil
}

func waitFor(t *testing.T, tm *teatest.TestModel, what string) {
	t.Helper()
	teatest.WaitFor(t, tm.Output(), func(b []byte) bool { return bytes.Contains(b, []byte(what)) },
		teatest.WithDuration(10*time.Second), teatest.WithCheckInterval(20*time.Millisecond))
}

func TestDashboard(t *testing.T) {
	src := &fakeSource{}
	tm := teatest.NewTestModel(t, New(src, "Plinth · context demo", time.Hour), teatest.WithInitialTermSize(120, 50))

	// The first node, its services with the cursor on the first, its log, and the cluster.
	waitFor(t, tm, "apid says hello on 10.5.0.2 (10 lines)")
	// Down twice: kubelet, whose log cannot be read.
	tm.Send(tea.KeyMsg{Type: tea.KeyDown})
	waitFor(t, tm, "etcd says hello on 10.5.0.2")
	tm.Send(tea.KeyMsg{Type: tea.KeyDown})
	waitFor(t, tm, "(no log)")
	// The other node.
	tm.Send(tea.KeyMsg{Type: tea.KeyRight})
	waitFor(t, tm, "kubelet says hello on 10.5.0.3")
	// A refresh: that node no longer answers.
	tm.Type("r")
	waitFor(t, tm, "10.5.0.3 does not answer: connection refused")
	tm.Type("q")
	tm.WaitFinished(t, teatest.WithFinalTimeout(5*time.Second))

	final := tm.FinalModel(t).(Model)
	if final.node != 1 || final.service != 0 {
		t.Errorf("selection node %d service %d, want 1 and 0 (reset when the node changed)", final.node, final.service)
	}
	view := final.View()
	for _, want := range []string{"Plinth · context demo · updated 11:30:00", "[10.5.0.3]", "node cp-1", "Ready", "worker-1", "NotReady",
		"pod  kube-apiserver-cp-1", "does not answer"} {
		if !strings.Contains(view, want) {
			t.Errorf("the final view lacks %q:\n%s", want, view)
		}
	}
	// Back to the control plane: its figures.
	m, _ := final.Update(tea.KeyMsg{Type: tea.KeyLeft})
	view = m.(Model).View()
	for _, want := range []string{"[10.5.0.2 cp-1]", "v1.2.3 · docker · CPU 25% of a core · memory 1024 MiB of 4096 MiB", "> apid", "etcd             Running      healthy    1"} {
		if !strings.Contains(view, want) {
			t.Errorf("the control plane's view lacks %q:\n%s", want, view)
		}
	}
}

// TestKeysInOneRead: keys that arrive together (piped, or typed ahead) each count.
func TestKeysInOneRead(t *testing.T) {
	tm := teatest.NewTestModel(t, New(&fakeSource{}, "Plinth", time.Hour), teatest.WithInitialTermSize(100, 40))
	waitFor(t, tm, "apid says hello")
	tm.Send(tea.KeyMsg{Type: tea.KeyRunes, Runes: []rune("jlq")})
	tm.WaitFinished(t, teatest.WithFinalTimeout(5*time.Second))
	if final := tm.FinalModel(t).(Model); final.node != 1 {
		t.Errorf("after j, l and q in one read: node %d, want 1", final.node)
	}
}

func TestDashboardRefreshesOnTheInterval(t *testing.T) {
	src := &fakeSource{}
	tm := teatest.NewTestModel(t, New(src, "Plinth", 50*time.Millisecond), teatest.WithInitialTermSize(100, 40))
	deadline := time.Now().Add(10 * time.Second)
	for { // refreshes come by themselves
		src.mu.Lock()
		n := src.refreshes
		src.mu.Unlock()
		if n >= 3 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d refreshes in 10 s at an interval of 50 ms", n)
		}
		time.Sleep(20 * time.Millisecond)
	}
	tm.Send(tea.KeyMsg{Type: tea.KeyCtrlC})
	tm.WaitFinished(t, teatest.WithFinalTimeout(5*time.Second))
}
