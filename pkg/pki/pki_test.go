package pki

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"net"
	"slices"
	"strings"
	"testing"
	"time"
)

const (
	day  = 24 * time.Hour
	year = 365 * day
)

func mustCA(t *testing.T, cn string) *KeyPair {
	t.Helper()
	ca, err := NewCA(CAOptions{CommonName: cn, Organization: []string{"plinth"}, Validity: 10 * year})
	if err != nil {
		t.Fatalf("NewCA(%q): %v", cn, err)
	}
	return ca
}

func mustIssue(t *testing.T, ca *KeyPair, opts CertOptions) *KeyPair {
	t.Helper()
	kp, err := Issue(ca, opts)
	if err != nil {
		t.Fatalf("Issue(%q): %v", opts.CommonName, err)
	}
	return kp
}

func wantErr(t *testing.T, err error, substr string) {
	t.Helper()
	if err == nil {
		t.Fatalf("got no error, want one containing %q", substr)
	}
	if !strings.Contains(err.Error(), substr) {
		t.Fatalf("got error %q, want it to contain %q", err, substr)
	}
}

func TestNewCA(t *testing.T) {
	now := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	ca, err := NewCA(CAOptions{CommonName: "kubernetes", Organization: []string{"plinth"}, Validity: 10 * year, Now: now})
	if err != nil {
		t.Fatal(err)
	}
	c := ca.Cert
	if !c.IsCA || !c.BasicConstraintsValid {
		t.Errorf("IsCA=%v BasicConstraintsValid=%v, want both true", c.IsCA, c.BasicConstraintsValid)
	}
	if want := x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature; c.KeyUsage != want {
		t.Errorf("KeyUsage = %v, want %v", c.KeyUsage, want)
	}
	if len(c.SubjectKeyId) == 0 {
		t.Error("SubjectKeyId is empty")
	}
	if c.SerialNumber.Sign() <= 0 || c.SerialNumber.BitLen() > 128 {
		t.Errorf("serial %v is not a positive 128-bit number", c.SerialNumber)
	}
	if !c.NotBefore.Equal(now.Add(-5 * time.Minute)) {
		t.Errorf("NotBefore = %v, want %v", c.NotBefore, now.Add(-5*time.Minute))
	}
	if !c.NotAfter.Equal(now.Add(10 * year)) {
		t.Errorf("NotAfter = %v, want %v", c.NotAfter, now.Add(10*year))
	}
	if c.Subject.CommonName != "kubernetes" || !slices.Equal(c.Subject.Organization, []string{"plinth"}) {
		t.Errorf("subject = %v", c.Subject)
	}
	if err := c.CheckSignatureFrom(c); err != nil {
		t.Errorf("CA is not self-signed: %v", err)
	}
	pub, ok := c.PublicKey.(*ecdsa.PublicKey)
	if !ok || pub.Curve != elliptic.P256() {
		t.Errorf("public key is %T, want ECDSA P-256", c.PublicKey)
	}
	if c.SignatureAlgorithm != x509.ECDSAWithSHA256 {
		t.Errorf("signature algorithm = %v, want ECDSA-SHA256", c.SignatureAlgorithm)
	}
	if err := KeyMatchesCert(c, ca.Key); err != nil {
		t.Error(err)
	}
	if !bytes.Equal(ca.CertPEM, EncodeCertPEM(c)) {
		t.Error("CertPEM does not encode Cert")
	}
	if key, err := ParseKeyPEM(ca.KeyPEM); err != nil || KeyMatchesCert(c, key) != nil {
		t.Errorf("KeyPEM does not hold the CA key: %v", err)
	}

	// Default Now is the current time.
	ca2 := mustCA(t, "etcd")
	if d := time.Until(ca2.Cert.NotAfter) - 10*year; d > time.Minute || d < -time.Minute {
		t.Errorf("default NotAfter %v is not about 10 years from now", ca2.Cert.NotAfter)
	}
	if ca2.Cert.SerialNumber.Cmp(ca.Cert.SerialNumber) == 0 {
		t.Error("two CAs have the same serial number")
	}
}

