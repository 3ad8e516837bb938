// Package dashboard is plinthctl's terminal dashboard: a bubbletea model over a Source of
// the nodes' and the cluster's state, refreshed on a timer, with keyboard navigation
// between nodes and services and the last log lines of the chosen service.
package dashboard

import (
	"context"
	"fmt"
	"strings"
	"time"

	tea "github.com/charmbracelet/bubbletea"
)

// Service is one service of a node.
type Service struct {
	ID, State, Health string
	Restarts          int
}

// Node is what the dashboard shows of one node.
type Node struct {
	// Address is how the node is named (-n).
	Address string
	// Err is why the node could not be read; the rest is then empty.
	Err               string
	Hostname, Version string
	Platform          string
	Services          []Service
	MemTotal, MemUsed uint64
	// CPU is the node's processes' CPU use since the last refresh, in cores; negative while
	// unknown (the first refresh).
	CPU float64
}

// KubeNode is a Kubernetes Node.
type KubeNode struct {
	Name, Version string
	Ready         bool
}

// Pod is a control-plane pod.
type Pod struct {
	Name, Node, Phase string
	Ready             bool
}

// Cluster is what the dashboard shows of the cluster.
type Cluster struct {
	// Err is why the cluster could not be read.
	Err   string
	Nodes []KubeNode
	Pods  []Pod
}

// Snapshot is one refresh.
type Snapshot struct {
	Nodes   []Node
	Cluster Cluster
	Taken   time.Time
}

// Source reads the state.
type Source interface {
	// Snapshot reads every node and the cluster.
	Snapshot(ctx context.Context) Snapshot
	// Logs returns the last lines of a service's log on a node.
	Logs(ctx context.Context, node, service string, lines int) ([]string, error)
}

// LogLines is how many log lines the dashboard shows.
const LogLines = 10

// Model is the dashboard's bubbletea model.
type Model struct {
	src      Source
	interval time.Duration
	title    string

	snap    Snapshot
	loaded  bool
	node    int // selected node
	service int // selected service of that node
	logs    []string
	logsFor string // node/service the logs are of
	logErr  string
	width   int
}

// New returns the model: title heads the screen; the state is read again every interval.
func New(src Source, title string, interval time.Duration) Model {
	return Model{src: src, title: title, interval: interval}
}

type snapshotMsg Snapshot

type logsMsg struct {
	key   string
	lines []string
	err   error
}

type tickMsg struct{}

func (m Model) fetch() tea.Msg {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	return snapshotMsg(m.src.Snapshot(ctx))
}

func (m Model) tick() tea.Cmd {
	return tea.Tick(m.interval, func(time.Time) tea.Msg { return tickMsg{} })
}

// selected returns the selected node and service, if any.
func (m Model) selected() (*Node, *Service) {
	if m.node >= len(m.snap.Nodes) {
		return nil, nil
	}
	n := &m.snap.Nodes[m.node]
	if m.service >= len(n.Services) {
		return n, nil
	}
	return n, &n.Services[m.service]
}

// fetchLogs reads the selected service's log.
func (m Model) fetchLogs() tea.Cmd {
	n, s := m.selected()
	if n == nil || s == nil {
		return nil
	}
	node, svc := n.Address, s.ID
	return func() tea.Msg {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		lines, err := m.src.Logs(ctx, node, svc, LogLines)
		return logsMsg{key: node + "/" + svc, lines: lines, err: err}
	}
}

// Init implements tea.Model: the first read at once, then one every interval.
func (m Model) Init() tea.Cmd { return tea.Batch(m.fetch, m.tick()) }

