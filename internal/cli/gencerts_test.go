package cli_test

import (
	"bytes"
	"crypto/x509"
	"net"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/plinthos/plinth/pkg/pki"
	"github.com/plinthos/plinth/pkg/role"
)

func parseCertFile(t *testing.T, path string) *x509.Certificate {
	t.Helper()
	cert, err := pki.ParseCertPEM(readFile(t, path))
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return cert
}

func TestGenCertificates(t *testing.T) {
	isolate(t)
	dir := t.TempDir()
	x, k := filepath.Join(dir, "X"), filepath.Join(dir, "K")

	out := mustRun(t, "gen", "ca", "--name", x)
	for _, f := range []string{x + ".crt", x + ".key"} {
		if !strings.Contains(out, "created "+f) {
			t.Errorf("gen ca output %q does not report %s", out, f)
		}
	}
	checkMode(t, x+".crt", 0o644)
	checkMode(t, x+".key", 0o600)
	ca, err := pki.LoadCA(readFile(t, x+".crt"), readFile(t, x+".key"))
	if err != nil {
		t.Fatalf("gen ca made no usable CA: %v", err)
	}
	if ca.Cert.Subject.CommonName != x {
		t.Errorf("CA common name %q, want the name %q", ca.Cert.Subject.CommonName, x)
	}
	if years := time.Until(ca.Cert.NotAfter).Hours() / 24 / 365; years < 9.9 || years > 10.1 {
		t.Errorf("CA valid %.2f years, want 10 by default", years)
	}

	mustRun(t, "gen", "key", "--name", k)
	checkMode(t, k+".key", 0o600)
	if _, err := pki.ParseKeyPEM(readFile(t, k+".key")); err != nil {
		t.Fatalf("gen key: %v", err)
	}

	mustRun(t, "gen", "csr", "--key", k+".key", "--roles", "os:reader", "--ip", "10.0.0.1")
	csr, err := pki.ParseCSRPEM(readFile(t, k+".csr"))
	if err != nil {
		t.Fatalf("gen csr: %v", err)
	}
	if !slices.Equal(csr.Subject.Organization, []string{role.Reader}) || csr.Subject.CommonName != "K" {
		t.Errorf("CSR subject %v", csr.Subject)
	}

	mustRun(t, "gen", "crt", "--ca", x, "--csr", k+".csr", "--name", k, "--usage", "client")
	checkMode(t, k+".crt", 0o644)
	cert := parseCertFile(t, k+".crt")
	if !slices.Equal(cert.Subject.Organization, []string{role.Reader}) {
		t.Errorf("certificate O = %q, want [os:reader]", cert.Subject.Organization)
	}
	if len(cert.IPAddresses) != 1 || !cert.IPAddresses[0].Equal(net.ParseIP("10.0.0.1")) {
		t.Errorf("certificate IP SANs = %v, want [10.0.0.1]", cert.IPAddresses)
	}
	if !slices.Equal(cert.ExtKeyUsage, []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}) {
		t.Errorf("ext key usage %v, want client auth only", cert.ExtKeyUsage)
	}
	if d := cert.NotAfter.Sub(cert.NotBefore).Hours() / 24; d < 364 || d > 366 {
		t.Errorf("certificate valid %.2f days, want a year by default", d)
	}
	// The certificate is for the key of K.key.
	if _, err := pki.LoadKeyPair(readFile(t, k+".crt"), readFile(t, k+".key")); err != nil {
		t.Errorf("K.crt does not match K.key: %v", err)
	}
	if err := pki.Verify(ca.Cert, cert, pki.UsageClient, time.Now()); err != nil {
		t.Errorf("K.crt does not verify against X.crt: %v", err)
	}

	t.Run("openssl", func(t *testing.T) {
		requireOpenSSL(t)
		out, err := openssl(t, dir, "verify", "-CAfile", "X.crt", "K.crt")
		if err != nil || !strings.Contains(out, "K.crt: OK") {
			t.Errorf("openssl verify: %v\n%s", err, out)
		}
		out, err = openssl(t, dir, "x509", "-in", "K.crt", "-noout", "-subject", "-ext", "subjectAltName")
		if err != nil {
			t.Fatalf("openssl x509: %v\n%s", err, out)
		}
		if !strings.Contains(out, "O = os:reader") || !strings.Contains(out, "IP Address:10.0.0.1") {
			t.Errorf("openssl x509 shows:\n%s", out)
		}
		out, err = openssl(t, dir, "req", "-in", "K.csr", "-noout", "-verify")
		if err != nil || !strings.Contains(strings.ToLower(out), "verify ok") {
			t.Errorf("openssl req -verify: %v\n%s", err, out)
		}
	})

	t.Run("refusing to overwrite", func(t *testing.T) {
		before := map[string][]byte{}
		for _, f := range []string{x + ".crt", x + ".key", k + ".key", k + ".csr", k + ".crt"} {
			before[f] = readFile(t, f)
		}
		mustFail(t, []string{"refusing to overwrite", x + ".crt", x + ".key"}, "gen", "ca", "--name", x)
		mustFail(t, []string{"refusing to overwrite", k + ".key"}, "gen", "key", "--name", k)
		mustFail(t, []string{"refusing to overwrite", k + ".csr"}, "gen", "csr", "--key", k+".key", "--roles", "os:admin")
		mustFail(t, []string{"refusing to overwrite", k + ".crt"}, "gen", "crt", "--ca", x, "--csr", k+".csr", "--name", k)
		for f, data := range before {
			if !bytes.Equal(readFile(t, f), data) {
				t.Errorf("%s changed although the command refused", f)
			}
		}
		// --force replaces.
		mustRun(t, "gen", "crt", "--ca", x, "--csr", k+".csr", "--name", k, "--usage", "both", "--hours", "24", "--force")
		c := parseCertFile(t, k+".crt")
		if len(c.ExtKeyUsage) != 2 {
			t.Errorf("--usage both: ext key usage %v", c.ExtKeyUsage)
		}
		if d := c.NotAfter.Sub(c.NotBefore); d > 25*time.Hour || d < 23*time.Hour {
			t.Errorf("--hours 24 gave a validity of %s", d)
		}
		mustRun(t, "gen", "ca", "--name", x, "--force")
		if bytes.Equal(readFile(t, x+".key"), before[x+".key"]) {
			t.Error("gen ca --force did not replace the key")
		}
	})

	t.Run("errors", func(t *testing.T) {
		k2 := filepath.Join(dir, "K2")
		mustRun(t, "gen", "key", "--name", k2)
		mustFail(t, []string{`unknown role "os:root"`}, "gen", "csr", "--key", k2+".key", "--roles", "os:reader,os:root")
		checkMissing(t, k2+".csr")
		mustFail(t, []string{`"10.0.0.300"`}, "gen", "csr", "--key", k2+".key", "--ip", "10.0.0.300")
		checkMissing(t, k2+".csr")
		mustFail(t, []string{"key"}, "gen", "csr", "--key", filepath.Join(dir, "missing.key"))
		mustFail(t, []string{x + ".crt"}, "gen", "csr", "--key", x+".crt")
		mustFail(t, []string{"name"}, "gen", "key")

		mustRun(t, "gen", "csr", "--key", k2+".key", "--roles", "os:admin", "--dns", "node-1.example.com")
		mustFail(t, []string{"--usage", "client, server or both"}, "gen", "crt", "--ca", x, "--csr", k2+".csr", "--name", k2, "--usage", "peer")
		mustFail(t, []string{"--hours"}, "gen", "crt", "--ca", x, "--csr", k2+".csr", "--name", k2, "--hours", "0")
		mustFail(t, []string{"nope.crt"}, "gen", "crt", "--ca", filepath.Join(dir, "nope"), "--csr", k2+".csr", "--name", k2)
		// K.crt is a leaf certificate, not a CA.
		mustFail(t, []string{"not a CA"}, "gen", "crt", "--ca", k, "--csr", k2+".csr", "--name", k2+"-x")
		mustFail(t, []string{"--hours"}, "gen", "ca", "--name", filepath.Join(dir, "Y"), "--hours", "-1")
		checkMissing(t, k2+".crt")
		checkMissing(t, k2+"-x.crt")
		checkMissing(t, filepath.Join(dir, "Y.crt"))
		// A server certificate from a CSR with a DNS name.
		mustRun(t, "gen", "crt", "--ca", x, "--csr", k2+".csr", "--name", k2, "--usage", "server")
		c := parseCertFile(t, k2+".crt")
		if !slices.Equal(c.DNSNames, []string{"node-1.example.com"}) || !slices.Equal(c.ExtKeyUsage, []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}) {
			t.Errorf("server certificate: DNS %q, usage %v", c.DNSNames, c.ExtKeyUsage)
		}
	})

	t.Run("ca options", func(t *testing.T) {
		z := filepath.Join(dir, "Z")
		mustRun(t, "gen", "ca", "--name", z, "--common-name", "My CA", "--organization", "acme,plinth", "--hours", "48")
		c := parseCertFile(t, z+".crt")
		if c.Subject.CommonName != "My CA" || !slices.Equal(c.Subject.Organization, []string{"acme", "plinth"}) {
			t.Errorf("CA subject %v", c.Subject)
		}
		if !c.IsCA {
			t.Error("not a CA")
		}
		if d := time.Until(c.NotAfter); d > 48*time.Hour || d < 47*time.Hour {
			t.Errorf("CA expires in %s, want 48h", d)
		}
	})
}
