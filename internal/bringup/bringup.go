// Package bringup reconstructs when each phase of a node's bring-up began and ended, from
// the node's own events (machined, containerd, the image import, kubelet) and from what the
// Kubernetes API records (the Node's registration and readiness, the static pods', the
// CNI's and kube-proxy's pods), and prints it as a table: where the time of a cluster
// create went, node by node.
package bringup

import (
	"fmt"
	"io"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/plinthos/plinth/internal/k8s/objects"
)

// Phase is one step of a node's bring-up. Begin is zero when only its end is known.
type Phase struct {
	Name       string
	Begin, End time.Time
}

// Node is one node's phases.
type Node struct {
	Name   string
	Phases []Phase
}

// Event is an entry of a node's event stream (plinthctl events).
type Event struct {
	Time    time.Time
	Type    string
	Message string
	Data    map[string]string
}

// The phases' names, in the order a node goes through them. A pod's Ready is when kubelet
// saw its readiness probe pass, which can come well after the component serves (the
// health wait of cluster create says when the API server first answered ready).
const (
	MachinedUp   = "machined up"
	Containerd   = "containerd ready"
	Images       = "images imported"
	Registered   = "kubelet registered"
	Etcd         = "etcd pod Ready"
	APIServer    = "API server pod Ready"
	StaticPods   = "static pods Ready"
	CNI          = "CNI pod Ready"
	KubeProxy    = "kube-proxy pod Ready"
	NodeReady    = "node Ready"
	kubeletStart = "kubelet started"
)

// FromEvents reads the phases that machined's events tell, from the last boot in events
// (which are in the order the node published them): machined up (from start, when the
// node was asked to start, to the boot's first event), containerd ready, the image bundle
// imported, and kubelet started (an instant, where the Kubernetes phases begin).
func FromEvents(start time.Time, events []Event) []Phase {
	boot := 0
	for i, e := range events {
		if e.Type == "sequence" && e.Data["sequence"] == "boot" && strings.HasSuffix(e.Message, "started") {
			boot = i
		}
	}
	events = events[boot:]
	var phases []Phase
	if len(events) > 0 && events[0].Type == "sequence" {
		phases = append(phases, Phase{Name: MachinedUp, Begin: start, End: events[0].Time})
	}
	// first is when service id first reached state (and, with healthy, that health).
	first := func(id, state, healthy string) time.Time {
		for _, e := range events {
			if e.Type == "service" && e.Data["id"] == id && e.Data["state"] == state && (healthy == "" || e.Data["healthy"] == healthy) {
				return e.Time
			}
		}
		return time.Time{}
	}
	if len(events) > 0 {
		if end := first("containerd", "Running", "true"); !end.IsZero() {
			phases = append(phases, Phase{Name: Containerd, Begin: events[0].Time, End: end})
		}
	}
	if begin, end := first("images", "Running", ""), first("images", "Finished", ""); !begin.IsZero() && !end.IsZero() {
		phases = append(phases, Phase{Name: Images, Begin: begin, End: end})
	}
	if t := first("kubelet", "Running", ""); !t.IsZero() {
		phases = append(phases, Phase{Name: kubeletStart, End: t})
	}
	return phases
}

// FromKubernetes reads the phases that the Kubernetes API records for node, whose pods are
// pods: kubelet registered (from kubelet's start, taken from phases, to the Node's
// creation), etcd, the API server and all static pods ready (from kubelet's start), the
// CNI's and kube-proxy's pods ready (from their creation), and the Node Ready (from its
// registration). The API keeps these times to the second. It returns phases with these
// added, and kubelet's start left out.
func FromKubernetes(phases []Phase, node objects.Node, pods []objects.RunningPod) []Phase {
	var kubelet time.Time
	out := slices.DeleteFunc(slices.Clone(phases), func(p Phase) bool {
		if p.Name == kubeletStart {
			kubelet = p.End
			return true
		}
		return false
	})
	registered := parse(node.Metadata.CreationTimestamp)
	if !registered.IsZero() {
		out = append(out, Phase{Name: Registered, Begin: kubelet, End: registered})
	}
	var static time.Time
	statics := 0
	for _, c := range []struct{ prefix, phase string }{{"etcd-", Etcd}, {"kube-apiserver-", APIServer}, {"kube-controller-manager-", ""}, {"kube-scheduler-", ""}} {
		p := findPod(pods, c.prefix+node.Metadata.Name)
		if p == nil {
			continue
		}
		ready := readySince(p.Status.Conditions)
		if ready.IsZero() {
			continue
		}
		statics++
		if ready.After(static) {
			static = ready
		}
		if c.phase != "" {
			out = append(out, Phase{Name: c.phase, Begin: kubelet, End: ready})
		}
	}
	if statics == 4 {
		out = append(out, Phase{Name: StaticPods, Begin: kubelet, End: static})
	}
	for _, c := range []struct{ prefix, phase string }{{"kube-flannel-", CNI}, {"kube-proxy-", KubeProxy}} {
		for i := range pods {
			p := &pods[i]
			if strings.HasPrefix(p.Metadata.Name, c.prefix) && p.Metadata.Namespace == "kube-system" {
				if ready := readySince(p.Status.Conditions); !ready.IsZero() {
					out = append(out, Phase{Name: c.phase, Begin: parse(p.Metadata.CreationTimestamp), End: ready})
				}
				break
			}
		}
	}
	if ready := readySince(node.Status.Conditions); !ready.IsZero() {
		out = append(out, Phase{Name: NodeReady, Begin: registered, End: ready})
	}
	return out
}

// findPod is the pod of kube-system named name, nil if none.
func findPod(pods []objects.RunningPod, name string) *objects.RunningPod {
	for i := range pods {
		if pods[i].Metadata.Name == name && pods[i].Metadata.Namespace == "kube-system" {
			return &pods[i]
		}
	}
	return nil
}

// readySince is when conditions last turned Ready=True; zero when they are not Ready.
func readySince(conditions []objects.NodeCondition) time.Time {
	for _, c := range conditions {
		if c.Type == "Ready" && c.Status == "True" {
			return parse(c.LastTransitionTime)
		}
	}
	return time.Time{}
}

// parse reads an RFC 3339 time of the API; zero when it is empty or invalid.
func parse(s string) time.Time {
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		return time.Time{}
	}
	return t
}

// Write prints nodes' phases as a table of seconds since start, each node's phases in the
// order they ended.
func Write(w io.Writer, start time.Time, nodes []Node) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "NODE\tPHASE\t  BEGIN\t    END\t   TOOK")
	secs := func(t time.Time) string {
		if t.IsZero() {
			return fmt.Sprintf("%7s", "-")
		}
		return fmt.Sprintf("%7.1f", t.Sub(start).Seconds())
	}
	for _, n := range nodes {
		phases := slices.Clone(n.Phases)
		slices.SortStableFunc(phases, func(a, b Phase) int { return a.End.Compare(b.End) })
		for _, p := range phases {
			took := fmt.Sprintf("%7s", "-")
			if !p.Begin.IsZero() {
				took = fmt.Sprintf("%7.1f", p.End.Sub(p.Begin).Seconds())
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", n.Name, p.Name, secs(p.Begin), secs(p.End), took)
		}
	}
	return tw.Flush()
}
