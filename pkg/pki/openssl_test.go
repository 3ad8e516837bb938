package pki

import (
	"context"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// openssl runs the openssl command in dir and returns its combined output.
func openssl(t *testing.T, dir string, args ...string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "openssl", args...)
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	return string(out), err
}

func mustOpenSSL(t *testing.T, dir string, args ...string) string {
	t.Helper()
	out, err := openssl(t, dir, args...)
	if err != nil {
		t.Fatalf("openssl %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return out
}

func writeFiles(t *testing.T, dir string, files map[string][]byte) {
	t.Helper()
	for name, data := range files {
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
}

func TestOpenSSLInterop(t *testing.T) {
	if _, err := exec.LookPath("openssl"); err != nil {
		t.Skip("openssl not in PATH")
	}
	dir := t.TempDir()
	ca := mustCA(t, "plinth-ca")
	other := mustCA(t, "other-ca")
	server := mustIssue(t, ca, CertOptions{
		CommonName:  "kube-apiserver",
		DNSNames:    []string{"localhost", "kubernetes.default.svc"},
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1"), net.ParseIP("::1")},
		Usage:       UsageServer,
		Validity:    year,
	})
	client := mustIssue(t, ca, CertOptions{CommonName: "admin", Organization: []string{"system:masters"}, Usage: UsageClient, Validity: year})
	foreign := mustIssue(t, other, CertOptions{CommonName: "foreign", Usage: UsageServer, Validity: year})
	writeFiles(t, dir, map[string][]byte{
		"ca.pem":          ca.CertPEM,
		"ca-key.pem":      ca.KeyPEM,
		"server.pem":      server.CertPEM,
		"server-key.pem":  server.KeyPEM,
		"client.pem":      client.CertPEM,
		"client-key.pem":  client.KeyPEM,
		"foreign.pem":     foreign.CertPEM,
		"other-ca.pem":    other.CertPEM,
		"client-both.pem": append(append([]byte{}, client.CertPEM...), client.KeyPEM...),
	})

	t.Run("verify", func(t *testing.T) {
		for _, args := range [][]string{
			{"verify", "-CAfile", "ca.pem", "server.pem"},
			{"verify", "-CAfile", "ca.pem", "client.pem"},
			{"verify", "-x509_strict", "-purpose", "sslserver", "-CAfile", "ca.pem", "server.pem"},
			{"verify", "-x509_strict", "-purpose", "sslclient", "-CAfile", "ca.pem", "client.pem"},
		} {
			if out := mustOpenSSL(t, dir, args...); !strings.Contains(out, ": OK") {
				t.Errorf("openssl %s: %s", strings.Join(args, " "), out)
			}
		}
		for _, args := range [][]string{
			{"verify", "-CAfile", "ca.pem", "foreign.pem"},
			{"verify", "-CAfile", "other-ca.pem", "server.pem"},
			{"verify", "-purpose", "sslclient", "-CAfile", "ca.pem", "server.pem"},
		} {
			if out, err := openssl(t, dir, args...); err == nil {
				t.Errorf("openssl %s succeeded, want failure:\n%s", strings.Join(args, " "), out)
			}
		}
	})

	t.Run("x509 text", func(t *testing.T) {
		caText := mustOpenSSL(t, dir, "x509", "-noout", "-text", "-in", "ca.pem")
		for _, want := range []string{"CA:TRUE", "Certificate Sign, CRL Sign", "Subject Key Identifier", "prime256v1", "ecdsa-with-SHA256"} {
			if !strings.Contains(caText, want) {
				t.Errorf("CA text lacks %q:\n%s", want, caText)
			}
		}
		serverText := mustOpenSSL(t, dir, "x509", "-noout", "-text", "-in", "server.pem")
		for _, want := range []string{"CA:FALSE", "TLS Web Server Authentication", "DNS:localhost", "DNS:kubernetes.default.svc", "IP Address:127.0.0.1", "IP Address:0:0:0:0:0:0:0:1", "Authority Key Identifier", "CN = plinth-ca"} {
			if !strings.Contains(serverText, want) {
				t.Errorf("server certificate text lacks %q:\n%s", want, serverText)
			}
		}
		clientText := mustOpenSSL(t, dir, "x509", "-noout", "-text", "-in", "client.pem")
		for _, want := range []string{"TLS Web Client Authentication", "O = system:masters, CN = admin"} {
			if !strings.Contains(clientText, want) {
				t.Errorf("client certificate text lacks %q:\n%s", want, clientText)
			}
		}
	})

	t.Run("keys", func(t *testing.T) {
		for _, name := range []string{"ca-key.pem", "server-key.pem", "client-key.pem", "client-both.pem"} {
			mustOpenSSL(t, dir, "pkey", "-in", name, "-noout")
		}
		// The key belongs to the certificate: both public keys are equal.
		fromKey := mustOpenSSL(t, dir, "pkey", "-in", "server-key.pem", "-pubout")
		fromCert := mustOpenSSL(t, dir, "x509", "-in", "server.pem", "-noout", "-pubkey")
		if fromKey != fromCert {
			t.Errorf("public key of server-key.pem:\n%s\ndiffers from server.pem's:\n%s", fromKey, fromCert)
		}
	})

	t.Run("OpenSSL key and CSR", func(t *testing.T) {
		// "openssl ecparam -genkey" writes EC PARAMETERS then a SEC1 key.
		mustOpenSSL(t, dir, "ecparam", "-name", "prime256v1", "-genkey", "-out", "ext-key.pem")
		mustOpenSSL(t, dir, "req", "-new", "-key", "ext-key.pem", "-subj", "/O=system:nodes/CN=system:node:ext",
			"-addext", "subjectAltName=DNS:ext.local,IP:192.0.2.1", "-out", "ext.csr")
		keyPEM, err := os.ReadFile(filepath.Join(dir, "ext-key.pem"))
		if err != nil {
			t.Fatal(err)
		}
		csrPEM, err := os.ReadFile(filepath.Join(dir, "ext.csr"))
		if err != nil {
			t.Fatal(err)
		}
		certPEM, err := SignCSR(ca, csrPEM, CertOptions{Usage: UsageServer | UsageClient, Validity: year})
		if err != nil {
			t.Fatal(err)
		}
		kp, err := LoadKeyPair(certPEM, keyPEM)
		if err != nil {
			t.Fatal(err)
		}
		if kp.Cert.Subject.CommonName != "system:node:ext" || len(kp.Cert.DNSNames) != 1 || len(kp.Cert.IPAddresses) != 1 {
			t.Errorf("certificate = %v %v %v", kp.Cert.Subject, kp.Cert.DNSNames, kp.Cert.IPAddresses)
		}
		if err := Verify(ca.Cert, kp.Cert, UsageServer|UsageClient, time.Time{}); err != nil {
			t.Error(err)
		}
		writeFiles(t, dir, map[string][]byte{"ext.pem": certPEM})
		mustOpenSSL(t, dir, "verify", "-x509_strict", "-purpose", "sslserver", "-CAfile", "ca.pem", "ext.pem")

		// And a CSR from this package is accepted by "openssl req -verify".
		ourCSR, err := NewCSR(client.Key, "admin", []string{"system:masters"}, []string{"admin.local"}, nil)
		if err != nil {
			t.Fatal(err)
		}
		writeFiles(t, dir, map[string][]byte{"our.csr": ourCSR})
		if out := mustOpenSSL(t, dir, "req", "-in", "our.csr", "-noout", "-verify"); !strings.Contains(out, "verify OK") {
			t.Errorf("openssl req -verify: %s", out)
		}
	})
}
