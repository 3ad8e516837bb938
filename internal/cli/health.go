package cli

import (
	"context"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

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
up to --wait-timeout for all of them.

Without -n, the context's nodes (which list workers too) are asked in order for the
kubeconfig: the first control plane that gives one is used, workers and nodes that do not
answer are skipped, and the check runs once, through that control plane. With -n, it runs
through each node named, which must be a control plane.`,
		Example: `  plinthctl -n 10.5.0.2 health
  plinthctl health --server https://127.0.0.1:6443 --expect-nodes 2 --wait-timeout 5m`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			check := func(ctx context.Context, s *session, kubeconfig []byte, w io.Writer) error {
				ctx, cancel := context.WithTimeout(ctx, timeout)
				defer cancel()
				expect := health.Expect{Nodes: nodes, ControlPlanes: cps, SkipAddons: skipAddons,
					EtcdMembers: etcdMembersOf(s.client)}
				if err := checkHealth(ctx, kubeconfig, server, expect, w); err != nil {
					return fmt.Errorf("the cluster is not healthy: %w", err)
				}
				fmt.Fprintln(w, "the cluster is healthy")
				return nil
			}
			if len(g.nodes) > 0 {
				// Nodes named with -n: the check runs through each of them.
				return g.onNodes(cmd, true, func(ctx context.Context, s *session, node string, w io.Writer) error {
					resp, err := s.client.Machine.Kubeconfig(ctx, &machine.KubeconfigRequest{})
					if status.Code(err) == codes.FailedPrecondition {
						return fmt.Errorf("%s is a worker: health needs a control-plane node; name one with -n (the node says: %s)", node, status.Convert(err).Message())
					}
					if err != nil {
						return client.Describe(err)
					}
					return check(ctx, s, resp.Kubeconfig, w)
				})
			}
			// The context's nodes are workers too: the check runs once, through the first
			// control plane.
			s, err := g.connect()
			if err != nil {
				return err
			}
			defer s.client.Close()
			out := cmd.OutOrStdout()
			ctx, node, kubeconfig, err := controlPlaneKubeconfig(cmd.Context(), s)
			if err != nil {
				return err
			}
			if node != "" {
				fmt.Fprintf(out, "checking through control plane %s\n", node)
			}
			return check(ctx, s, kubeconfig, out)
		},
	}
	cmd.Flags().StringVar(&server, "server", "", "Kubernetes API URL to check through (default: the cluster's control-plane endpoint)")
	cmd.Flags().DurationVar(&timeout, "wait-timeout", 10*time.Minute, "how long to wait for the cluster to become healthy")
	cmd.Flags().IntVar(&nodes, "expect-nodes", 0, "how many nodes must be Ready (default: every registered node)")
	cmd.Flags().IntVar(&cps, "expect-control-planes", 0, "how many control-plane nodes must run the static pods (default: 1)")
	cmd.Flags().BoolVar(&skipAddons, "skip-addons", false, "do not check kube-proxy, the CNI and CoreDNS")
	return cmd
}

// nodeAskTimeout bounds the question to each node while looking for a control plane.
const nodeAskTimeout = 15 * time.Second

// controlPlaneKubeconfig asks the session's nodes in order for an admin kubeconfig and
// returns the first one's, with the node that gave it and ctx directed at that node. It
// skips workers (FailedPrecondition: no Kubernetes CA key) and nodes that fail otherwise,
// such as a control plane that is down. With no nodes, the endpoint itself is asked
// (node is then "").
func controlPlaneKubeconfig(ctx context.Context, s *session) (context.Context, string, []byte, error) {
	if len(s.nodes) == 0 {
		resp, err := s.client.Machine.Kubeconfig(ctx, &machine.KubeconfigRequest{})
		if err != nil {
			return nil, "", nil, client.Describe(err)
		}
		return ctx, "", resp.Kubeconfig, nil
	}
	var failures []string
	for _, node := range s.nodes {
		nctx := withNode(ctx, node)
		// A node that does not answer is skipped after a while, not waited for.
		askCtx, cancel := context.WithTimeout(nctx, nodeAskTimeout)
		resp, err := s.client.Machine.Kubeconfig(askCtx, &machine.KubeconfigRequest{})
		cancel()
		if err == nil {
			return nctx, node, resp.Kubeconfig, nil
		}
		if ctx.Err() != nil {
			return nil, "", nil, ctx.Err()
		}
		msg := client.Describe(err).Error()
		if status.Code(err) == codes.FailedPrecondition {
			msg = "a worker (" + msg + ")"
		}
		failures = append(failures, fmt.Sprintf("  %s: %s", node, msg))
	}
	return nil, "", nil, fmt.Errorf("no node of the context gave an admin kubeconfig: health needs a control-plane node; name one with -n\n%s",
		strings.Join(failures, "\n"))
}

// checkHealth waits until the cluster that the kubeconfig reaches (through server when
// set) is healthy, printing each check as it passes; tests replace it.
var checkHealth = func(ctx context.Context, kubeconfig []byte, server string, expect health.Expect, w io.Writer) error {
	c, err := health.NewClient(kubeconfig, server)
	if err != nil {
		return err
	}
	return health.Wait(ctx, c.Checks(expect), w)
}

// etcdMembersOf lists etcd's members through the node API, for the health check; the
// context passed to the check says which node answers (the endpoint itself by default).
func etcdMembersOf(c *client.Client) func(ctx context.Context) ([]health.EtcdMember, error) {
	return func(ctx context.Context) ([]health.EtcdMember, error) {
		resp, err := c.Machine.EtcdMembers(ctx, &machine.EtcdMembersRequest{})
		if err != nil {
			return nil, client.Describe(err)
		}
		var out []health.EtcdMember
		for _, m := range resp.GetMembers() {
			out = append(out, health.EtcdMember{Name: m.GetName(), IsLearner: m.GetIsLearner()})
		}
		return out, nil
	}
}
