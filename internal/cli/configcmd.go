package cli

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/plinthos/plinth/internal/configgen"
	"github.com/plinthos/plinth/internal/maintenance"
	"github.com/plinthos/plinth/pkg/api/machine"
	"github.com/plinthos/plinth/pkg/client"
	"github.com/plinthos/plinth/pkg/clientconfig"
	"github.com/plinthos/plinth/pkg/pki"
	"github.com/plinthos/plinth/pkg/role"
)

func newConfigCommand(g *globalFlags) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "config",
		Short: "Manage the client config (plinthconfig): contexts, endpoints, nodes",
		Long: `Manage plinthctl's client config. Its path is --plinthconfig, else $PLINTHCONFIG, else
~/.plinth/config. Each context holds the node API endpoints, the default nodes, the CA of
the node API and a client certificate whose Subject Organization carries the role.`,
	}
	cmd.AddCommand(
		newConfigContextsCommand(g),
		newConfigContextCommand(g),
		newConfigEndpointCommand(g),
		newConfigNodeCommand(g),
		newConfigMergeCommand(g),
		newConfigInfoCommand(g),
		newConfigNewCommand(g),
	)
	return cmd
}

// loadClientConfig loads the client config and the context selected by --context (or the
// current one).
func loadClientConfig(g *globalFlags) (path string, cfg *clientconfig.Config, name string, ctx *clientconfig.Context, err error) {
	if path, cfg, err = g.loadConfigFile(); err != nil {
		return
	}
	if g.context != "" {
		name = g.context
		if ctx = cfg.Contexts[name]; ctx == nil {
			err = fmt.Errorf("context %q is not in %s; list them with `plinthctl config contexts`", name, path)
		}
		return
	}
	name, ctx, err = cfg.Current()
	if err != nil {
		err = fmt.Errorf("%s: %w", path, err)
	}
	return
}

func completeContexts(g *globalFlags) cobra.CompletionFunc {
	return func(_ *cobra.Command, args []string, _ string) ([]string, cobra.ShellCompDirective) {
		if len(args) > 0 {
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		_, cfg, err := g.loadConfigFile()
		if err != nil {
			return nil, cobra.ShellCompDirectiveError
		}
		return cfg.Names(), cobra.ShellCompDirectiveNoFileComp
	}
}

func newConfigContextsCommand(g *globalFlags) *cobra.Command {
	return &cobra.Command{
		Use:     "contexts",
		Short:   "List the contexts of the client config",
		Example: `  plinthctl config contexts`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			_, cfg, err := g.loadConfigFile()
			if err != nil {
				return err
			}
			w := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
			fmt.Fprintln(w, "CURRENT\tNAME\tENDPOINTS\tNODES")
			for _, name := range cfg.Names() {
				c := cfg.Contexts[name]
				mark := ""
				if name == cfg.Context {
					mark = "*"
				}
				fmt.Fprintf(w, "%s\t%s\t%s\t%s\n", mark, name, strings.Join(c.Endpoints, ","), strings.Join(c.Nodes, ","))
			}
			return w.Flush()
		},
	}
}

func newConfigContextCommand(g *globalFlags) *cobra.Command {
	return &cobra.Command{
		Use:               "context NAME",
		Short:             "Make NAME the current context",
		Example:           `  plinthctl config context demo`,
		Args:              cobra.ExactArgs(1),
		ValidArgsFunction: completeContexts(g),
		RunE: func(cmd *cobra.Command, args []string) error {
			path, cfg, err := g.loadConfigFile()
			if err != nil {
				return err
			}
			if cfg.Contexts[args[0]] == nil {
				return fmt.Errorf("context %q is not in %s; the contexts are: %s", args[0], path, strings.Join(cfg.Names(), ", "))
			}
			cfg.Context = args[0]
			if err := cfg.Save(path); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "current context is now %q\n", args[0])
			return nil
		},
	}
}

// newConfigListCommand builds `config endpoint` and `config node`, which set one list of
// the selected context.
func newConfigListCommand(g *globalFlags, use, short, example string, minArgs int, field func(*clientconfig.Context) *[]string) *cobra.Command {
	return &cobra.Command{
		Use:     use,
		Short:   short,
		Example: example,
		Args:    cobra.MinimumNArgs(minArgs),
		RunE: func(cmd *cobra.Command, args []string) error {
			path, cfg, name, ctx, err := loadClientConfig(g)
			if err != nil {
				return err
			}
			for _, a := range args {
				if strings.TrimSpace(a) == "" || strings.ContainsAny(a, " ,/") {
					return fmt.Errorf("%q is not an address; give host names or IP addresses separated by spaces", a)
				}
			}
			*field(ctx) = args
			if err := cfg.Save(path); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "context %q updated\n", name)
			return nil
		},
	}
}

func newConfigEndpointCommand(g *globalFlags) *cobra.Command {
	cmd := newConfigListCommand(g, "endpoint ADDRESS...", "Set the node API endpoints of the context",
		`  plinthctl config endpoint 10.5.0.2 10.5.0.3`, 1,
		func(c *clientconfig.Context) *[]string { return &c.Endpoints })
	cmd.Aliases = []string{"endpoints"}
	return cmd
}

func newConfigNodeCommand(g *globalFlags) *cobra.Command {
	cmd := newConfigListCommand(g, "node [ADDRESS...]", "Set the default nodes of the context (none: clear them)",
		`  plinthctl config node 10.5.0.3
  plinthctl config node   # clear`, 0,
		func(c *clientconfig.Context) *[]string { return &c.Nodes })
	cmd.Aliases = []string{"nodes"}
	return cmd
}

