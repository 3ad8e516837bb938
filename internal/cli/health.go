package cli

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/spf13/cobra"

	"github.com/plinthos/plinth/internal/health"
	"github.com/plinthos/plinth/pkg/api/machine"
	"github.com/plinthos/plinth/pkg/client"
)

func newHealthCommand(g *globalFlags) *cobra.Command {
	var (
		server     string
		timeout    time.Duration
		nodes, cps int
		skipAddons bool
	)
	cmd := &cobra.Command{
		Use:   "health",
		Short: "Check (and wait for) the cluster's health: etcd, API server, nodes, static pods, add-ons",
		Long: `Check the cluster from the outside with a fresh admin kubeconfig from a control-plane node:
etcd and the API server ready, etcd's members the control-plane nodes (all voting), the
control-plane static pods running, all nodes Ready,
kube-proxy, the CNI and CoreDNS ready. Each check is printed as it passes; the command waits
up to --wait-timeout for all of them.`,
		Example: `  plinthctl -n 10.5.0.2 health
  plinthctl health --server https://127.0.0.1:6443 --expect-nodes 2 --wait-timeout 5m`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return g.onNodes(cmd, true, func(ctx context.Context, s *session, node string, w io.Writer) error {
				resp, err := s.client.Machine.Kubeconfig(ctx, &machine.KubeconfigRequest{})
				if err != nil {
					return describe(err)
				}
				c, err := health.NewClient(resp.Kubeconfig, server)
				if err != nil {
					return err
				}
				ctx, cancel := context.WithTimeout(ctx, timeout)
				defer cancel()
				expect := health.Expect{Nodes: nodes, ControlPlanes: cps, SkipAddons: skipAddons,
					EtcdMembers: etcdMembersOf(s.client)}
				if err := health.Wait(ctx, c.Checks(expect), w); err != nil {
					return fmt.Errorf("the cluster is not healthy: %w", err)
				}
				fmt.Fprintln(w, "the cluster is healthy")
				return nil
			})
		},
	}
	cmd.Flags().StringVar(&server, "server", "", "Kubernetes API URL to check through (default: the cluster's control-plane endpoint)")
	cmd.Flags().DurationVar(&timeout, "wait-timeout", 10*time.Minute, "how long to wait for the cluster to become healthy")
	cmd.Flags().IntVar(&nodes, "expect-nodes", 0, "how many nodes must be Ready (default: every registered node)")
	cmd.Flags().IntVar(&cps, "expect-control-planes", 0, "how many control-plane nodes must run the static pods (default: 1)")
	cmd.Flags().BoolVar(&skipAddons, "skip-addons", false, "do not check kube-proxy, the CNI and CoreDNS")
	return cmd
}

// etcdMembersOf lists etcd's members through the node API, for the health check; the
// context passed to the check says which node answers (the endpoint itself by default).
func etcdMembersOf(c *client.Client) func(ctx context.Context) ([]health.EtcdMember, error) {
	return func(ctx context.Context) ([]health.EtcdMember, error) {
		resp, err := c.Machine.EtcdMembers(ctx, &machine.EtcdMembersRequest{})
		if err != nil {
			return nil, describe(err)
		}
		var out []health.EtcdMember
		for _, m := range resp.GetMembers() {
			out = append(out, health.EtcdMember{Name: m.GetName(), IsLearner: m.GetIsLearner()})
		}
		return out, nil
	}
}
