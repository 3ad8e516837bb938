package cli

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/plinthos/plinth/pkg/pki"
	"github.com/plinthos/plinth/pkg/role"
)

func newGenCACommand() *cobra.Command {
	var (
		name, commonName string
		orgs             []string
		hours            int
		force            bool
	)
	cmd := &cobra.Command{
		Use:   "ca",
		Short: "Generate a self-signed certificate authority (NAME.crt and NAME.key)",
		Example: `  plinthctl gen ca --name my-ca --common-name "My CA" --hours 87600
  openssl x509 -in my-ca.crt -noout -text`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if hours <= 0 {
				return fmt.Errorf("--hours must be positive, got %d", hours)
			}
			if commonName == "" {
				commonName = name
			}
			ca, err := pki.NewCA(pki.CAOptions{CommonName: commonName, Organization: orgs, Validity: time.Duration(hours) * time.Hour})
			if err != nil {
				return err
			}
			return writeOutputs([]outputFile{{name + ".crt", ca.CertPEM, 0o644}, {name + ".key", ca.KeyPEM, 0o600}}, force, reportCreated(cmd))
		},
	}
	cmd.Flags().StringVar(&name, "name", "ca", "file name prefix: writes NAME.crt and NAME.key")
	cmd.Flags().StringVar(&commonName, "common-name", "", "subject common name (default: NAME)")
	cmd.Flags().StringSliceVar(&orgs, "organization", nil, "subject organization(s)")
	cmd.Flags().IntVar(&hours, "hours", 87600, "validity in hours (default 10 years)")
	cmd.Flags().BoolVar(&force, "force", false, "overwrite existing files")
	return cmd
}

func newGenKeyCommand() *cobra.Command {
	var (
		name  string
		force bool
	)
	cmd := &cobra.Command{
		Use:     "key",
		Short:   "Generate an ECDSA P-256 private key (NAME.key, PKCS#8 PEM)",
		Example: `  plinthctl gen key --name admin`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			_, keyPEM, err := pki.NewKey()
			if err != nil {
				return err
			}
			return writeOutputs([]outputFile{{name + ".key", keyPEM, 0o600}}, force, reportCreated(cmd))
		},
	}
	cmd.Flags().StringVar(&name, "name", "", "file name prefix: writes NAME.key (required)")
	cmd.Flags().BoolVar(&force, "force", false, "overwrite an existing file")
	_ = cmd.MarkFlagRequired("name")
	return cmd
}

func newGenCSRCommand() *cobra.Command {
	var (
		keyFile, commonName, roles string
		ips, dnsNames              []string
		force                      bool
	)
	cmd := &cobra.Command{
		Use:   "csr",
		Short: "Generate a certificate signing request for a key (KEY-NAME.csr)",
		Long: `Generate a CSR for an existing key. For a node API client certificate give --roles: they
become the Subject Organization that carries the role. For a server certificate give the
names and addresses it serves with --dns and --ip.`,
		Example: `  plinthctl gen key --name admin
  plinthctl gen csr --key admin.key --roles os:admin
  plinthctl gen csr --key node.key --ip 10.5.0.2 --dns node-1`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			keyPEM, err := os.ReadFile(keyFile)
			if err != nil {
				return fmt.Errorf("read key: %w", err)
			}
			key, err := pki.ParseKeyPEM(keyPEM)
			if err != nil {
				return fmt.Errorf("%s: %w", keyFile, err)
			}
			var orgs []string
			if roles != "" {
				if orgs, err = role.Parse(roles); err != nil {
					return err
				}
			}
			var parsedIPs []net.IP
			for _, s := range ips {
				ip := net.ParseIP(s)
				if ip == nil {
					return fmt.Errorf("--ip %q is not an IP address", s)
				}
				parsedIPs = append(parsedIPs, ip)
			}
			if commonName == "" {
				commonName = strings.TrimSuffix(filepath.Base(keyFile), filepath.Ext(keyFile))
			}
			csr, err := pki.NewCSR(key, commonName, orgs, dnsNames, parsedIPs)
			if err != nil {
				return err
			}
			out := strings.TrimSuffix(keyFile, filepath.Ext(keyFile)) + ".csr"
			return writeOutputs([]outputFile{{out, csr, 0o644}}, force, reportCreated(cmd))
		},
	}
	cmd.Flags().StringVar(&keyFile, "key", "", "PEM private key file (required)")
	cmd.Flags().StringVar(&commonName, "common-name", "", "subject common name (default: the key's file name)")
	cmd.Flags().StringVar(&roles, "roles", "", "node API roles, comma-separated: "+strings.Join(role.All, ", "))
	cmd.Flags().StringSliceVar(&ips, "ip", nil, "IP address SANs (comma-separated or repeated)")
	cmd.Flags().StringSliceVar(&dnsNames, "dns", nil, "DNS name SANs (comma-separated or repeated)")
	cmd.Flags().BoolVar(&force, "force", false, "overwrite an existing file")
	_ = cmd.MarkFlagRequired("key")
	return cmd
}

