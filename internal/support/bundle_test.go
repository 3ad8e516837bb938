package support

import (
	"archive/tar"
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/klauspost/compress/gzip"
)

func testKey(t *testing.T) []byte {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalECPrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: der})
}

func TestMaskKeys(t *testing.T) {
	key := testKey(t)
	cert := []byte("-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n")
	b64 := base64.StdEncoding.EncodeToString(key)
	in := "before\n" + string(key) + "key: " + b64 + "\ncrt: " + base64.StdEncoding.EncodeToString(cert) + "\n" + string(cert)
	out, n := MaskKeys([]byte(in))
	if n != 2 {
		t.Errorf("masked %d keys, want 2", n)
	}
	s := string(out)
	if strings.Contains(s, "PRIVATE KEY") || strings.Contains(s, b64) {
		t.Errorf("a key is left:\n%s", s)
	}
	// Certificates are public: they stay.
	if !strings.Contains(s, string(cert)) || !strings.Contains(s, base64.StdEncoding.EncodeToString(cert)) || !strings.HasPrefix(s, "before\n"+Masked) {
		t.Errorf("masked too much:\n%s", s)
	}
	if out, n := MaskKeys([]byte("LS0tLS1CRUdJTi!!! not base64")); n != 0 || string(out) != "LS0tLS1CRUdJTi!!! not base64" {
		t.Errorf("text that is not a key changed: %q (%d)", out, n)
	}
}

func TestBundleWrite(t *testing.T) {
	b := New()
	b.Add("10.5.0.2/version.txt", []byte("v1"))
	b.Add("10.5.0.2/secret.yaml", testKey(t))
	b.Fail("10.5.0.3", "node", errors.New("did not answer"))
	b.Fail("cluster", "nodes", errors.New("no API server"))
	var buf bytes.Buffer
	if err := b.Write(&buf, "support", "plinthctl support of context demo\n", time.Unix(0, 0)); err != nil {
		t.Fatal(err)
	}
	zr, err := gzip.NewReader(&buf)
	if err != nil {
		t.Fatal(err)
	}
	tr := tar.NewReader(zr)
	got := map[string]string{}
	var order []string
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		data, _ := io.ReadAll(tr)
		got[h.Name] = string(data)
		order = append(order, h.Name)
	}
	if len(order) != 3 || order[0] != "support/summary.txt" {
		t.Fatalf("entries %v, want the summary first and two files", order)
	}
	sum := got["support/summary.txt"]
	for _, want := range []string{"plinthctl support of context demo", "2 files collected", "Not collected from 10.5.0.3:\n  node: did not answer",
		"Not collected from cluster:\n  nodes: no API server", "10.5.0.2/secret.yaml: 1 private key(s)"} {
		if !strings.Contains(sum, want) {
			t.Errorf("summary lacks %q:\n%s", want, sum)
		}
	}
	if got["support/10.5.0.2/secret.yaml"] != Masked+"\n" || got["support/10.5.0.2/version.txt"] != "v1" {
		t.Errorf("files: %q", got)
	}
	if b.Problems() != 2 {
		t.Errorf("problems %d", b.Problems())
	}
}
