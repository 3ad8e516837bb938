package tlsboot

import (
	"context"
	"crypto/tls"
	"encoding/base64"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/plinthos/plinth/internal/kubeconfig"
	"github.com/plinthos/plinth/pkg/pki"
)

// signingAPI is an API server that takes one certificate signing request from the bearer
// of token and signs it with ca after polls GETs, as kube-controller-manager would once
// its approver and signer ran.
type signingAPI struct {
	srv   *httptest.Server
	ca    *pki.KeyPair
	polls int
	deny  bool

	mu      sync.Mutex
	request []byte // the PEM request, once made
	gets    int
}

const token = "abcdef.0123456789abcdef"

func newSigningAPI(t *testing.T, polls int, deny bool) *signingAPI {
	t.Helper()
	ca, err := pki.NewCA(pki.CAOptions{CommonName: "kubernetes", Validity: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	server, err := pki.Issue(ca, pki.CertOptions{CommonName: "kube-apiserver", Usage: pki.UsageServer, Validity: time.Hour, IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}})
	if err != nil {
		t.Fatal(err)
	}
	a := &signingAPI{ca: ca, polls: polls, deny: deny}
	a.srv = httptest.NewUnstartedServer(http.HandlerFunc(a.serve))
	cert, err := tls.X509KeyPair(server.CertPEM, server.KeyPEM)
	if err != nil {
		t.Fatal(err)
	}
	a.srv.TLS = &tls.Config{Certificates: []tls.Certificate{cert}}
	a.srv.StartTLS()
	t.Cleanup(a.srv.Close)
	return a
}

func (a *signingAPI) serve(w http.ResponseWriter, r *http.Request) {
	if r.Header.Get("Authorization") != "Bearer "+token {
		http.Error(w, `{"kind":"Status","code":401,"message":"Unauthorized"}`, http.StatusUnauthorized)
		return
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	const path = "/apis/certificates.k8s.io/v1/certificatesigningrequests"
	switch {
	case r.Method == http.MethodPost && r.URL.Path == path:
		var body struct {
			Metadata struct{ GenerateName string } `json:"metadata"`
			Spec     struct {
				Request    string   `json:"request"`
				SignerName string   `json:"signerName"`
				Usages     []string `json:"usages"`
			} `json:"spec"`
		}
		data, _ := io.ReadAll(r.Body)
		if err := json.Unmarshal(data, &body); err != nil || body.Spec.SignerName != Signer || strings.Join(body.Spec.Usages, ",") != "digital signature,client auth" {
			http.Error(w, `{"message":"bad request"}`, http.StatusBadRequest)
			return
		}
		a.request, _ = base64.StdEncoding.DecodeString(body.Spec.Request)
		_, _ = io.WriteString(w, `{"metadata":{"name":"`+body.Metadata.GenerateName+`x1"}}`)
	case r.Method == http.MethodGet && r.URL.Path == path+"/node-csr-x1" && a.request != nil:
		a.gets++
		switch {
		case a.deny:
			_, _ = io.WriteString(w, `{"metadata":{"name":"node-csr-x1"},"status":{"conditions":[{"type":"Denied","status":"True","reason":"Nope","message":"not this one"}]}}`)
		case a.gets < a.polls:
			_, _ = io.WriteString(w, `{"metadata":{"name":"node-csr-x1"},"status":{}}`)
		default:
			crt, err := pki.SignCSR(a.ca, a.request, pki.CertOptions{Usage: pki.UsageClient, Validity: time.Hour})
			if err != nil {
				http.Error(w, err.Error(), http.StatusInternalServerError)
				return
			}
			_, _ = io.WriteString(w, `{"metadata":{"name":"node-csr-x1"},"status":{"certificate":"`+base64.StdEncoding.EncodeToString(crt)+`"}}`)
		}
	default:
		http.NotFound(w, r)
	}
}

// bootstrapKubeconfig writes a bootstrap kubeconfig for the API into dir.
func (a *signingAPI) bootstrapKubeconfig(t *testing.T, dir string) string {
	t.Helper()
	data, err := kubeconfig.New("demo", kubeconfig.Cluster{Server: a.srv.URL, CertificateAuthorityData: a.ca.CertPEM},
		"kubelet-bootstrap", kubeconfig.User{Token: token}).Marshal()
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "bootstrap-kubelet.conf")
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestBootstrapWritesAKubeconfigWithTheSignedCertificate(t *testing.T) {
	api := newSigningAPI(t, 3, false)
	dir := t.TempDir()
	boot, kc := api.bootstrapKubeconfig(t, dir), filepath.Join(dir, "kubeconfig")
	var logs strings.Builder
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := Bootstrap(ctx, boot, kc, "worker-1", time.Now, 10*time.Millisecond, &logs); err != nil {
		t.Fatal(err)
	}
	csr, err := pki.ParseCSRPEM(api.request)
	if err != nil {
		t.Fatal(err)
	}
	if csr.Subject.CommonName != "system:node:worker-1" || strings.Join(csr.Subject.Organization, ",") != "system:nodes" {
		t.Fatalf("the request names %v", csr.Subject)
	}
	if api.gets != 3 {
		t.Errorf("%d polls, want 3 (the certificate came with the third)", api.gets)
	}
	info, err := os.Stat(kc)
	if err != nil {
		t.Fatal(err)
	}
	if info.Mode().Perm() != 0o600 {
		t.Errorf("kubeconfig mode %v, want 0600", info.Mode().Perm())
	}
	// The kubeconfig reaches the API with the new certificate, for this node.
	cfg, err := kubeconfig.Load(kc)
	if err != nil {
		t.Fatal(err)
	}
	ep, err := cfg.Endpoint()
	if err != nil {
		t.Fatal(err)
	}
	if ep.Server != api.srv.URL || len(ep.TLS.Certificates) != 1 || ep.Token != "" {
		t.Fatalf("endpoint %+v", ep)
	}
	leaf, err := pki.ParseCertPEM([]byte(cfg.Users[0].User.ClientCertificateData))
	if err != nil {
		t.Fatal(err)
	}
	if leaf.Subject.CommonName != "system:node:worker-1" {
		t.Errorf("certificate for %q", leaf.Subject.CommonName)
	}
	if !strings.Contains(logs.String(), "node-csr-x1") {
		t.Errorf("logs %q", logs.String())
	}

	// Booted again, the valid kubeconfig is kept and nothing is asked.
	before, _ := os.ReadFile(kc)
	api.request = nil
	if err := Bootstrap(ctx, boot, kc, "worker-1", time.Now, 10*time.Millisecond, io.Discard); err != nil {
		t.Fatal(err)
	}
	if after, _ := os.ReadFile(kc); string(after) != string(before) || api.request != nil {
		t.Fatal("a valid kubeconfig was replaced")
	}
	// Once its certificate expired, a new one is asked for.
	if err := Bootstrap(ctx, boot, kc, "worker-1", func() time.Time { return time.Now().Add(2 * time.Hour) }, 10*time.Millisecond, io.Discard); err != nil {
		t.Fatal(err)
	}
	if api.request == nil {
		t.Fatal("an expired certificate was kept")
	}
}

func TestBootstrapDeniedIsAnErrorAndWritesNothing(t *testing.T) {
	api := newSigningAPI(t, 1, true)
	dir := t.TempDir()
	boot, kc := api.bootstrapKubeconfig(t, dir), filepath.Join(dir, "kubeconfig")
	err := Bootstrap(context.Background(), boot, kc, "worker-1", time.Now, 10*time.Millisecond, io.Discard)
	if err == nil || !strings.Contains(err.Error(), "Denied: Nope not this one") {
		t.Fatalf("err %v", err)
	}
	if _, err := os.Stat(kc); !os.IsNotExist(err) {
		t.Fatalf("kubeconfig written after a denial: %v", err)
	}
}

func TestBootstrapWaitEndsWithTheContext(t *testing.T) {
	api := newSigningAPI(t, 1<<30, false)
	dir := t.TempDir()
	boot, kc := api.bootstrapKubeconfig(t, dir), filepath.Join(dir, "kubeconfig")
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	err := Bootstrap(ctx, boot, kc, "worker-1", time.Now, 10*time.Millisecond, io.Discard)
	if err == nil || !strings.Contains(err.Error(), "to be signed") {
		t.Fatalf("err %v", err)
	}
}