// Update implements tea.Model.
func (m Model) Update(msg tea.Msg) (tea.Model, tea.Cmd) {
	switch msg := msg.(type) {
	case tea.KeyMsg:
		if msg.Type == tea.KeyRunes && len(msg.Runes) > 1 {
			// Keys that came in one read (typed ahead, or piped in): one at a time.
			var cmds []tea.Cmd
			var next tea.Model = m
			for _, r := range msg.Runes {
				var cmd tea.Cmd
				next, cmd = next.Update(tea.KeyMsg{Type: tea.KeyRunes, Runes: []rune{r}})
				cmds = append(cmds, cmd)
			}
			return next, tea.Sequence(cmds...)
		}
		switch msg.String() {
		case "q", "ctrl+c", "esc":
			return m, tea.Quit
		case "right", "l", "tab":
			if len(m.snap.Nodes) > 0 {
				m.node = (m.node + 1) % len(m.snap.Nodes)
				m.service = 0
				return m, m.fetchLogs()
			}
		case "left", "h", "shift+tab":
			if len(m.snap.Nodes) > 0 {
				m.node = (m.node + len(m.snap.Nodes) - 1) % len(m.snap.Nodes)
				m.service = 0
				return m, m.fetchLogs()
			}
		case "down", "j":
			if n, _ := m.selected(); n != nil && m.service < len(n.Services)-1 {
				m.service++
				return m, m.fetchLogs()
			}
		case "up", "k":
			if m.service > 0 {
				m.service--
				return m, m.fetchLogs()
			}
		case "r":
			return m, m.fetch
		}
	case tea.WindowSizeMsg:
		m.width = msg.Width
	case tickMsg:
		return m, tea.Batch(m.fetch, m.tick())
	case snapshotMsg:
		m.snap, m.loaded = Snapshot(msg), true
		if m.node >= len(m.snap.Nodes) {
			m.node = 0
		}
		if n, _ := m.selected(); n != nil && m.service >= len(n.Services) {
			m.service = 0
		}
		return m, m.fetchLogs()
	case logsMsg:
		m.logsFor, m.logs, m.logErr = msg.key, msg.lines, ""
		if msg.err != nil {
			m.logErr = msg.err.Error()
		}
	}
	return m, nil
}

func mib(b uint64) string { return fmt.Sprintf("%d MiB", b>>20) }

// View implements tea.Model.
func (m Model) View() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s", m.title)
	if m.loaded {
		fmt.Fprintf(&b, " · updated %s", m.snap.Taken.Format("15:04:05"))
	}
	b.WriteString("\n←/→ node · ↑/↓ service · r refresh · q quit\n\n")
	if !m.loaded {
		b.WriteString("reading the nodes...\n")
		return b.String()
	}
	// The node tabs.
	for i, n := range m.snap.Nodes {
		label := n.Address
		if n.Hostname != "" {
			label += " " + n.Hostname
		}
		if i == m.node {
			fmt.Fprintf(&b, "[%s] ", label)
		} else {
			fmt.Fprintf(&b, " %s  ", label)
		}
	}
	b.WriteString("\n\n")
	n, sel := m.selected()
	if n != nil {
		if n.Err != "" {
			fmt.Fprintf(&b, "%s does not answer: %s\n", n.Address, n.Err)
		} else {
			cpu := "CPU -"
			if n.CPU >= 0 {
				cpu = fmt.Sprintf("CPU %.0f%% of a core", n.CPU*100)
			}
			fmt.Fprintf(&b, "%s · %s · %s · memory %s of %s\n\n", n.Version, n.Platform, cpu, mib(n.MemUsed), mib(n.MemTotal))
			fmt.Fprintf(&b, "  %-16s %-12s %-10s %s\n", "SERVICE", "STATE", "HEALTH", "RESTARTS")
			for i, s := range n.Services {
				cursor := "  "
				if i == m.service {
					cursor = "> "
				}
				health := s.Health
				if health == "" {
					health = "-"
				}
				fmt.Fprintf(&b, "%s%-16s %-12s %-10s %d\n", cursor, s.ID, s.State, health, s.Restarts)
			}
		}
	}
	if sel != nil {
		fmt.Fprintf(&b, "\nlast lines of %s:\n", sel.ID)
		switch {
		case m.logsFor != n.Address+"/"+sel.ID:
			b.WriteString("  ...\n")
		case m.logErr != "":
			fmt.Fprintf(&b, "  (%s)\n", m.logErr)
		default:
			for _, l := range m.logs {
				fmt.Fprintf(&b, "  %s\n", m.clip(l))
			}
		}
	}
	b.WriteString("\ncluster:\n")
	c := m.snap.Cluster
	if c.Err != "" {
		fmt.Fprintf(&b, "  %s\n", c.Err)
		return b.String()
	}
	for _, kn := range c.Nodes {
		ready := "NotReady"
		if kn.Ready {
			ready = "Ready"
		}
		fmt.Fprintf(&b, "  node %-24s %-9s %s\n", kn.Name, ready, kn.Version)
	}
	for _, p := range c.Pods {
		ready := "not ready"
		if p.Ready {
			ready = "ready"
		}
		fmt.Fprintf(&b, "  pod  %-40s %-9s %-9s %s\n", p.Name, p.Phase, ready, p.Node)
	}
	return b.String()
}

// clip shortens a log line to the terminal's width.
func (m Model) clip(s string) string {
	if m.width > 4 && len(s) > m.width-2 {
		return s[:m.width-3] + "…"
	}
	return s
}