func TestNewCAInvalidOptions(t *testing.T) {
	tests := []struct {
		name string
		opts CAOptions
		want string
	}{
		{"empty common name", CAOptions{Validity: year}, "common name is empty"},
		{"zero validity", CAOptions{CommonName: "ca"}, "validity must be positive"},
		{"negative validity", CAOptions{CommonName: "ca", Validity: -time.Hour}, "validity must be positive"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := NewCA(tt.opts)
			wantErr(t, err, tt.want)
		})
	}
}

func TestLoadCA(t *testing.T) {
	ca := mustCA(t, "os")
	loaded, err := LoadCA(ca.CertPEM, ca.KeyPEM)
	if err != nil {
		t.Fatal(err)
	}
	if !loaded.Cert.Equal(ca.Cert) || !bytes.Equal(loaded.CertPEM, ca.CertPEM) || !bytes.Equal(loaded.KeyPEM, ca.KeyPEM) {
		t.Error("LoadCA did not round-trip the CA")
	}
	// The loaded CA can issue.
	leaf := mustIssue(t, loaded, CertOptions{CommonName: "n", Usage: UsageServer, Validity: day})
	if err := Verify(ca.Cert, leaf.Cert, UsageServer, time.Time{}); err != nil {
		t.Error(err)
	}

	other := mustCA(t, "other")
	sec1 := sec1PEM(t, ca.Key.(*ecdsa.PrivateKey))
	tests := []struct {
		name          string
		certPEM, key  []byte
		want          string
		wantSucceeded bool
	}{
		{"SEC1 key", ca.CertPEM, sec1, "", true},
		{"not a CA", leaf.CertPEM, leaf.KeyPEM, "is not a CA", false},
		{"mismatched key", ca.CertPEM, other.KeyPEM, "certificate does not match private key", false},
		{"missing key", ca.CertPEM, nil, "private key is missing", false},
		{"garbage cert", []byte("garbage"), ca.KeyPEM, "no PEM block found", false},
		{"garbage key", ca.CertPEM, []byte("garbage"), "no PEM block found", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := LoadCA(tt.certPEM, tt.key)
			if tt.wantSucceeded {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			wantErr(t, err, tt.want)
		})
	}
}

func TestIssue(t *testing.T) {
	ca := mustCA(t, "kubernetes")
	ips := []net.IP{net.ParseIP("127.0.0.1"), net.ParseIP("10.96.0.1"), net.ParseIP("fd00::1")}
	tests := []struct {
		name string
		opts CertOptions
		ekus []x509.ExtKeyUsage
	}{
		{
			name: "server",
			opts: CertOptions{CommonName: "kube-apiserver", DNSNames: []string{"localhost", "kubernetes.default.svc"}, IPAddresses: ips, Usage: UsageServer, Validity: year},
			ekus: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		},
		{
			name: "client",
			opts: CertOptions{CommonName: "admin", Organization: []string{"system:masters"}, Usage: UsageClient, Validity: year},
			ekus: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
		},
		{
			name: "server and client",
			opts: CertOptions{CommonName: "etcd-peer", Organization: []string{"os:admin", "plinth"}, DNSNames: []string{"node-1"}, IPAddresses: ips[:1], Usage: UsageServer | UsageClient, Validity: year},
			ekus: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			kp := mustIssue(t, ca, tt.opts)
			c := kp.Cert
			if c.IsCA {
				t.Error("leaf is a CA")
			}
			if want := x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment; c.KeyUsage != want {
				t.Errorf("KeyUsage = %v, want %v", c.KeyUsage, want)
			}
			if !slices.Equal(c.ExtKeyUsage, tt.ekus) {
				t.Errorf("ExtKeyUsage = %v, want %v", c.ExtKeyUsage, tt.ekus)
			}
			// Several organizations form one multi-valued RDN, whose DER
			// encoding sorts them, so compare without order.
			if c.Subject.CommonName != tt.opts.CommonName || !slices.Equal(sorted(c.Subject.Organization), sorted(tt.opts.Organization)) {
				t.Errorf("subject = %v", c.Subject)
			}
			if !slices.Equal(c.DNSNames, tt.opts.DNSNames) {
				t.Errorf("DNSNames = %v, want %v", c.DNSNames, tt.opts.DNSNames)
			}
			if !slices.EqualFunc(c.IPAddresses, tt.opts.IPAddresses, net.IP.Equal) {
				t.Errorf("IPAddresses = %v, want %v", c.IPAddresses, tt.opts.IPAddresses)
			}
			if !bytes.Equal(c.AuthorityKeyId, ca.Cert.SubjectKeyId) || len(c.SubjectKeyId) == 0 {
				t.Errorf("AuthorityKeyId = %x, SubjectKeyId = %x", c.AuthorityKeyId, c.SubjectKeyId)
			}
			if c.SerialNumber.Sign() <= 0 || c.SerialNumber.BitLen() > 128 {
				t.Errorf("serial %v is not a positive 128-bit number", c.SerialNumber)
			}
			if err := KeyMatchesCert(c, kp.Key); err != nil {
				t.Error(err)
			}
			if _, err := LoadKeyPair(kp.CertPEM, kp.KeyPEM); err != nil {
				t.Errorf("PEM does not round-trip: %v", err)
			}
			if err := Verify(ca.Cert, c, tt.opts.Usage, time.Time{}); err != nil {
				t.Errorf("Verify: %v", err)
			}
			// Go's own verification, with host names.
			roots := x509.NewCertPool()
			roots.AddCert(ca.Cert)
			_, err := c.Verify(x509.VerifyOptions{Roots: roots, DNSName: firstOr(tt.opts.DNSNames, ""), KeyUsages: tt.ekus})
			if err != nil {
				t.Errorf("x509 Verify: %v", err)
			}
			for _, ip := range tt.opts.IPAddresses {
				if err := c.VerifyHostname(ip.String()); err != nil {
					t.Error(err)
				}
			}
			// A usage the certificate lacks fails.
			if tt.opts.Usage != UsageServer|UsageClient {
				missing := (UsageServer | UsageClient) &^ tt.opts.Usage
				if err := Verify(ca.Cert, c, missing, time.Time{}); err == nil {
					t.Errorf("Verify for usage %d succeeded, want error", missing)
				}
				if err := Verify(ca.Cert, c, UsageServer|UsageClient, time.Time{}); err == nil {
					t.Error("Verify for both usages succeeded, want error")
				}
			}
		})
	}
}

