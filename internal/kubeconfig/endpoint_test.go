package kubeconfig

import (
	"crypto/x509"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/plinthos/plinth/pkg/pki"
)

func testPKI(t *testing.T) (ca, client *pki.KeyPair) {
	t.Helper()
	ca, err := pki.NewCA(pki.CAOptions{CommonName: "kubernetes", Validity: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	client, err = pki.Issue(ca, pki.CertOptions{CommonName: "admin", Usage: pki.UsageClient, Validity: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	return ca, client
}

func TestEndpointFromData(t *testing.T) {
	ca, client := testPKI(t)
	c := New("demo", Cluster{Server: "https://10.5.0.2:6443/", CertificateAuthorityData: ca.CertPEM, TLSServerName: "api"},
		"admin", User{ClientCertificateData: client.CertPEM, ClientKeyData: client.KeyPEM})
	e, err := c.Endpoint()
	if err != nil {
		t.Fatal(err)
	}
	if e.Server != "https://10.5.0.2:6443" || e.Token != "" || e.TLS.ServerName != "api" {
		t.Errorf("endpoint %+v", e)
	}
	if len(e.TLS.Certificates) != 1 || !e.TLS.Certificates[0].Leaf.Equal(client.Cert) {
		t.Errorf("client certificate not the user's")
	}
	if _, err := client.Cert.Verify(x509.VerifyOptions{Roots: e.TLS.RootCAs, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err != nil {
		t.Errorf("the roots do not hold the cluster's CA: %v", err)
	}
}

// kubelet's kubeconfig after its TLS bootstrap names files, relative ones relative to it.
func TestEndpointFromFiles(t *testing.T) {
	ca, client := testPKI(t)
	dir := t.TempDir()
	for name, data := range map[string][]byte{"ca.crt": ca.CertPEM, "pki/client.pem": append(append([]byte{}, client.CertPEM...), client.KeyPEM...)} {
		if err := os.MkdirAll(filepath.Join(dir, filepath.Dir(name)), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	kc := `apiVersion: v1
kind: Config
clusters:
- name: default-cluster
  cluster: {server: "https://10.5.0.2:6443", certificate-authority: ` + filepath.Join(dir, "ca.crt") + `}
users:
- name: default-auth
  user: {client-certificate: pki/client.pem, client-key: pki/client.pem}
contexts:
- name: default-context
  context: {cluster: default-cluster, user: default-auth, namespace: default}
current-context: default-context
`
	path := filepath.Join(dir, "kubeconfig")
	if err := os.WriteFile(path, []byte(kc), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	e, err := c.Endpoint()
	if err != nil {
		t.Fatal(err)
	}
	if len(e.TLS.Certificates) != 1 || !e.TLS.Certificates[0].Leaf.Equal(client.Cert) || e.TLS.RootCAs == nil {
		t.Errorf("endpoint %+v", e)
	}
	// Parsed from bytes elsewhere, the relative names do not resolve.
	c, err = Parse([]byte(kc))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Endpoint(); err == nil || !strings.Contains(err.Error(), "client certificate") {
		t.Errorf("relative files from elsewhere: %v", err)
	}
	if _, err := Load(filepath.Join(dir, "missing")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("missing file: %v", err)
	}
}

func TestEndpointErrors(t *testing.T) {
	ca, client := testPKI(t)
	for _, tc := range []struct {
		name    string
		cluster Cluster
		user    User
		err     string
	}{
		{"no server", Cluster{CertificateAuthorityData: ca.CertPEM}, User{Token: "t"}, "no server"},
		{"a CA that is not PEM", Cluster{Server: "https://x", CertificateAuthorityData: []byte("junk")}, User{Token: "t"}, "no PEM certificate"},
		{"a certificate without key", Cluster{Server: "https://x"}, User{ClientCertificateData: client.CertPEM}, "without a key"},
		{"a key of another certificate", Cluster{Server: "https://x"}, User{ClientCertificateData: client.CertPEM, ClientKeyData: ca.KeyPEM}, "client certificate"},
	} {
		_, err := New("c", tc.cluster, "u", tc.user).Endpoint()
		if err == nil || !strings.Contains(err.Error(), tc.err) {
			t.Errorf("%s: err = %v, want %q", tc.name, err, tc.err)
		}
	}
	// A token user against the system's roots.
	e, err := New("c", Cluster{Server: "https://x"}, "u", User{Token: "t"}).Endpoint()
	if err != nil || e.Token != "t" || e.TLS.RootCAs != nil || len(e.TLS.Certificates) != 0 {
		t.Errorf("token user: %+v, %v", e, err)
	}
}
