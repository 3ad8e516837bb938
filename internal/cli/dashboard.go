package cli

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"sync"
	"time"

	tea "github.com/charmbracelet/bubbletea"
	"github.com/spf13/cobra"

	"github.com/plinthos/plinth/internal/dashboard"
	"github.com/plinthos/plinth/internal/k8s/kubeclient"
	"github.com/plinthos/plinth/internal/k8s/objects"
	"github.com/plinthos/plinth/pkg/api/machine"
	"github.com/plinthos/plinth/pkg/client"
)

func newDashboardCommand(g *globalFlags) *cobra.Command {
	var interval time.Duration
	cmd := &cobra.Command{
		Use:   "dashboard",
		Short: "Watch the nodes and the cluster live in the terminal",
		Long: `Dashboard shows, refreshed every --interval, each node of -n (or of the context): its
version, CPU use (its processes', in cores) and memory, its services with their state,
health and restarts, and the last lines of the chosen service's log; and the cluster's
Nodes and control-plane pods. A node that does not answer says so and the rest go on.

Keys: ←/→ (or h/l, tab) choose the node, ↑/↓ (or k/j) the service, r refreshes now,
q (or Esc, Ctrl-C) quits. The cluster's part needs os:admin (an admin kubeconfig from a
control plane); with a lesser role it says why it is missing.`,
		Example: `  plinthctl dashboard
  plinthctl -n 10.5.0.2,10.5.0.3 dashboard --interval 5s`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if interval < 500*time.Millisecond {
				return fmt.Errorf("--interval %s is too short: use 500ms or more", interval)
			}
			s, err := g.connect()
			if err != nil {
				return err
			}
			defer s.client.Close()
			title := "Plinth dashboard"
			if _, _, name, _, err := loadClientConfig(g); err == nil {
				title += " · context " + name
			}
			src := &liveSource{s: s, cpu: map[string]cpuSample{}}
			defer src.close()
			p := tea.NewProgram(dashboard.New(src, title, interval), tea.WithAltScreen(), tea.WithContext(cmd.Context()),
				tea.WithInput(cmd.InOrStdin()), tea.WithOutput(cmd.OutOrStdout()))
			if _, err := p.Run(); err != nil && cmd.Context().Err() == nil {
				return fmt.Errorf("dashboard: %w", err)
			}
			return nil
		},
	}
	cmd.Flags().DurationVar(&interval, "interval", 2*time.Second, "time between two refreshes")
	return cmd
}

// cpuSample is a node's processes' CPU seconds when last read.
type cpuSample struct {
	seconds float64
	at      time.Time
}

// liveSource reads the dashboard's state through the node API and the Kubernetes API.
type liveSource struct {
	s *session

	mu  sync.Mutex
	cpu map[string]cpuSample
	api *kubeclient.Client // kept once a control plane gave a kubeconfig
}

func (l *liveSource) close() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.api != nil {
		l.api.Close()
	}
}

// Snapshot implements dashboard.Source.
func (l *liveSource) Snapshot(ctx context.Context) dashboard.Snapshot {
	nodes := l.s.nodes
	if len(nodes) == 0 {
		nodes = []string{""}
	}
	snap := dashboard.Snapshot{Nodes: make([]dashboard.Node, len(nodes)), Taken: time.Now()}
	var wg sync.WaitGroup
	for i, n := range nodes {
		wg.Go(func() { snap.Nodes[i] = l.node(ctx, n) })
	}
	wg.Go(func() { snap.Cluster = l.cluster(ctx) })
	wg.Wait()
	return snap
}

func (l *liveSource) nodeCtx(ctx context.Context, node string) context.Context {
	if node == "" {
		return ctx
	}
	return client.WithNode(ctx, node)
}