func sorted(s []string) []string {
	return slices.Sorted(slices.Values(s))
}

func firstOr(s []string, def string) string {
	if len(s) > 0 {
		return s[0]
	}
	return def
}

func TestIssueInvalid(t *testing.T) {
	ca := mustCA(t, "ca")
	leaf := mustIssue(t, ca, CertOptions{CommonName: "leaf", Usage: UsageClient, Validity: day})
	ok := CertOptions{CommonName: "x", Usage: UsageServer, Validity: day}
	tests := []struct {
		name string
		ca   *KeyPair
		opts CertOptions
		want string
	}{
		{"empty common name", ca, CertOptions{Usage: UsageServer, Validity: day}, "common name is empty"},
		{"zero validity", ca, CertOptions{CommonName: "x", Usage: UsageServer}, "validity must be positive"},
		{"zero usage", ca, CertOptions{CommonName: "x", Validity: day}, "usage is not set"},
		{"unknown usage", ca, CertOptions{CommonName: "x", Usage: 8, Validity: day}, "unknown usage"},
		{"nil CA", nil, ok, "CA certificate is missing"},
		{"CA without key", &KeyPair{Cert: ca.Cert, CertPEM: ca.CertPEM}, ok, "has no private key"},
		{"issuer not a CA", leaf, ok, "is not a CA"},
		{"CA with wrong key", &KeyPair{Cert: ca.Cert, Key: leaf.Key}, ok, "certificate does not match private key"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Issue(tt.ca, tt.opts)
			wantErr(t, err, tt.want)
		})
	}
}