func newConfigMergeCommand(g *globalFlags) *cobra.Command {
	return &cobra.Command{
		Use:   "merge FILE",
		Short: "Merge the contexts of another client config into this one",
		Long: `Add every context of FILE to the client config and make FILE's current context current.
A context whose name is taken is added as NAME-1, NAME-2, ... and the rename is printed.`,
		Example: `  plinthctl config merge ./plinthconfig`,
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			path, cfg, err := g.loadConfigFile()
			if err != nil {
				return err
			}
			other, err := clientconfig.Load(args[0])
			if err != nil {
				return err
			}
			if len(other.Contexts) == 0 {
				return fmt.Errorf("%s has no contexts to merge (is it a plinthconfig file?)", args[0])
			}
			renamed := cfg.Merge(other)
			if err := cfg.Save(path); err != nil {
				return err
			}
			for _, name := range other.Names() {
				if n, ok := renamed[name]; ok {
					fmt.Fprintf(cmd.OutOrStdout(), "context %q already existed: added as %q\n", name, n)
				} else {
					fmt.Fprintf(cmd.OutOrStdout(), "added context %q\n", name)
				}
			}
			fmt.Fprintf(cmd.OutOrStdout(), "current context is %q (in %s)\n", cfg.Context, path)
			return nil
		},
	}
}

func newConfigInfoCommand(g *globalFlags) *cobra.Command {
	return &cobra.Command{
		Use:   "info",
		Short: "Show the context in use: endpoints, nodes, roles and certificate expiry",
		Example: `  plinthctl config info
  plinthctl --context other config info`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			_, _, name, ctx, err := loadClientConfig(g)
			if err != nil {
				return err
			}
			cert, err := pki.ParseCertPEM(ctx.Crt)
			if err != nil {
				return fmt.Errorf("context %q: client certificate: %w", name, err)
			}
			sum := sha256.Sum256(cert.Raw)
			w := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
			fmt.Fprintf(w, "Current context:\t%s\n", name)
			fmt.Fprintf(w, "Endpoints:\t%s\n", orNone(ctx.Endpoints))
			fmt.Fprintf(w, "Nodes:\t%s\n", orNone(ctx.Nodes))
			fmt.Fprintf(w, "Roles:\t%s\n", orNone(cert.Subject.Organization))
			fmt.Fprintf(w, "Certificate fingerprint:\tSHA256:%s\n", hex.EncodeToString(sum[:]))
			// The serial is what a revocation names (machine.revokedCertificates).
			fmt.Fprintf(w, "Certificate serial:\t%s\n", cert.SerialNumber.Text(16))
			left := time.Until(cert.NotAfter).Round(time.Hour)
			status := fmt.Sprintf("%s (in %s)", cert.NotAfter.UTC().Format(time.RFC3339), left)
			if left <= 0 {
				status = fmt.Sprintf("%s (EXPIRED; ask an admin for a new client config)", cert.NotAfter.UTC().Format(time.RFC3339))
			}
			fmt.Fprintf(w, "Certificate expires:\t%s\n", status)
			// What a machine in maintenance mode is given to trust this context's CA.
			if anchor, err := maintenance.AnchorOfPEM(ctx.CA); err == nil {
				fmt.Fprintf(w, "Trust anchor:\tplinth.trust=%s\n", anchor)
			}
			return w.Flush()
		},
	}
}

func orNone(list []string) string {
	if len(list) == 0 {
		return "(none)"
	}
	return strings.Join(list, ", ")
}

func newConfigNewCommand(g *globalFlags) *cobra.Command {
	var (
		roles  string
		crtTTL time.Duration
		force  bool
	)
	cmd := &cobra.Command{
		Use:   "new FILE",
		Short: "Mint a client config for other roles (admins only)",
		Long: `Ask a node to sign a new client certificate with the given roles and write a client
config using it to FILE. Needs os:admin; the node must be a control-plane node.

The certificate is valid for 30 days unless --crt-ttl says otherwise, and for at most
one year. To withdraw it before then, revoke its serial (plinthctl config info shows it):
see docs/security.md.`,
		Example: `  plinthctl config new reader.plinthconfig --roles os:reader
  plinthctl config new backup.plinthconfig --roles os:etcd:backup --crt-ttl 720h`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			parsed, err := role.Parse(roles)
			if err != nil {
				return err
			}
			s, err := g.connect()
			if err != nil {
				return err
			}
			defer s.client.Close()
			ctx := cmd.Context()
			if len(s.nodes) > 0 {
				ctx = withNode(ctx, s.nodes[0])
			}
			resp, err := s.client.Machine.GenerateClientConfiguration(ctx, &machine.GenerateClientConfigurationRequest{Roles: parsed, CrtTtl: durationpb.New(crtTTL)})
			if err != nil {
				return client.Describe(err)
			}
			return writeOutputs([]outputFile{{args[0], resp.Plinthconfig, 0o600}}, force, reportCreated(cmd))
		},
	}
	cmd.Flags().StringVar(&roles, "roles", role.Reader, "roles of the new certificate, comma-separated: "+strings.Join(role.All, ", "))
	cmd.Flags().DurationVar(&crtTTL, "crt-ttl", configgen.DefaultClientCertValidity, "validity of the new certificate (at most 8760h, one year)")
	cmd.Flags().BoolVar(&force, "force", false, "overwrite FILE")
	return cmd
}
