package controllers

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"

	"github.com/plinthos/plinth/internal/atomicfile"
	"github.com/plinthos/plinth/internal/clock"
	"github.com/plinthos/plinth/internal/controller"
	"github.com/plinthos/plinth/internal/ports"
	"github.com/plinthos/plinth/internal/resources"
	"github.com/plinthos/plinth/internal/trustd"
	"github.com/plinthos/plinth/pkg/api/security"
	"github.com/plinthos/plinth/pkg/config"
	"github.com/plinthos/plinth/pkg/pki"
	"github.com/plinthos/plinth/pkg/role"
)

// APICertValidity is the lifetime of the node API certificate; it is renewed once two
// thirds of it have passed.
const APICertValidity = trustd.CertValidity

// APICertificate keeps the node's API (apid) certificate current: issued from the node API
// CA on control-plane nodes, obtained from trustd with the join token on workers, renewed
// well before it expires and whenever the node's names or addresses change. It writes the
// files apid serves with.
type APICertificate struct {
	// IdentityDir receives ca.crt, apid.crt and apid.key.
	IdentityDir string
	// TrustdEndpoints override where workers ask for their certificate (HOST:PORT each,
	// tried in order); empty means the control-plane endpoint's host on port 50001.
	TrustdEndpoints []string
	// Owner, when set, is the uid and gid that must own the files (apid's user).
	Owner *[2]int
	// SourceAddress, when set, is the local address requests to trustd come from: trustd
	// signs only the address it sees the request come from.
	SourceAddress string
}

// Name implements controller.Controller.
func (c *APICertificate) Name() string { return "secrets.APICertificate" }

// Inputs implements controller.Controller.
func (c *APICertificate) Inputs() []controller.Input {
	return []controller.Input{
		machineConfigInput,
		{Namespace: resources.NamespaceNetwork, Type: resources.HostnameType},
		{Namespace: resources.NamespaceNetwork, Type: resources.NodeAddressType},
	}
}

// Outputs implements controller.Controller.
func (c *APICertificate) Outputs() []controller.Output {
	return []controller.Output{{Type: resources.APICertificateType}}
}

// Run implements controller.Controller.
func (c *APICertificate) Run(ctx context.Context, rt controller.Runtime, log *slog.Logger) error {
	var (
		renew    clock.Timer
		issued   []string // the SANs of the current certificate
		renewDue bool
	)
	defer func() {
		if renew != nil {
			renew.Stop()
		}
	}()
	for {
		var renewC <-chan time.Time
		if renew != nil {
			renewC = renew.C()
		}
		select {
		case <-ctx.Done():
			return nil
		case <-rt.EventCh():
		case <-renewC:
			renewDue = true
		}
		cfg, err := machineConfig(rt)
		if err != nil {
			return err
		}
		host, okHost, err := get[resources.HostnameSpec](rt, resources.NamespaceNetwork, resources.HostnameType, resources.HostnameID)
		if err != nil {
			return err
		}
		addrs, okAddrs, err := get[resources.NodeAddressSpec](rt, resources.NamespaceNetwork, resources.NodeAddressType, resources.DefaultID)
		if err != nil {
			return err
		}
		if cfg == nil || !okHost || !okAddrs {
			continue
		}
		sans := wantedSANs(cfg, host, addrs)
		if !renewDue && slices.Equal(sans, issued) {
			continue
		}
		spec, err := c.obtain(ctx, cfg, sans, addrs, rt.Clock().Now())
		if err != nil {
			return err
		}
		if err := c.writeFiles(spec); err != nil {
			return err
		}
		if err := set(ctx, rt, resources.NamespaceSecrets, resources.APICertificateType, resources.APIID, spec); err != nil {
			return err
		}
		cert, err := pki.ParseCertPEM(spec.Crt)
		if err != nil {
			return err
		}
		at := cert.NotBefore.Add(cert.NotAfter.Sub(cert.NotBefore) * 2 / 3)
		if renew != nil {
			renew.Stop()
		}
		renew = rt.Clock().NewTimer(at.Sub(rt.Clock().Now()))
		issued, renewDue = sans, false
		log.Info("node API certificate issued", "sans", sans, "expires", cert.NotAfter, "renews", at)
	}
}

// wantedSANs lists the names and addresses the certificate must carry, sorted.
func wantedSANs(cfg *config.MachineConfig, host resources.HostnameSpec, addrs resources.NodeAddressSpec) []string {
	sans := append([]string{}, addrs.Addresses...)
	if cfg.Machine.Type == config.TypeControlPlane {
		// Workers get only their address from trustd; names cannot be verified there.
		// Loopback names too: a node's API is reached through a published port on the
		// workstation's 127.0.0.1 in local clusters.
		sans = append(sans, host.Hostname, "127.0.0.1", "localhost")
		if fqdn := host.FQDN(); fqdn != host.Hostname {
			sans = append(sans, fqdn)
		}
		sans = append(sans, cfg.Machine.CertSANs...)
	}
	slices.Sort(sans)
	return slices.Compact(sans)
}

