package configgen_test

import (
	"bytes"
	"crypto/x509"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/plinthos/plinth/internal/configgen"
	"github.com/plinthos/plinth/pkg/config"
	"github.com/plinthos/plinth/pkg/pki"
	"github.com/plinthos/plinth/pkg/role"
	"github.com/plinthos/plinth/pkg/secrets"
)

func bundle(t *testing.T) *secrets.Bundle {
	t.Helper()
	b, err := secrets.Generate(time.Now())
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestNormalizeVersion(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"1.37.2", "v1.37.2"},
		{"v1.37.2", "v1.37.2"},
		{"1.37.1", "v1.37.1"},
		{" v1.30.0 ", "v1.30.0"},
		{"1.100.12", "v1.100.12"},
		{"", config.DefaultKubernetesVersion},
		{"   ", config.DefaultKubernetesVersion},
	} {
		got, err := configgen.NormalizeVersion(tc.in)
		if err != nil || got != tc.want {
			t.Errorf("NormalizeVersion(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
		}
	}
	for _, in := range []string{"1.37", "v1", "1.37.2.1", "latest", "v", "1..2", "1.37.x", "vv1.37.2", "1.37.2-rc.0", "-1.2.3", "1.2.3 4", "1.37.", ".1.2"} {
		if got, err := configgen.NormalizeVersion(in); err == nil {
			t.Errorf("NormalizeVersion(%q) = %q, want an error", in, got)
		} else if !strings.Contains(err.Error(), "MAJOR.MINOR.PATCH") {
			t.Errorf("NormalizeVersion(%q) error %q does not say the expected form", in, err)
		}
	}
}

func TestGenerate(t *testing.T) {
	b := bundle(t)
	cfgs, err := configgen.Generate(b, configgen.Options{
		ClusterName:       "demo",
		Endpoint:          "https://10.5.0.2:6443",
		KubernetesVersion: "1.37.1",
		AdditionalSANs:    []string{"lb.example.com", "10.0.0.9"},
	})
	if err != nil {
		t.Fatal(err)
	}
	cp, w := cfgs.ControlPlane, cfgs.Worker
	for name, c := range map[string]*config.MachineConfig{"controlplane": cp, "worker": w} {
		for _, mode := range config.Modes {
			if ps := config.Validate(c, mode); len(ps) > 0 {
				t.Errorf("generated %s is not valid in %s mode:\n%v", name, mode, ps)
			}
		}
	}
	if cp.Machine.Type != config.TypeControlPlane || w.Machine.Type != config.TypeWorker {
		t.Errorf("types = %q, %q", cp.Machine.Type, w.Machine.Type)
	}
	if got := cp.Cluster.APIServer.Image; !strings.HasSuffix(got, ":v1.37.1") {
		t.Errorf("apiserver image = %q, want tag v1.37.1", got)
	}
	if cp.Machine.Install.Disk != configgen.DefaultInstallDisk || cp.Cluster.Network.DNSDomain != config.DefaultDNSDomain {
		t.Errorf("defaults not applied: disk %q, dns domain %q", cp.Machine.Install.Disk, cp.Cluster.Network.DNSDomain)
	}
	wantSANs := []string{"lb.example.com", "10.0.0.9"}
	if !slices.Equal(cp.Machine.CertSANs, wantSANs) || !slices.Equal(cp.Cluster.APIServer.CertSANs, wantSANs) {
		t.Errorf("SANs = %q / %q", cp.Machine.CertSANs, cp.Cluster.APIServer.CertSANs)
	}
	if cp.Machine.Token != b.Tokens.Join || cp.Cluster.Token != b.Tokens.Bootstrap || cp.Cluster.ID != b.Cluster.ID {
		t.Error("secrets not taken from the bundle")
	}
	// Worker: certificates only.
	if len(w.Machine.CA.Key) != 0 || len(w.Cluster.CA.Key) != 0 || len(w.Cluster.AggregatorCA.Crt) != 0 ||
		len(w.Cluster.Etcd.CA.Crt) != 0 || len(w.Cluster.ServiceAccount.Key) != 0 || w.Cluster.SecretboxEncryptionSecret != "" {
		t.Error("the worker config holds control-plane secrets")
	}
	if !bytes.Equal(w.Machine.CA.Crt, b.CAs.OS.Crt) || !bytes.Equal(w.Cluster.CA.Crt, b.CAs.Kubernetes.Crt) {
		t.Error("the worker config lacks the CA certificates")
	}
	// Deriving the worker must not strip the control-plane config.
	if len(cp.Machine.CA.Key) == 0 || len(cp.Cluster.Etcd.CA.Key) == 0 || len(cp.Cluster.ServiceAccount.Key) == 0 {
		t.Error("the control-plane config lost its keys")
	}
}

