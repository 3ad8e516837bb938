package secrets_test

import (
	"bytes"
	"encoding/base64"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/plinthos/plinth/pkg/config"
	"github.com/plinthos/plinth/pkg/pki"
	"github.com/plinthos/plinth/pkg/secrets"
)

func generate(t *testing.T) *secrets.Bundle {
	t.Helper()
	b, err := secrets.Generate(time.Now())
	if err != nil {
		t.Fatalf("Generate: %v", err)
	}
	return b
}

func TestGenerateIsValid(t *testing.T) {
	b := generate(t)
	if err := b.Validate(); err != nil {
		t.Fatalf("a generated bundle does not validate: %v", err)
	}
	if b.APIVersion != config.APIVersion || b.Kind != secrets.Kind {
		t.Errorf("apiVersion/kind = %q/%q", b.APIVersion, b.Kind)
	}
	for name, v := range map[string]string{"cluster.id": b.Cluster.ID, "cluster.secret": b.Cluster.Secret, "secretbox": b.Tokens.SecretboxEncryptionSecret} {
		raw, err := base64.StdEncoding.DecodeString(v)
		if err != nil || len(raw) != 32 {
			t.Errorf("%s = %q: want 32 bytes in base64 (err %v, %d bytes)", name, v, err, len(raw))
		}
	}
	if b.Cluster.ID == b.Cluster.Secret {
		t.Error("cluster id and secret are equal")
	}
	if b.Tokens.Join == b.Tokens.Bootstrap {
		t.Error("join and bootstrap tokens are equal")
	}
	// Every CA is distinct.
	seen := map[string]string{}
	for name, ca := range cas(b) {
		if prev, ok := seen[string(ca.Crt)]; ok {
			t.Errorf("CAs %s and %s are the same certificate", prev, name)
		}
		seen[string(ca.Crt)] = name
	}
}

func cas(b *secrets.Bundle) map[string]config.CertAndKey {
	return map[string]config.CertAndKey{"os": b.CAs.OS, "kubernetes": b.CAs.Kubernetes, "etcd": b.CAs.Etcd, "aggregator": b.CAs.Aggregator}
}

func TestGenerateTwiceDiffers(t *testing.T) {
	a, b := generate(t), generate(t)
	if a.Cluster.ID == b.Cluster.ID || a.Cluster.Secret == b.Cluster.Secret || a.Tokens.Join == b.Tokens.Join ||
		a.Tokens.SecretboxEncryptionSecret == b.Tokens.SecretboxEncryptionSecret ||
		bytes.Equal(a.CAs.OS.Crt, b.CAs.OS.Crt) || bytes.Equal(a.ServiceAccountKey, b.ServiceAccountKey) {
		t.Error("two generated bundles share secrets")
	}
}

