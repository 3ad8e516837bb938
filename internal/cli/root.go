// Package cli builds plinthctl's command tree. Commands parse flags and call into the
// packages that do the work; they hold no behaviour of their own beyond printing.
package cli

import (
	"github.com/spf13/cobra"

	"github.com/plinthos/plinth/internal/version"
	"github.com/plinthos/plinth/pkg/clientconfig"
)

// globalFlags are the flags shared by every command that talks to nodes or reads the
// client config.
type globalFlags struct {
	plinthconfig string
	context      string
	nodeFlags
}

// configPath resolves the plinthconfig path: the flag, then $PLINTHCONFIG, then the default.
func (g *globalFlags) configPath() (string, error) {
	if g.plinthconfig != "" {
		return g.plinthconfig, nil
	}
	return clientconfig.DefaultPath()
}

// loadConfigFile reads the client config at configPath (an empty config when the file
// does not exist) and returns it with its path.
func (g *globalFlags) loadConfigFile() (string, *clientconfig.Config, error) {
	path, err := g.configPath()
	if err != nil {
		return "", nil, err
	}
	cfg, err := clientconfig.Load(path)
	if err != nil {
		return "", nil, err
	}
	return path, cfg, nil
}

// NewRootCommand returns plinthctl's root command.
func NewRootCommand() *cobra.Command {
	g := &globalFlags{}
	root := &cobra.Command{
		Use:   "plinthctl",
		Short: "Manage Plinth nodes and clusters",
		Long: `plinthctl manages Plinth, a minimal, immutable OS for Kubernetes. Nodes have no shell
or SSH; everything goes through their mTLS API, driven from here.

Start with 'plinthctl gen config NAME https://ENDPOINT:6443' to generate a cluster's
configuration, and 'plinthctl validate' to check a machine configuration.`,
		Version:       version.Tag,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.PersistentFlags().StringVar(&g.plinthconfig, "plinthconfig", "", "path to the client config (default $PLINTHCONFIG or ~/.plinth/config)")
	root.PersistentFlags().StringVar(&g.context, "context", "", "context of the client config to use (default: its current context)")
	addNodeFlags(root, g)
	root.AddCommand(
		newVersionCommand(g),
		newGetCommand(g),
		newServicesCommand(g),
		newServiceCommand(g),
		newLogsCommand(g),
		newEventsCommand(g),
		newApplyConfigCommand(g),
		newRebootCommand(g),
		newShutdownCommand(g),
		newResetCommand(g),
		newUpgradeCommand(g),
		newRollbackCommand(g),
		newUpgradeK8sCommand(g),
		newProcessesCommand(g),
		newMemoryCommand(g),
		newMountsCommand(g),
		newDmesgCommand(g),
		newListCommand(g),
		newReadCommand(g),
		newCopyCommand(g),
		newBootstrapCommand(g),
		newKubeconfigCommand(g),
		newHealthCommand(g),
		newContainersCommand(g),
		newStatsCommand(g),
		newSupportCommand(g),
		newMetricsCommand(g),
		newDashboardCommand(g),
		newImageCommand(g),
		newEtcdCommand(g),
		newGenCommand(),
		newValidateCommand(),
		newMachineConfigCommand(),
		newConfigCommand(g),
		newClusterCommand(g),
	)
	return root
}