func TestGenerateRejectsBadVersion(t *testing.T) {
	if _, err := configgen.Generate(bundle(t), configgen.Options{ClusterName: "demo", Endpoint: "https://10.5.0.2:6443", KubernetesVersion: "1.37"}); err == nil {
		t.Error("Generate accepted version 1.37")
	}
}

// TestGenerateConfigsAreIndependent checks that changing the generated control-plane
// config does not change the worker config and the reverse (they share no slices or maps).
func TestGenerateConfigsAreIndependent(t *testing.T) {
	cfgs, err := configgen.Generate(bundle(t), configgen.Options{ClusterName: "demo", Endpoint: "https://10.5.0.2:6443", AdditionalSANs: []string{"a.example.com"}})
	if err != nil {
		t.Fatal(err)
	}
	cfgs.ControlPlane.Machine.CertSANs[0] = "changed.example.com"
	cfgs.ControlPlane.Cluster.Network.PodSubnets[0] = "10.0.0.0/8"
	if cfgs.Worker.Machine.CertSANs[0] != "a.example.com" || cfgs.Worker.Cluster.Network.PodSubnets[0] != config.DefaultPodSubnet {
		t.Error("the worker config shares slices with the control-plane config: editing one changed the other")
	}
}

func TestClientConfig(t *testing.T) {
	b := bundle(t)
	now := time.Now()
	for _, tc := range []struct {
		endpoint  string
		endpoints []string
		want      []string
	}{
		{"https://10.5.0.2:6443", nil, []string{"10.5.0.2"}},
		{"https://lb.example.com:6443", nil, []string{"lb.example.com"}},
		{"https://[fd00::2]:6443", nil, []string{"fd00::2"}},
		{"https://lb.example.com", nil, []string{"lb.example.com"}},
		{"https://10.5.0.2:6443", []string{"10.5.0.3", "10.5.0.4"}, []string{"10.5.0.3", "10.5.0.4"}},
	} {
		cc, err := configgen.ClientConfig(b, "demo", tc.endpoint, tc.endpoints, []string{role.Admin}, now)
		if err != nil {
			t.Errorf("ClientConfig(%q, %q): %v", tc.endpoint, tc.endpoints, err)
			continue
		}
		name, ctx, err := cc.Current()
		if err != nil || name != "demo" {
			t.Fatalf("Current() = %q, %v", name, err)
		}
		if !slices.Equal(ctx.Endpoints, tc.want) {
			t.Errorf("ClientConfig(%q, %q) endpoints = %q, want %q", tc.endpoint, tc.endpoints, ctx.Endpoints, tc.want)
		}
		if len(ctx.Nodes) != 0 {
			t.Errorf("nodes = %q, want none", ctx.Nodes)
		}
		if !bytes.Equal(ctx.CA, b.CAs.OS.Crt) {
			t.Error("the context CA is not the node API CA")
		}
	}
	for _, bad := range []string{"foo", "", "10.5.0.2:6443", "https://:6443", "https://"} {
		if _, err := configgen.ClientConfig(b, "demo", bad, nil, []string{role.Admin}, now); err == nil {
			t.Errorf("ClientConfig accepted endpoint %q", bad)
		}
	}
}

func TestClientConfigCertificate(t *testing.T) {
	b := bundle(t)
	now := time.Now()
	cc, err := configgen.ClientConfig(b, "demo", "https://10.5.0.2:6443", nil, []string{role.Admin}, now)
	if err != nil {
		t.Fatal(err)
	}
	ctx := cc.Contexts["demo"]
	kp, err := pki.LoadKeyPair(ctx.Crt, ctx.Key)
	if err != nil {
		t.Fatalf("client certificate and key: %v", err)
	}
	cert := kp.Cert
	if !slices.Equal(cert.Subject.Organization, []string{role.Admin}) {
		t.Errorf("organization = %q, want [os:admin]", cert.Subject.Organization)
	}
	if cert.IsCA {
		t.Error("the client certificate is a CA")
	}
	if !slices.Contains(cert.ExtKeyUsage, x509.ExtKeyUsageClientAuth) {
		t.Errorf("ext key usages %v lack client auth", cert.ExtKeyUsage)
	}
	ca, err := pki.ParseCertPEM(ctx.CA)
	if err != nil {
		t.Fatal(err)
	}
	if err := pki.Verify(ca, cert, pki.UsageClient, now); err != nil {
		t.Errorf("the client certificate does not verify against the node API CA: %v", err)
	}
	days := cert.NotAfter.Sub(cert.NotBefore).Hours() / 24
	if days < 364 || days > 366 {
		t.Errorf("the client certificate is valid %.2f days, want about 365", days)
	}
}