func TestCAValidity(t *testing.T) {
	now := time.Date(2030, 3, 4, 5, 6, 7, 0, time.UTC)
	b, err := secrets.Generate(now)
	if err != nil {
		t.Fatal(err)
	}
	for name, ca := range cas(b) {
		kp, err := pki.LoadCA(ca.Crt, ca.Key)
		if err != nil {
			t.Errorf("cas.%s: %v", name, err)
			continue
		}
		c := kp.Cert
		if !c.IsCA {
			t.Errorf("cas.%s is not a CA", name)
		}
		if c.NotBefore.After(now) || now.Sub(c.NotBefore) > time.Hour {
			t.Errorf("cas.%s NotBefore = %s, want just before %s", name, c.NotBefore, now)
		}
		years := c.NotAfter.Sub(now).Hours() / 24 / 365
		if years < 9.99 || years > 10.01 {
			t.Errorf("cas.%s is valid %.2f years from now, want about 10 (NotAfter %s)", name, years, c.NotAfter)
		}
	}
	// A zero time means now.
	b, err = secrets.Generate(time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	cert, err := pki.ParseCertPEM(b.CAs.Kubernetes.Crt)
	if err != nil {
		t.Fatal(err)
	}
	if d := time.Until(cert.NotAfter) - secrets.CAValidity; d > time.Minute || d < -time.Minute {
		t.Errorf("with a zero time the CA expires %s from now, want %s", time.Until(cert.NotAfter), secrets.CAValidity)
	}
	if _, err := pki.ParseKeyPEM(b.ServiceAccountKey); err != nil {
		t.Errorf("serviceAccountKey: %v", err)
	}
}

func TestMarshalLoadRoundTrip(t *testing.T) {
	b := generate(t)
	data, err := b.Marshal()
	if err != nil {
		t.Fatalf("Marshal: %v", err)
	}
	got, err := secrets.Load(data)
	if err != nil {
		t.Fatalf("Load: %v\n%s", err, data)
	}
	if !reflect.DeepEqual(got, b) {
		t.Errorf("round trip differs:\n got %+v\nwant %+v", got, b)
	}
	again, err := got.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(again, data) {
		t.Errorf("re-marshalling changed the bundle:\n%s\n---\n%s", data, again)
	}

	// LoadFile reads the same thing.
	path := filepath.Join(t.TempDir(), "secrets.yaml")
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	fromFile, err := secrets.LoadFile(path)
	if err != nil {
		t.Fatalf("LoadFile: %v", err)
	}
	if !reflect.DeepEqual(fromFile, b) {
		t.Error("LoadFile differs from the generated bundle")
	}
}

func TestLoadFileErrorsNameTheFile(t *testing.T) {
	dir := t.TempDir()
	if _, err := secrets.LoadFile(filepath.Join(dir, "missing.yaml")); err == nil {
		t.Error("LoadFile of a missing file succeeded")
	}
	path := filepath.Join(dir, "bad.yaml")
	if err := os.WriteFile(path, []byte("apiVersion: plinth.dev/v1alpha1\nkind: MachineConfig\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := secrets.LoadFile(path)
	if err == nil || !strings.Contains(err.Error(), path) {
		t.Errorf("LoadFile of a machine config: error %v, want one naming %s", err, path)
	}
}

func TestLoadRejectsUnknownField(t *testing.T) {
	data, err := generate(t).Marshal()
	if err != nil {
		t.Fatal(err)
	}
	for field, bad := range map[string][]byte{
		"extra": append(bytes.Clone(data), []byte("extra: 1\n")...),
		"joinn": bytes.Replace(data, []byte("tokens:\n"), []byte("tokens:\n  joinn: abcdef.0123456789abcdef\n"), 1),
	} {
		if bytes.Equal(bad, data) {
			t.Fatalf("%s: the test did not change the bundle", field)
		}
		if _, err := secrets.Load(bad); err == nil {
			t.Errorf("Load accepted the unknown field %q", field)
		} else if !strings.Contains(err.Error(), field) {
			t.Errorf("error %q does not name the unknown field %q", err, field)
		}
	}
}

func TestValidateCatches(t *testing.T) {
	other := generate(t)
	for _, tc := range []struct {
		name    string
		mutate  func(b *secrets.Bundle)
		wantErr string
	}{
		{"wrong kind", func(b *secrets.Bundle) { b.Kind = "MachineConfig" }, "not a secrets bundle"},
		{"wrong apiVersion", func(b *secrets.Bundle) { b.APIVersion = "v1" }, "not a secrets bundle"},
		{"no cluster id", func(b *secrets.Bundle) { b.Cluster.ID = "" }, "cluster id"},
		{"no cluster secret", func(b *secrets.Bundle) { b.Cluster.Secret = "" }, "cluster id and secret"},
		{"broken join token", func(b *secrets.Bundle) { b.Tokens.Join = "ABCDEF.0123456789abcdef" }, "tokens.join"},
		{"short bootstrap token", func(b *secrets.Bundle) { b.Tokens.Bootstrap = "abcdef.0123" }, "tokens.bootstrap"},
		{"empty join token", func(b *secrets.Bundle) { b.Tokens.Join = "" }, "tokens.join"},
		{"secretbox of 16 bytes", func(b *secrets.Bundle) {
			b.Tokens.SecretboxEncryptionSecret = base64.StdEncoding.EncodeToString(make([]byte, 16))
		}, "secretboxEncryptionSecret"},
		{"secretbox not base64", func(b *secrets.Bundle) { b.Tokens.SecretboxEncryptionSecret = "!!!" }, "secretboxEncryptionSecret"},
		{"mismatched os CA key", func(b *secrets.Bundle) { b.CAs.OS.Key = other.CAs.OS.Key }, "cas.os"},
		{"mismatched etcd CA key", func(b *secrets.Bundle) { b.CAs.Etcd.Key = b.CAs.Kubernetes.Key }, "cas.etcd"},
		{"missing aggregator key", func(b *secrets.Bundle) { b.CAs.Aggregator.Key = nil }, "cas.aggregator"},
		{"garbage kubernetes cert", func(b *secrets.Bundle) { b.CAs.Kubernetes.Crt = []byte("not pem") }, "cas.kubernetes"},
		{"service account key missing", func(b *secrets.Bundle) { b.ServiceAccountKey = nil }, "serviceAccountKey"},
		{"service account key is a cert", func(b *secrets.Bundle) { b.ServiceAccountKey = b.CAs.OS.Crt }, "serviceAccountKey"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := generate(t)
			tc.mutate(b)
			err := b.Validate()
			if err == nil {
				t.Fatal("Validate accepted the bundle")
			}
			if !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("error %q does not contain %q", err, tc.wantErr)
			}
			// Load must refuse it too.
			data, merr := b.Marshal()
			if merr != nil {
				t.Fatal(merr)
			}
			if _, lerr := secrets.Load(data); lerr == nil {
				t.Error("Load accepted the bundle")
			}
		})
	}
}

func TestValidateRejectsALeafAsCA(t *testing.T) {
	b := generate(t)
	ca, err := pki.LoadCA(b.CAs.OS.Crt, b.CAs.OS.Key)
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := pki.Issue(ca, pki.CertOptions{CommonName: "leaf", Usage: pki.UsageClient, Validity: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	b.CAs.Kubernetes = config.CertAndKey{Crt: leaf.CertPEM, Key: leaf.KeyPEM}
	if err := b.Validate(); err == nil || !strings.Contains(err.Error(), "cas.kubernetes") {
		t.Errorf("Validate with a leaf certificate as CA: %v, want an error about cas.kubernetes", err)
	}
}

var tokenRE = regexp.MustCompile(`^[a-z0-9]{6}\.[a-z0-9]{16}$`)

func TestNewToken(t *testing.T) {
	const n = 1000
	seen := make(map[string]bool, n)
	counts := map[rune]int{}
	for range n {
		tok, err := secrets.NewToken()
		if err != nil {
			t.Fatal(err)
		}
		if !tokenRE.MatchString(tok) {
			t.Fatalf("token %q does not match %s", tok, tokenRE)
		}
		if !config.TokenPattern.MatchString(tok) {
			t.Fatalf("token %q does not match config.TokenPattern", tok)
		}
		if seen[tok] {
			t.Fatalf("token %q drawn twice", tok)
		}
		seen[tok] = true
		for _, r := range strings.ReplaceAll(tok, ".", "") {
			counts[r]++
		}
	}
	// 22000 characters over 36 symbols: about 611 each. Every symbol must show up, and
	// none may be wildly over- or under-represented (a loose bound that random draws
	// essentially never break).
	const alphabet = "abcdefghijklmnopqrstuvwxyz0123456789"
	for _, r := range alphabet {
		if c := counts[r]; c < 400 || c > 850 {
			t.Errorf("symbol %q drawn %d times in %d characters, want about %d", r, c, n*22, n*22/36)
		}
	}
	if len(counts) != len(alphabet) {
		t.Errorf("tokens use %d symbols, want %d", len(counts), len(alphabet))
	}
}