func TestIssueValidity(t *testing.T) {
	now := time.Now()
	ca, err := NewCA(CAOptions{CommonName: "short", Validity: year, Now: now})
	if err != nil {
		t.Fatal(err)
	}
	kp := mustIssue(t, ca, CertOptions{CommonName: "long", Usage: UsageServer, Validity: 5 * year})
	if !kp.Cert.NotAfter.Equal(ca.Cert.NotAfter) {
		t.Errorf("NotAfter = %v, want it capped at the CA's %v", kp.Cert.NotAfter, ca.Cert.NotAfter)
	}
	kp = mustIssue(t, ca, CertOptions{CommonName: "short", Usage: UsageServer, Validity: 30 * day, Now: now})
	if want := now.UTC().Truncate(time.Second); !kp.Cert.NotAfter.Equal(want.Add(30*day)) || !kp.Cert.NotBefore.Equal(want.Add(-5*time.Minute)) {
		t.Errorf("validity = %v..%v, want 30 days from %v minus 5 minutes", kp.Cert.NotBefore, kp.Cert.NotAfter, want)
	}

	expired, err := NewCA(CAOptions{CommonName: "expired", Validity: year, Now: now.Add(-2 * year)})
	if err != nil {
		t.Fatal(err)
	}
	_, err = Issue(expired, CertOptions{CommonName: "x", Usage: UsageServer, Validity: day})
	wantErr(t, err, `CA "expired" expired at`)
}

func TestVerify(t *testing.T) {
	now := time.Now()
	ca, err := NewCA(CAOptions{CommonName: "ca", Validity: 10 * year, Now: now.Add(-3 * year)})
	if err != nil {
		t.Fatal(err)
	}
	other := mustCA(t, "other")
	valid := mustIssue(t, ca, CertOptions{CommonName: "valid", Usage: UsageServer | UsageClient, Validity: year})
	expired := mustIssue(t, ca, CertOptions{CommonName: "expired", Usage: UsageServer, Validity: year, Now: now.Add(-2 * year)})
	fromOther := mustIssue(t, other, CertOptions{CommonName: "foreign", Usage: UsageServer, Validity: year})

	tests := []struct {
		name  string
		ca    *x509.Certificate
		cert  *x509.Certificate
		usage Usage
		now   time.Time
		want  string // empty: success
	}{
		{"valid", ca.Cert, valid.Cert, UsageServer | UsageClient, time.Time{}, ""},
		{"valid at explicit time", ca.Cert, valid.Cert, UsageClient, now.Add(day), ""},
		{"expired", ca.Cert, expired.Cert, UsageServer, time.Time{}, "expired"},
		{"expired cert valid in the past", ca.Cert, expired.Cert, UsageServer, now.Add(-year - day), ""},
		{"not yet valid", ca.Cert, valid.Cert, UsageServer, now.Add(-day), "not yet valid"},
		{"other CA", other.Cert, valid.Cert, UsageServer, time.Time{}, "unknown authority"},
		{"from other CA", ca.Cert, fromOther.Cert, UsageServer, time.Time{}, "unknown authority"},
		{"wrong usage", ca.Cert, expired.Cert, UsageClient, now.Add(-year - day), "incompatible key usage"},
		{"zero usage", ca.Cert, valid.Cert, 0, time.Time{}, "usage is not set"},
		{"nil cert", ca.Cert, nil, UsageServer, time.Time{}, "is nil"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := Verify(tt.ca, tt.cert, tt.usage, tt.now)
			if tt.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			wantErr(t, err, tt.want)
		})
	}
}

func TestKeyMatchesCert(t *testing.T) {
	ca := mustCA(t, "ca")
	other, _, err := NewKey()
	if err != nil {
		t.Fatal(err)
	}
	_, edKey, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	if err := KeyMatchesCert(ca.Cert, ca.Key); err != nil {
		t.Errorf("matching key: %v", err)
	}
	for name, key := range map[string]crypto.Signer{"other ECDSA": other, "ed25519": edKey, "nil": nil} {
		t.Run(name, func(t *testing.T) {
			wantErr(t, KeyMatchesCert(ca.Cert, key), "certificate does not match private key")
		})
	}
	wantErr(t, KeyMatchesCert(nil, ca.Key), "certificate does not match private key")
}

func sec1PEM(t *testing.T, key *ecdsa.PrivateKey) []byte {
	t.Helper()
	der, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: der})
}

