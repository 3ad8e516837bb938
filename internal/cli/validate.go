package cli

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/plinthos/plinth/pkg/config"
)

func newValidateCommand() *cobra.Command {
	var file, mode string
	cmd := &cobra.Command{
		Use:   "validate",
		Short: "Validate a machine configuration file",
		Long: `Strictly decode and validate a machine configuration. Unknown or misspelled fields, values
of the wrong type and invalid values are reported with their file, line and field, and how to
fix them. Requirements depend on --mode: docker (no install disk needed), metal (an install
disk is required) or cloud. Exits 0 when the configuration is valid, 1 otherwise.`,
		Example: `  plinthctl validate --config controlplane.yaml --mode metal
  plinthctl validate -c worker.yaml -m docker`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			m, err := config.ParseMode(mode)
			if err != nil {
				return err
			}
			doc, err := config.LoadFile(file)
			if err != nil {
				return err
			}
			if err := doc.Validate(m); err != nil {
				return fmt.Errorf("%s is not valid for %s mode:\n%w", file, m, err)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%s is valid for %s mode\n", file, m)
			return nil
		},
	}
	cmd.Flags().StringVarP(&file, "config", "c", "", "machine configuration file (required)")
	cmd.Flags().StringVarP(&mode, "mode", "m", "metal", "validation mode: docker, metal or cloud")
	_ = cmd.MarkFlagRequired("config")
	_ = cmd.RegisterFlagCompletionFunc("mode", cobra.FixedCompletions([]string{"docker", "metal", "cloud"}, cobra.ShellCompDirectiveNoFileComp))
	return cmd
}