func newGenCrtCommand() *cobra.Command {
	var (
		caName, csrFile, name, usage string
		hours                        int
		force                        bool
	)
	cmd := &cobra.Command{
		Use:   "crt",
		Short: "Sign a CSR with a CA (NAME.crt)",
		Example: `  plinthctl gen crt --ca ca --csr admin.csr --name admin --usage client --hours 8760
  openssl verify -CAfile ca.crt admin.crt`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var u pki.Usage
			switch usage {
			case "client":
				u = pki.UsageClient
			case "server":
				u = pki.UsageServer
			case "both":
				u = pki.UsageClient | pki.UsageServer
			default:
				return fmt.Errorf("--usage %q must be client, server or both", usage)
			}
			if hours <= 0 {
				return fmt.Errorf("--hours must be positive, got %d", hours)
			}
			caCrt, err := os.ReadFile(caName + ".crt")
			if err != nil {
				return fmt.Errorf("read CA certificate (--ca %s reads %s.crt and %s.key): %w", caName, caName, caName, err)
			}
			caKey, err := os.ReadFile(caName + ".key")
			if err != nil {
				return fmt.Errorf("read CA key (--ca %s reads %s.crt and %s.key): %w", caName, caName, caName, err)
			}
			ca, err := pki.LoadCA(caCrt, caKey)
			if err != nil {
				return fmt.Errorf("CA %s: %w", caName, err)
			}
			csr, err := os.ReadFile(csrFile)
			if err != nil {
				return fmt.Errorf("read CSR: %w", err)
			}
			crt, err := pki.SignCSR(ca, csr, pki.CertOptions{Usage: u, Validity: time.Duration(hours) * time.Hour})
			if err != nil {
				return fmt.Errorf("%s: %w", csrFile, err)
			}
			return writeOutputs([]outputFile{{name + ".crt", crt, 0o644}}, force, reportCreated(cmd))
		},
	}
	cmd.Flags().StringVar(&caName, "ca", "", "CA file name prefix: reads CA.crt and CA.key (required)")
	cmd.Flags().StringVar(&csrFile, "csr", "", "CSR file to sign (required)")
	cmd.Flags().StringVar(&name, "name", "", "file name prefix of the certificate: writes NAME.crt (required)")
	cmd.Flags().StringVar(&usage, "usage", "client", "certificate usage: client, server or both")
	cmd.Flags().IntVar(&hours, "hours", 8760, "validity in hours (capped at the CA's expiry)")
	cmd.Flags().BoolVar(&force, "force", false, "overwrite an existing file")
	for _, f := range []string{"ca", "csr", "name"} {
		_ = cmd.MarkFlagRequired(f)
	}
	return cmd
}

func reportCreated(cmd *cobra.Command) func(string) {
	return func(path string) { fmt.Fprintf(cmd.OutOrStdout(), "created %s\n", path) }
}
