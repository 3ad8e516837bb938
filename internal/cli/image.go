package cli

import (
	"context"
	"fmt"
	"io"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/plinthos/plinth/pkg/api/machine"
	"github.com/plinthos/plinth/pkg/client"
)

func newImageCommand(g *globalFlags) *cobra.Command {
	cmd := &cobra.Command{
		Use:     "image",
		Aliases: []string{"images"},
		Short:   "Work with the images of the nodes' Kubernetes containers",
	}
	cmd.AddCommand(newImageListCommand(g))
	return cmd
}

func newImageListCommand(g *globalFlags) *cobra.Command {
	return &cobra.Command{
		Use:     "list",
		Aliases: []string{"ls"},
		Short:   "List the images in the nodes' Kubernetes image store",
		Long: `List the images that the nodes' containerd holds for Kubernetes: the bundle the node
image carries (imported at boot) and any pulled since, by name, with their digest and size.`,
		Example: `  plinthctl image list
  plinthctl -n 10.5.0.2,10.5.0.3 image list`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return g.onNodes(cmd, false, func(ctx context.Context, s *session, node string, w io.Writer) error {
				resp, err := s.client.Machine.ImageList(ctx, &machine.ImageListRequest{})
				if err != nil {
					return client.Describe(err)
				}
				tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
				fmt.Fprintln(tw, "IMAGE\tDIGEST\tSIZE")
				for _, im := range resp.Images {
					fmt.Fprintf(tw, "%s\t%s\t%s\n", im.Name, im.Digest, bytesHuman(im.SizeBytes))
				}
				return tw.Flush()
			})
		},
	}
}
