package cli

import (
	"context"
	"fmt"
	"io"
	"runtime"

	"github.com/spf13/cobra"

	"github.com/plinthos/plinth/internal/version"
	"github.com/plinthos/plinth/pkg/api/machine"
	"github.com/plinthos/plinth/pkg/client"
)

func newVersionCommand(g *globalFlags) *cobra.Command {
	var clientOnly bool
	cmd := &cobra.Command{
		Use:   "version",
		Short: "Show the version of plinthctl and of the nodes",
		Example: `  plinthctl version
  plinthctl version --client
  plinthctl -n 10.5.0.2,10.5.0.3 version`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			out := cmd.OutOrStdout()
			fmt.Fprintf(out, "Client:\n  Tag:  %s\n  Go:   %s\n  OS:   %s/%s\n", version.Tag, runtime.Version(), runtime.GOOS, runtime.GOARCH)
			if clientOnly {
				return nil
			}
			s, err := g.connect()
			if err != nil {
				return err
			}
			defer s.client.Close()
			fmt.Fprintln(out, "Server:")
			return s.each(cmd.Context(), out, func(ctx context.Context, node string, w io.Writer) error {
				v, err := s.client.Machine.Version(ctx, &machine.VersionRequest{})
				if err != nil {
					return client.Describe(err)
				}
				fmt.Fprintf(w, "  Node:      %s\n  Hostname:  %s\n  Tag:       %s\n  Go:        %s\n  OS:        %s/%s\n  Platform:  %s\n",
					node, v.Hostname, v.Tag, v.GoVersion, v.Os, v.Arch, v.Platform)
				return nil
			})
		},
	}
	cmd.Flags().BoolVar(&clientOnly, "client", false, "show only the client's version")
	return cmd
}