// obtain issues (control plane) or requests (worker) a certificate for sans.
func (c *APICertificate) obtain(ctx context.Context, cfg *config.MachineConfig, sans []string, addrs resources.NodeAddressSpec, now time.Time) (resources.APICertificateSpec, error) {
	var ips []net.IP
	var names []string
	for _, s := range sans {
		if ip := net.ParseIP(s); ip != nil {
			ips = append(ips, ip)
		} else {
			names = append(names, s)
		}
	}
	if cfg.Machine.Type == config.TypeControlPlane {
		ca, err := pki.LoadCA(cfg.Machine.CA.Crt, cfg.Machine.CA.Key)
		if err != nil {
			return resources.APICertificateSpec{}, fmt.Errorf("node API CA: %w", err)
		}
		// A control plane's certificate also lets its apid forward requests to other
		// nodes (role.Forwarder, client usage); it grants no role of its own.
		kp, err := pki.Issue(ca, pki.CertOptions{CommonName: names0(names, sans), Organization: []string{role.Forwarder},
			DNSNames: names, IPAddresses: ips, Usage: pki.UsageServer | pki.UsageClient, Validity: APICertValidity, Now: now})
		if err != nil {
			return resources.APICertificateSpec{}, fmt.Errorf("issue node API certificate: %w", err)
		}
		return resources.APICertificateSpec{CA: cfg.Machine.CA.Crt, Crt: kp.CertPEM, Key: kp.KeyPEM}, nil
	}
	return c.fromTrustd(ctx, cfg, ips)
}

func names0(names, sans []string) string {
	if len(names) > 0 {
		return names[0]
	}
	return sans[0]
}

// fromTrustd asks a control-plane node's trustd for a certificate for ips: the
// configured trustd endpoints in turn until one answers, by default the control-plane
// endpoint's host.
func (c *APICertificate) fromTrustd(ctx context.Context, cfg *config.MachineConfig, ips []net.IP) (resources.APICertificateSpec, error) {
	endpoints := c.TrustdEndpoints
	if len(endpoints) == 0 {
		u, err := url.Parse(cfg.Cluster.ControlPlane.Endpoint)
		if err != nil {
			return resources.APICertificateSpec{}, fmt.Errorf("control-plane endpoint: %w", err)
		}
		endpoints = []string{ports.HostPort(u.Hostname(), ports.Trustd)}
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(cfg.Machine.CA.Crt) {
		return resources.APICertificateSpec{}, errors.New("machine.ca.crt is not a PEM certificate")
	}
	key, keyPEM, err := pki.NewKey()
	if err != nil {
		return resources.APICertificateSpec{}, err
	}
	csr, err := pki.NewCSR(key, "", nil, nil, ips)
	if err != nil {
		return resources.APICertificateSpec{}, err
	}
	var errs []error
	for _, endpoint := range endpoints {
		resp, err := c.askTrustd(ctx, endpoint, pool, &security.CertificateRequest{Token: cfg.Machine.Token, Csr: csr})
		if err == nil {
			return resources.APICertificateSpec{CA: resp.Ca, Crt: resp.Crt, Key: keyPEM}, nil
		}
		errs = append(errs, fmt.Errorf("trustd %s: %w", endpoint, err))
	}
	return resources.APICertificateSpec{}, errors.Join(errs...)
}

// askTrustd sends req to the trustd at endpoint, from SourceAddress when it is set.
func (c *APICertificate) askTrustd(ctx context.Context, endpoint string, roots *x509.CertPool, req *security.CertificateRequest) (*security.CertificateResponse, error) {
	opts := []grpc.DialOption{grpc.WithTransportCredentials(credentials.NewTLS(&tls.Config{MinVersion: tls.VersionTLS13, RootCAs: roots}))}
	if c.SourceAddress != "" {
		d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(c.SourceAddress)}}
		opts = append(opts, grpc.WithContextDialer(func(ctx context.Context, addr string) (net.Conn, error) {
			return d.DialContext(ctx, "tcp", addr)
		}))
	}
	conn, err := grpc.NewClient(endpoint, opts...)
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	return security.NewSecurityServiceClient(conn).Certificate(ctx, req)
}

// writeFiles writes the identity for apid: the key first, so that a reader that sees the
// new certificate also finds its key.
func (c *APICertificate) writeFiles(spec resources.APICertificateSpec) error {
	if err := os.MkdirAll(c.IdentityDir, 0o700); err != nil {
		return fmt.Errorf("create %s: %w", c.IdentityDir, err)
	}
	for _, f := range []struct {
		name string
		data []byte
	}{{"apid.key", spec.Key}, {"apid.crt", spec.Crt}, {"ca.crt", spec.CA}} {
		path := filepath.Join(c.IdentityDir, f.name)
		if err := atomicfile.Write(path, f.data, 0o600); err != nil {
			return err
		}
		if c.Owner != nil {
			if err := os.Chown(path, c.Owner[0], c.Owner[1]); err != nil {
				return fmt.Errorf("give %s to apid's user: %w", path, err)
			}
		}
	}
	return nil
}