func TestParseKeyPEM(t *testing.T) {
	ecKey, pkcs8, err := NewKey()
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(pkcs8, []byte("-----BEGIN PRIVATE KEY-----")) {
		t.Errorf("NewKey PEM is not PKCS#8:\n%s", pkcs8)
	}
	sec1 := sec1PEM(t, ecKey.(*ecdsa.PrivateKey))
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	pkcs1 := pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(rsaKey)})
	rsaPKCS8, err := EncodeKeyPEM(rsaKey)
	if err != nil {
		t.Fatal(err)
	}
	_, edKey, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	edPKCS8, err := EncodeKeyPEM(edKey)
	if err != nil {
		t.Fatal(err)
	}
	ecParams := append(pem.EncodeToMemory(&pem.Block{Type: "EC PARAMETERS", Bytes: []byte{6, 8, 42, 134, 72, 206, 61, 3, 1, 7}}), sec1...)
	cert := mustCA(t, "ca").CertPEM

	tests := []struct {
		name string
		data []byte
		want crypto.Signer // nil: error expected
		err  string
	}{
		{"PKCS#8 ECDSA", pkcs8, ecKey, ""},
		{"SEC1 ECDSA", sec1, ecKey, ""},
		{"SEC1 with EC PARAMETERS", ecParams, ecKey, ""},
		{"PKCS#1 RSA", pkcs1, rsaKey, ""},
		{"PKCS#8 RSA", rsaPKCS8, rsaKey, ""},
		{"PKCS#8 Ed25519", edPKCS8, edKey, ""},
		{"garbage", []byte("not a key"), nil, "no PEM block found"},
		{"empty", nil, nil, "no PEM block found"},
		{"certificate", cert, nil, `PEM block is "CERTIFICATE"`},
		{"corrupt PKCS#8", pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: []byte{1, 2, 3}}), nil, "parsing private key"},
		{"corrupt SEC1", pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: []byte{1, 2, 3}}), nil, "parsing private key"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseKeyPEM(tt.data)
			if tt.want == nil {
				wantErr(t, err, tt.err)
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !got.Public().(interface{ Equal(crypto.PublicKey) bool }).Equal(tt.want.Public()) {
				t.Error("parsed key differs from the original")
			}
		})
	}

	if _, err := EncodeKeyPEM(nil); err == nil {
		t.Error("EncodeKeyPEM(nil) succeeded")
	}
}

func TestParseCertPEM(t *testing.T) {
	a, b := mustCA(t, "a"), mustCA(t, "b")
	bundle := append(append([]byte{}, a.CertPEM...), b.CertPEM...)

	got, err := ParseCertPEM(bundle)
	if err != nil || !got.Equal(a.Cert) {
		t.Errorf("ParseCertPEM(bundle) = %v, %v; want the first certificate", got, err)
	}
	all, err := ParseCertsPEM(bundle)
	if err != nil || len(all) != 2 || !all[0].Equal(a.Cert) || !all[1].Equal(b.Cert) {
		t.Errorf("ParseCertsPEM(bundle) = %d certificates, %v; want both", len(all), err)
	}

	corrupt := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: []byte{1, 2, 3}})
	tests := []struct {
		name string
		data []byte
		want string
	}{
		{"empty", nil, "no PEM block found"},
		{"garbage", []byte("garbage"), "no PEM block found"},
		{"key", a.KeyPEM, `PEM block is "PRIVATE KEY", want CERTIFICATE`},
		{"corrupt", corrupt, "parsing certificate"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseCertPEM(tt.data)
			wantErr(t, err, tt.want)
			_, err = ParseCertsPEM(tt.data)
			wantErr(t, err, tt.want)
		})
	}
	_, err = ParseCertsPEM(append(append([]byte{}, a.CertPEM...), a.KeyPEM...))
	wantErr(t, err, `certificate 2: parsing certificate: PEM block is "PRIVATE KEY"`)
}

func TestLoadKeyPair(t *testing.T) {
	ca := mustCA(t, "ca")
	leaf := mustIssue(t, ca, CertOptions{CommonName: "leaf", Usage: UsageClient, Validity: day})

	kp, err := LoadKeyPair(leaf.CertPEM, nil)
	if err != nil {
		t.Fatal(err)
	}
	if kp.Key != nil || kp.KeyPEM != nil || !kp.Cert.Equal(leaf.Cert) {
		t.Errorf("certificate-only KeyPair = %+v", kp)
	}
	kp, err = LoadKeyPair(leaf.CertPEM, leaf.KeyPEM)
	if err != nil {
		t.Fatal(err)
	}
	if kp.Key == nil || !bytes.Equal(kp.KeyPEM, leaf.KeyPEM) {
		t.Error("key not loaded")
	}
	_, err = LoadKeyPair(leaf.CertPEM, ca.KeyPEM)
	wantErr(t, err, "certificate does not match private key")
}

