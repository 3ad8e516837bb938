package cli

import (
	"context"
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"github.com/plinthos/plinth/pkg/api/machine"
	"github.com/plinthos/plinth/pkg/client"
)

func newBootstrapCommand(g *globalFlags) *cobra.Command {
	return &cobra.Command{
		Use:   "bootstrap",
		Short: "Start a new cluster's etcd on one control-plane node (once per cluster)",
		Long: `Bootstrap starts etcd as a new cluster on exactly one control-plane node; the Kubernetes
control plane then comes up there, and other control-plane nodes join by themselves. It is
refused, with the reason, on a node or cluster that was bootstrapped already.
'plinthctl cluster create' bootstraps by itself.`,
		Example: `  plinthctl -n 10.5.0.2 bootstrap`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return g.onNodes(cmd, false, func(ctx context.Context, s *session, node string, w io.Writer) error {
				if len(s.nodes) > 1 {
					return fmt.Errorf("bootstrap exactly one node: give one with -n")
				}
				resp, err := s.client.Machine.Bootstrap(ctx, &machine.BootstrapRequest{})
				if err != nil {
					return client.Describe(err)
				}
				fmt.Fprintf(w, "%s: %s\n", node, resp.Message)
				return nil
			})
		},
	}
}
