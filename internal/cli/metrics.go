package cli

import (
	"context"
	"io"

	"github.com/spf13/cobra"

	"github.com/plinthos/plinth/pkg/api/machine"
	"github.com/plinthos/plinth/pkg/client"
)

func newMetricsCommand(g *globalFlags) *cobra.Command {
	return &cobra.Command{
		Use:   "metrics",
		Short: "Print machined's Prometheus metrics of the nodes (when machine.metrics.enabled)",
		Long: `Print machined's metrics in Prometheus's text format: its services (running, state,
health, restarts), its controllers (running, runs, failures), the resources it holds by
type, the node API calls it served by method, role and code with their durations, the size
of its log store, and the Go runtime's and the process's own metrics.

They are off by default. Set machine.metrics.enabled: true (it applies without a reboot);
machined then also serves them to Prometheus over HTTPS on port 50002 (/metrics), to client
certificates of the node API CA with role os:metrics, os:reader, os:operator or os:admin.
See docs/metrics.md.`,
		Example: `  plinthctl -n 10.5.0.2 metrics
  plinthctl metrics | grep plinth_service_restarts_total`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return g.onNodes(cmd, false, func(ctx context.Context, s *session, _ string, w io.Writer) error {
				resp, err := s.client.Machine.Metrics(ctx, &machine.MetricsRequest{})
				if err != nil {
					return client.Describe(err)
				}
				_, err = w.Write(resp.Text)
				return err
			})
		},
	}
}
