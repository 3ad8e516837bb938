package cli

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/plinthos/plinth/internal/kubeconfig"
	"github.com/plinthos/plinth/pkg/api/machine"
	"github.com/plinthos/plinth/pkg/client"
)

func newKubeconfigCommand(g *globalFlags) *cobra.Command {
	var (
		server, contextName string
		force               bool
	)
	cmd := &cobra.Command{
		Use:   "kubeconfig [PATH]",
		Short: "Get an admin kubeconfig for the cluster and merge it into ~/.kube/config (or PATH)",
		Long: `Ask a control-plane node for an admin kubeconfig (a new client certificate, valid one year)
and merge it into ~/.kube/config ($KUBECONFIG's first file), or into PATH, with a context
named after the cluster, made current. PATH '-' prints it; a directory gets a file named
kubeconfig (refused if it exists, unless --force).`,
		Example: `  plinthctl -n 10.5.0.2 kubeconfig
  plinthctl kubeconfig ./kubeconfig --force
  plinthctl kubeconfig - --server https://127.0.0.1:6443`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return g.onNodes(cmd, false, func(ctx context.Context, s *session, node string, w io.Writer) error {
				if len(s.nodes) > 1 {
					return fmt.Errorf("give one control-plane node with -n")
				}
				resp, err := s.client.Machine.Kubeconfig(ctx, &machine.KubeconfigRequest{})
				if err != nil {
					return client.Describe(err)
				}
				name := contextName
				if name == "" {
					name = clusterNameOf(resp.Kubeconfig)
				}
				data, err := kubeconfig.Rename(resp.Kubeconfig, name, server)
				if err != nil {
					return err
				}
				return writeKubeconfig(w, args, data, name, force)
			})
		},
	}
	cmd.Flags().StringVar(&server, "server", "", "API server URL to put in the kubeconfig (default: the cluster's control-plane endpoint)")
	cmd.Flags().StringVar(&contextName, "context-name", "", "name of the context (default: the cluster's name)")
	cmd.Flags().BoolVar(&force, "force", false, "overwrite PATH when it is a file that exists (instead of merging)")
	return cmd
}

// writeKubeconfig prints, merges or writes a kubeconfig as the user asked.
func writeKubeconfig(w io.Writer, args []string, data []byte, name string, force bool) error {
	var path string
	switch {
	case len(args) == 1 && args[0] == "-":
		_, err := w.Write(data)
		return err
	case len(args) == 1:
		path = args[0]
		if st, err := os.Stat(path); err == nil && st.IsDir() {
			path = filepath.Join(path, "kubeconfig")
		}
		if force {
			if err := writeOutputs([]outputFile{{path, data, 0o600}}, true, nil); err != nil {
				return err
			}
			fmt.Fprintf(w, "wrote %s (context %q)\n", path, name)
			return nil
		}
	default:
		var err error
		if path, err = kubeconfig.DefaultPath(); err != nil {
			return err
		}
	}
	if err := kubeconfig.Merge(path, data); err != nil {
		return err
	}
	fmt.Fprintf(w, "merged context %q into %s and made it current\n", name, path)
	return nil
}

// clusterNameOf returns the name of a kubeconfig's first cluster.
func clusterNameOf(data []byte) string {
	kc, err := kubeconfig.Parse(data)
	if err != nil || len(kc.Clusters) == 0 || kc.Clusters[0].Name == "" {
		return "plinth"
	}
	return kc.Clusters[0].Name
}