// node reads one node; the first failure ends it, with the reason.
func (l *liveSource) node(ctx context.Context, node string) dashboard.Node {
	out := dashboard.Node{Address: node, CPU: -1}
	if node == "" {
		out.Address = nodeDir(l.s, "")
	}
	ctx = l.nodeCtx(ctx, node)
	v, err := l.s.client.Machine.Version(ctx, &machine.VersionRequest{})
	if err != nil {
		out.Err = client.Describe(err).Error()
		return out
	}
	out.Hostname, out.Version, out.Platform = v.Hostname, v.Tag, v.Platform
	svcs, err := l.s.client.Machine.ServiceList(ctx, &machine.ServiceListRequest{})
	if err != nil {
		out.Err = client.Describe(err).Error()
		return out
	}
	for _, sv := range svcs.Services {
		out.Services = append(out.Services, dashboard.Service{ID: sv.Id, State: sv.State, Health: sv.Health, Restarts: int(sv.Restarts)})
	}
	if m, err := l.s.client.Machine.Memory(ctx, &machine.MemoryRequest{}); err == nil {
		out.MemTotal, out.MemUsed = m.TotalBytes, m.TotalBytes-m.AvailableBytes
	}
	if ps, err := l.s.client.Machine.Processes(ctx, &machine.ProcessesRequest{}); err == nil {
		var secs float64
		for _, p := range ps.Processes {
			secs += p.CpuSeconds
		}
		now := time.Now()
		l.mu.Lock()
		if prev, ok := l.cpu[out.Address]; ok && now.After(prev.at) && secs >= prev.seconds {
			out.CPU = (secs - prev.seconds) / now.Sub(prev.at).Seconds()
		}
		l.cpu[out.Address] = cpuSample{seconds: secs, at: now}
		l.mu.Unlock()
	}
	return out
}

// kubePods is what the dashboard reads of kube-system's pods.
type kubePods struct {
	Items []struct {
		Metadata objects.ObjectMeta `json:"metadata"`
		Spec     struct {
			NodeName string `json:"nodeName"`
		} `json:"spec"`
		Status struct {
			Phase             string                    `json:"phase"`
			ContainerStatuses []objects.ContainerStatus `json:"containerStatuses"`
		} `json:"status"`
	} `json:"items"`
}

// controlPlanePods are the static pods of the control plane, by name prefix.
var controlPlanePods = []string{"etcd-", "kube-apiserver-", "kube-controller-manager-", "kube-scheduler-"}

// cluster reads the Nodes and the control-plane pods.
func (l *liveSource) cluster(ctx context.Context) dashboard.Cluster {
	l.mu.Lock()
	api := l.api
	l.mu.Unlock()
	if api == nil {
		_, _, kc, err := controlPlaneKubeconfig(ctx, l.s)
		if err != nil {
			return dashboard.Cluster{Err: "no kubeconfig: " + err.Error()}
		}
		if api, err = kubeclient.New(kc, ""); err != nil {
			return dashboard.Cluster{Err: err.Error()}
		}
		l.mu.Lock()
		l.api = api
		l.mu.Unlock()
	}
	var out dashboard.Cluster
	nodes, err := api.ListNodes(ctx, "")
	if err != nil {
		return dashboard.Cluster{Err: "the Kubernetes API: " + err.Error()}
	}
	for _, n := range nodes {
		out.Nodes = append(out.Nodes, dashboard.KubeNode{Name: n.Metadata.Name, Version: n.Status.NodeInfo.KubeletVersion, Ready: objects.Ready(n.Status.Conditions)})
	}
	var pods kubePods
	if err := api.Get(ctx, "/api/v1/namespaces/kube-system/pods", &pods); err != nil {
		out.Err = "kube-system's pods: " + err.Error()
		return out
	}
	for _, p := range pods.Items {
		if !isControlPlanePod(p.Metadata.Name) {
			continue
		}
		ready := len(p.Status.ContainerStatuses) > 0
		for _, c := range p.Status.ContainerStatuses {
			ready = ready && c.Ready
		}
		out.Pods = append(out.Pods, dashboard.Pod{Name: p.Metadata.Name, Node: p.Spec.NodeName, Phase: p.Status.Phase, Ready: ready})
	}
	return out
}

func isControlPlanePod(name string) bool {
	for _, p := range controlPlanePods {
		if strings.HasPrefix(name, p) {
			return true
		}
	}
	return false
}

// Logs implements dashboard.Source.
func (l *liveSource) Logs(ctx context.Context, node, service string, lines int) ([]string, error) {
	if node == nodeDir(l.s, "") && len(l.s.nodes) == 0 {
		node = ""
	}
	data, err := readLog(l.nodeCtx(ctx, node), l.s, &machine.LogsRequest{Service: service, TailLines: int32(lines)})
	if err != nil {
		return nil, client.Describe(err)
	}
	data = bytes.TrimRight(data, "\n")
	if len(data) == 0 {
		return []string{"(nothing logged yet)"}, nil
	}
	return strings.Split(string(data), "\n"), nil
}
