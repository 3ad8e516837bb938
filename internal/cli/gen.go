package cli

import (
	"fmt"
	"path/filepath"
	"slices"
	"time"

	"github.com/spf13/cobra"

	"github.com/plinthos/plinth/internal/configgen"
	"github.com/plinthos/plinth/pkg/config"
	"github.com/plinthos/plinth/pkg/config/patch"
	"github.com/plinthos/plinth/pkg/role"
	"github.com/plinthos/plinth/pkg/secrets"
)

func newGenCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "gen",
		Short: "Generate configurations, secrets, keys and certificates",
	}
	cmd.AddCommand(newGenConfigCommand(), newGenSecretsCommand(), newGenCACommand(), newGenKeyCommand(), newGenCSRCommand(), newGenCrtCommand())
	return cmd
}

// The output types of gen config.
const (
	outControlPlane = "controlplane"
	outWorker       = "worker"
	outPlinthconfig = "plinthconfig"
)

type genConfigFlags struct {
	outputDir         string
	force             bool
	withSecrets       string
	patches           []string
	patchesCP         []string
	patchesWorker     []string
	kubernetesVersion string
	installDisk       string
	dnsDomain         string
	additionalSANs    []string
	outputTypes       []string
	withDocs          bool
}

func newGenConfigCommand() *cobra.Command {
	f := &genConfigFlags{}
	cmd := &cobra.Command{
		Use:   "config CLUSTER-NAME ENDPOINT",
		Short: "Generate the machine configurations of a cluster and its client config",
		Long: `Generate controlplane.yaml, worker.yaml and plinthconfig for a new cluster.

ENDPOINT is the Kubernetes API URL, https://HOST:PORT, where HOST reaches the control-plane
nodes (a load balancer, a virtual IP, or the address of the first control-plane node).
Secrets (CAs, keys, tokens) are generated anew unless --with-secrets names a bundle made by
'plinthctl gen secrets': configs generated from one bundle share every secret.

Patches (--config-patch*) are strategic merge patches (a partial config in YAML) or RFC 6902
JSON patches, given inline or as @FILE. See docs/configuration.md.`,
		Example: `  plinthctl gen config demo https://10.5.0.2:6443
  plinthctl gen secrets -o secrets.yaml
  plinthctl gen config demo https://10.5.0.2:6443 --with-secrets secrets.yaml --output-dir _out
  plinthctl gen config demo https://lb.example.com:6443 --install-disk /dev/nvme0n1 \
      --config-patch-worker '{"machine": {"kubelet": {"nodeLabels": {"pool": "blue"}}}}' \
      --config-patch @common.yaml`,
		Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runGenConfig(cmd, f, args[0], args[1])
		},
	}
	fl := cmd.Flags()
	fl.StringVarP(&f.outputDir, "output-dir", "o", ".", "directory to write the files to")
	fl.BoolVar(&f.force, "force", false, "overwrite existing files")
	fl.StringVar(&f.withSecrets, "with-secrets", "", "use the secrets bundle in this file instead of generating new secrets")
	fl.StringArrayVar(&f.patches, "config-patch", nil, "patch applied to every machine config (inline or @FILE; repeatable)")
	fl.StringArrayVar(&f.patchesCP, "config-patch-control-plane", nil, "patch applied to the control-plane config (inline or @FILE; repeatable)")
	fl.StringArrayVar(&f.patchesWorker, "config-patch-worker", nil, "patch applied to the worker config (inline or @FILE; repeatable)")
	fl.StringVar(&f.kubernetesVersion, "kubernetes-version", config.DefaultKubernetesVersion, "Kubernetes version of the control-plane images")
	fl.StringVar(&f.installDisk, "install-disk", configgen.DefaultInstallDisk, "disk to install the OS to")
	fl.StringVar(&f.dnsDomain, "dns-domain", config.DefaultDNSDomain, "the cluster's DNS domain")
	fl.StringSliceVar(&f.additionalSANs, "additional-sans", nil, "extra DNS names or IPs for the API server and node API certificates (comma-separated)")
	fl.StringSliceVar(&f.outputTypes, "output-types", []string{outControlPlane, outWorker, outPlinthconfig}, "which files to write: controlplane, worker, plinthconfig")
	fl.BoolVar(&f.withDocs, "with-docs", true, "write comments explaining each field into the machine configs")
	return cmd
}

