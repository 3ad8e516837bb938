package localcluster

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"text/tabwriter"

	"github.com/plinthos/plinth/internal/ports"
	"github.com/plinthos/plinth/internal/provision"
)

// WriteLogs prints the last lines lines of every node's log, and of the load balancer's,
// to w; a log that cannot be read is said so.
func WriteLogs(ctx context.Context, w io.Writer, prov provision.Provisioner, c *provision.Cluster, lines int) {
	nodes := slices.Clone(c.Nodes)
	if c.LoadBalancer != nil {
		nodes = append(nodes, *c.LoadBalancer)
	}
	for _, n := range nodes {
		logs, err := prov.Logs(ctx, n.Name, lines)
		logs = strings.TrimRight(logs, "\n")
		switch {
		case err != nil:
			fmt.Fprintf(w, "\nthe log of %s cannot be read: %v\n", n.Name, err)
		case logs == "":
			fmt.Fprintf(w, "\n%s has logged nothing\n", n.Name)
		default:
			fmt.Fprintf(w, "\nlast %d log lines of %s:\n%s\n", lines, n.Name, logs)
		}
	}
}

// WriteTable prints NODE, ROLE, IP, STATE, PORTS: the load balancer first (if any), then
// the nodes. PORTS are the published ports (127.0.0.1:PORT->NODE-PORT), or the node's own
// endpoints when the host reaches it on its address.
func WriteTable(w io.Writer, c *provision.Cluster) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NODE\tROLE\tIP\tSTATE\tPORTS")
	rows := c.Nodes
	if c.LoadBalancer != nil {
		rows = append([]provision.Node{*c.LoadBalancer}, c.Nodes...)
	}
	for _, n := range rows {
		var published []string
		for _, p := range []struct {
			endpoint string
			port     int
		}{{n.APIEndpoint(), ports.NodeAPI}, {n.KubeEndpoint(), ports.KubeAPI}} {
			switch {
			case p.endpoint == "":
			case n.Host != "":
				// Reached on the node's own address: nothing is published.
				published = append(published, p.endpoint)
			default:
				published = append(published, fmt.Sprintf("%s->%d", p.endpoint, p.port))
			}
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", n.Name, orDash(n.Role), orDash(n.IP), orDash(n.State), orDash(strings.Join(published, ", ")))
	}
	if len(c.Nodes) == 0 {
		fmt.Fprintln(tw, "(no nodes)\t\t\t\t")
	}
	return tw.Flush()
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// Summary is one line of List: a cluster, its node count and how many run.
type Summary struct {
	Name    string
	CIDR    string
	Nodes   int
	Running int
}

// List summarises the clusters prov knows, by name; a cluster that goes away meanwhile is
// left out.
func List(ctx context.Context, prov provision.Provisioner) ([]Summary, error) {
	names, err := prov.List(ctx)
	if err != nil {
		return nil, err
	}
	var list []Summary
	for _, name := range names {
		c, err := prov.Show(ctx, name)
		if errors.Is(err, provision.ErrNotFound) {
			continue
		}
		if err != nil {
			return nil, err
		}
		s := Summary{Name: c.Name, CIDR: c.CIDR, Nodes: len(c.Nodes)}
		for _, n := range c.Nodes {
			if n.State == "running" {
				s.Running++
			}
		}
		list = append(list, s)
	}
	return list, nil
}
