package cli

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/plinthos/plinth/internal/atomicfile"
	"github.com/plinthos/plinth/pkg/config"
	"github.com/plinthos/plinth/pkg/config/patch"
)

func newMachineConfigCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:     "machineconfig",
		Aliases: []string{"mc"},
		Short:   "Work on machine configuration files",
	}
	cmd.AddCommand(newMachineConfigPatchCommand())
	return cmd
}

func newMachineConfigPatchCommand() *cobra.Command {
	var (
		patches  []string
		output   string
		withDocs bool
	)
	cmd := &cobra.Command{
		Use:   "patch FILE",
		Short: "Apply patches to a machine configuration",
		Long: `Apply strategic merge patches (a partial config in YAML) and RFC 6902 JSON patches to a
machine configuration, in order, and print the result (or write it with -o). The result is
strictly decoded, so a patch cannot introduce an unknown field. See docs/configuration.md
for the merge rules.`,
		Example: `  plinthctl machineconfig patch worker.yaml --patch @gpu.yaml -o worker-gpu.yaml
  plinthctl machineconfig patch controlplane.yaml \
      --patch '[{"op": "add", "path": "/cluster/allowSchedulingOnControlPlanes", "value": true}]'
  plinthctl machineconfig patch worker.yaml \
      --patch '{"machine": {"install": {"disk": {"$patch": "delete"}}}}'`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(patches) == 0 {
				return fmt.Errorf("no patch given; add --patch @FILE or --patch 'YAML'")
			}
			ps, err := patch.LoadAll(patches)
			if err != nil {
				return err
			}
			doc, err := config.LoadFile(args[0])
			if err != nil {
				return err
			}
			patched, err := config.ApplyPatches(doc.Config, ps, args[0])
			if err != nil {
				return err
			}
			data, err := config.Marshal(patched, withDocs)
			if err != nil {
				return err
			}
			if output == "" {
				_, err := cmd.OutOrStdout().Write(data)
				return err
			}
			if err := atomicfile.Write(output, data, 0o600); err != nil {
				return err
			}
			fmt.Fprintf(cmd.ErrOrStderr(), "wrote %s\n", output)
			return nil
		},
	}
	cmd.Flags().StringArrayVarP(&patches, "patch", "p", nil, "patch to apply, inline or @FILE (repeatable, applied in order)")
	cmd.Flags().StringVarP(&output, "output", "o", "", "write the result to this file instead of standard output")
	cmd.Flags().BoolVar(&withDocs, "with-docs", false, "write comments explaining each field")
	return cmd
}