func runGenConfig(cmd *cobra.Command, f *genConfigFlags, name, endpoint string) error {
	for _, t := range f.outputTypes {
		if !slices.Contains([]string{outControlPlane, outWorker, outPlinthconfig}, t) {
			return fmt.Errorf("unknown output type %q: use controlplane, worker or plinthconfig", t)
		}
	}
	// Load every patch first, so a bad patch fails before any secret is generated.
	common, err := patch.LoadAll(f.patches)
	if err != nil {
		return err
	}
	cpPatches, err := patch.LoadAll(f.patchesCP)
	if err != nil {
		return err
	}
	workerPatches, err := patch.LoadAll(f.patchesWorker)
	if err != nil {
		return err
	}
	var bundle *secrets.Bundle
	if f.withSecrets != "" {
		if bundle, err = secrets.LoadFile(f.withSecrets); err != nil {
			return err
		}
	} else if bundle, err = secrets.Generate(time.Now()); err != nil {
		return err
	}
	configs, err := configgen.Generate(bundle, configgen.Options{
		ClusterName:       name,
		Endpoint:          endpoint,
		KubernetesVersion: f.kubernetesVersion,
		InstallDisk:       f.installDisk,
		DNSDomain:         f.dnsDomain,
		AdditionalSANs:    f.additionalSANs,
	})
	if err != nil {
		return err
	}
	cp, err := config.ApplyPatches(configs.ControlPlane, append(slices.Clone(common), cpPatches...), "controlplane.yaml")
	if err != nil {
		return err
	}
	worker, err := config.ApplyPatches(configs.Worker, append(slices.Clone(common), workerPatches...), "worker.yaml")
	if err != nil {
		return err
	}
	var files []outputFile
	for _, m := range []struct {
		typ, file string
		cfg       *config.MachineConfig
	}{{outControlPlane, "controlplane.yaml", cp}, {outWorker, "worker.yaml", worker}} {
		// Generated configs must be valid wherever they are used (cloud mode is the
		// loosest about platform-specific fields). Both are checked even when not written:
		// they check the cluster name and endpoint that plinthconfig uses too.
		if ps := config.Validate(m.cfg, config.ModeCloud); len(ps) > 0 {
			return fmt.Errorf("the generated %s is not valid (check the arguments and patches):\n%w", m.file, ps)
		}
		if !slices.Contains(f.outputTypes, m.typ) {
			continue
		}
		data, err := config.Marshal(m.cfg, f.withDocs)
		if err != nil {
			return err
		}
		files = append(files, outputFile{filepath.Join(f.outputDir, m.file), data, 0o600})
	}
	if slices.Contains(f.outputTypes, outPlinthconfig) {
		cc, err := configgen.ClientConfig(bundle, name, endpoint, nil, []string{role.Admin}, time.Now())
		if err != nil {
			return err
		}
		data, err := cc.Encode()
		if err != nil {
			return err
		}
		files = append(files, outputFile{filepath.Join(f.outputDir, "plinthconfig"), data, 0o600})
	}
	return writeOutputs(files, f.force, reportCreated(cmd))
}

func newGenSecretsCommand() *cobra.Command {
	var (
		output string
		force  bool
	)
	cmd := &cobra.Command{
		Use:   "secrets",
		Short: "Generate a secrets bundle (CAs, keys, tokens) for a new cluster",
		Long: `Generate every secret a cluster needs into one file: the node API, Kubernetes, etcd and
front-proxy CAs (valid 10 years), the service account key, the join and bootstrap tokens, the
secrets encryption key, and the cluster id and secret. Pass it to 'gen config --with-secrets'
to generate configurations that share them. Keep it safe: it holds every CA key.`,
		Example: `  plinthctl gen secrets -o secrets.yaml
  plinthctl gen config demo https://10.5.0.2:6443 --with-secrets secrets.yaml`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			b, err := secrets.Generate(time.Now())
			if err != nil {
				return err
			}
			data, err := b.Marshal()
			if err != nil {
				return err
			}
			return writeOutputs([]outputFile{{output, data, 0o600}}, force, reportCreated(cmd))
		},
	}
	cmd.Flags().StringVarP(&output, "output-file", "o", "secrets.yaml", "file to write the bundle to")
	cmd.Flags().BoolVar(&force, "force", false, "overwrite an existing file")
	return cmd
}