func TestCSR(t *testing.T) {
	ca := mustCA(t, "kubernetes")
	key, _, err := NewKey()
	if err != nil {
		t.Fatal(err)
	}
	ips := []net.IP{net.ParseIP("192.0.2.10")}
	csrPEM, err := NewCSR(key, "system:node:node-1", []string{"system:nodes"}, []string{"node-1"}, ips)
	if err != nil {
		t.Fatal(err)
	}
	csr, err := ParseCSRPEM(csrPEM)
	if err != nil {
		t.Fatal(err)
	}
	if csr.Subject.CommonName != "system:node:node-1" || !slices.Equal(csr.DNSNames, []string{"node-1"}) {
		t.Errorf("CSR = %v %v", csr.Subject, csr.DNSNames)
	}

	t.Run("fields from CSR", func(t *testing.T) {
		certPEM, err := SignCSR(ca, csrPEM, CertOptions{Usage: UsageServer | UsageClient, Validity: year})
		if err != nil {
			t.Fatal(err)
		}
		kp, err := LoadKeyPair(certPEM, nil)
		if err != nil {
			t.Fatal(err)
		}
		c := kp.Cert
		if err := KeyMatchesCert(c, key); err != nil {
			t.Error(err)
		}
		if c.Subject.CommonName != "system:node:node-1" || !slices.Equal(c.Subject.Organization, []string{"system:nodes"}) {
			t.Errorf("subject = %v", c.Subject)
		}
		if !slices.Equal(c.DNSNames, []string{"node-1"}) || !slices.EqualFunc(c.IPAddresses, ips, net.IP.Equal) {
			t.Errorf("SANs = %v %v", c.DNSNames, c.IPAddresses)
		}
		if err := Verify(ca.Cert, c, UsageServer|UsageClient, time.Time{}); err != nil {
			t.Error(err)
		}
	})

	t.Run("fields from options", func(t *testing.T) {
		certPEM, err := SignCSR(ca, csrPEM, CertOptions{CommonName: "override", DNSNames: []string{"a.example"}, Usage: UsageClient, Validity: day})
		if err != nil {
			t.Fatal(err)
		}
		c, err := ParseCertPEM(certPEM)
		if err != nil {
			t.Fatal(err)
		}
		if c.Subject.CommonName != "override" || len(c.Subject.Organization) != 0 {
			t.Errorf("subject = %v, want CN=override without the CSR's organization", c.Subject)
		}
		if !slices.Equal(c.DNSNames, []string{"a.example"}) || len(c.IPAddresses) != 0 {
			t.Errorf("SANs = %v %v, want only a.example", c.DNSNames, c.IPAddresses)
		}
		if !slices.Equal(c.ExtKeyUsage, []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}) {
			t.Errorf("ExtKeyUsage = %v", c.ExtKeyUsage)
		}
		if err := Verify(ca.Cert, c, UsageClient, time.Time{}); err != nil {
			t.Error(err)
		}
	})

	// Corrupt the last byte of the signature.
	block, _ := pem.Decode(csrPEM)
	der := bytes.Clone(block.Bytes)
	der[len(der)-1] ^= 0xff
	badSig := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der})
	noCN, err := NewCSR(key, "", nil, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	opts := CertOptions{Usage: UsageClient, Validity: day}
	tests := []struct {
		name string
		csr  []byte
		opts CertOptions
		want string
	}{
		{"bad signature", badSig, opts, "checking certificate request signature"},
		{"garbage", []byte("garbage"), opts, "no PEM block found"},
		{"corrupt DER", pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: []byte{1, 2}}), opts, "parsing certificate request"},
		{"certificate instead of CSR", ca.CertPEM, opts, `PEM block is "CERTIFICATE", want CERTIFICATE REQUEST`},
		{"no common name", noCN, opts, "common name is empty"},
		{"zero usage", csrPEM, CertOptions{Validity: day}, "usage is not set"},
		{"zero validity", csrPEM, CertOptions{Usage: UsageClient}, "validity must be positive"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := SignCSR(ca, tt.csr, tt.opts)
			wantErr(t, err, tt.want)
		})
	}

	if _, err := NewCSR(nil, "x", nil, nil, nil); err == nil {
		t.Error("NewCSR(nil key) succeeded")
	}
}