func TestNewContext(t *testing.T) {
	b := bundle(t)
	now := time.Now()
	ctx, err := configgen.NewContext(b.CAs.OS, []string{"10.5.0.2"}, []string{role.Reader, role.EtcdBackup}, time.Hour, now)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := pki.ParseCertPEM(ctx.Crt)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(cert.Subject.Organization, []string{role.Reader, role.EtcdBackup}) {
		t.Errorf("organization = %q", cert.Subject.Organization)
	}
	if d := cert.NotAfter.Sub(now); d > time.Hour || d < 59*time.Minute {
		t.Errorf("validity from now = %s, want 1h", d)
	}

	for _, tc := range []struct {
		name      string
		ca        config.CertAndKey
		endpoints []string
		roles     []string
		wantErr   string
	}{
		{"unknown role", b.CAs.OS, []string{"10.5.0.2"}, []string{"os:root"}, `unknown role "os:root"`},
		{"one unknown role", b.CAs.OS, []string{"10.5.0.2"}, []string{role.Admin, "admin"}, `unknown role "admin"`},
		{"no roles", b.CAs.OS, []string{"10.5.0.2"}, nil, "no role"},
		{"empty endpoint", b.CAs.OS, []string{"10.5.0.2", " "}, []string{role.Admin}, "endpoint is empty"},
		{"CA without key", config.CertAndKey{Crt: b.CAs.OS.Crt}, []string{"10.5.0.2"}, []string{role.Admin}, "node API CA"},
		{"CA with wrong key", config.CertAndKey{Crt: b.CAs.OS.Crt, Key: b.CAs.Etcd.Key}, []string{"10.5.0.2"}, []string{role.Admin}, "node API CA"},
	} {
		if _, err := configgen.NewContext(tc.ca, tc.endpoints, tc.roles, time.Hour, now); err == nil {
			t.Errorf("%s: NewContext succeeded", tc.name)
		} else if !strings.Contains(err.Error(), tc.wantErr) {
			t.Errorf("%s: error %q does not contain %q", tc.name, err, tc.wantErr)
		}
	}
}

// TestNewContextLifetimeCapped: no client certificate outlives a year.
func TestNewContextLifetimeCapped(t *testing.T) {
	b := bundle(t)
	for _, d := range []time.Duration{0, -time.Hour, configgen.MaxClientCertValidity + time.Hour, 10 * 365 * 24 * time.Hour} {
		if _, err := configgen.NewContext(b.CAs.OS, []string{"10.5.0.2"}, []string{role.Reader}, d, time.Now()); err == nil || !strings.Contains(err.Error(), "at most") {
			t.Errorf("validity %s: %v", d, err)
		}
	}
	if _, err := configgen.NewContext(b.CAs.OS, []string{"10.5.0.2"}, []string{role.Reader}, configgen.MaxClientCertValidity, time.Now()); err != nil {
		t.Errorf("a year: %v", err)
	}
}

// TestNewContextRolesAreCertificateOrganizations checks that every Subject Organization
// of an issued certificate is a known role, whatever form the roles were given in.
func TestNewContextRolesAreCertificateOrganizations(t *testing.T) {
	b := bundle(t)
	for _, roles := range [][]string{
		{"os:admin,os:reader"},
		{"os:admin", ""},
		{" os:reader"},
	} {
		ctx, err := configgen.NewContext(b.CAs.OS, []string{"10.5.0.2"}, roles, time.Hour, time.Now())
		if err != nil {
			continue // refusing such input is correct too
		}
		cert, err := pki.ParseCertPEM(ctx.Crt)
		if err != nil {
			t.Fatal(err)
		}
		for _, o := range cert.Subject.Organization {
			if !slices.Contains(role.All, o) {
				t.Errorf("roles %q are accepted and give Subject Organization %q, where %q is not a role",
					roles, cert.Subject.Organization, o)
			}
		}
	}
}
