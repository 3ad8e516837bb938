package kubeclient

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"io"
	"io/fs"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/plinthos/plinth/internal/kubeconfig"
	"github.com/plinthos/plinth/pkg/pki"
)

// request is what the fake API server saw of a request.
type request struct {
	Method, Path, Query, ContentType, Auth, ClientCN string
	Body                                             []byte
}

// fakeAPI is an API server over mutual TLS: it requires a client certificate of its CA
// and records the requests.
type fakeAPI struct {
	srv        *httptest.Server
	kubeconfig []byte // the admin's, with a client certificate

	mu   sync.Mutex
	reqs []request
}

func newFakeAPI(t *testing.T, handler http.HandlerFunc) *fakeAPI {
	t.Helper()
	ca, err := pki.NewCA(pki.CAOptions{CommonName: "kubernetes", Validity: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	issue := func(cn string, usage pki.Usage) *pki.KeyPair {
		kp, err := pki.Issue(ca, pki.CertOptions{CommonName: cn, Usage: usage, Validity: time.Hour, IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}})
		if err != nil {
			t.Fatal(err)
		}
		return kp
	}
	server, client := issue("kube-apiserver", pki.UsageServer), issue("admin", pki.UsageClient)
	serverCert, err := tls.X509KeyPair(server.CertPEM, server.KeyPEM)
	if err != nil {
		t.Fatal(err)
	}
	f := &fakeAPI{}
	f.srv = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		req := request{Method: r.Method, Path: r.URL.Path, Query: r.URL.RawQuery, ContentType: r.Header.Get("Content-Type"),
			Auth: r.Header.Get("Authorization"), Body: body}
		if len(r.TLS.PeerCertificates) > 0 {
			req.ClientCN = r.TLS.PeerCertificates[0].Subject.CommonName
		}
		f.mu.Lock()
		f.reqs = append(f.reqs, req)
		f.mu.Unlock()
		handler(w, r)
	}))
	pool := x509.NewCertPool()
	pool.AddCert(ca.Cert)
	f.srv.TLS = &tls.Config{Certificates: []tls.Certificate{serverCert}, ClientCAs: pool, ClientAuth: tls.VerifyClientCertIfGiven}
	f.srv.StartTLS()
	t.Cleanup(f.srv.Close)
	f.kubeconfig, err = kubeconfig.New("demo", kubeconfig.Cluster{Server: f.srv.URL, CertificateAuthorityData: ca.CertPEM},
		"admin", kubeconfig.User{ClientCertificateData: client.CertPEM, ClientKeyData: client.KeyPEM}).Marshal()
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func (f *fakeAPI) client(t *testing.T) *Client {
	t.Helper()
	c, err := New(f.kubeconfig, "")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}

func (f *fakeAPI) requests() []request {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.reqs)
}

func serveJSON(body string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, body)
	}
}

const nodesJSON = `{"kind":"NodeList","apiVersion":"v1","metadata":{"resourceVersion":"42"},"items":[
 {"metadata":{"name":"cp-1","labels":{"node-role.kubernetes.io/control-plane":""}},
  "status":{"addresses":[{"type":"InternalIP","address":"10.5.0.2"},{"type":"Hostname","address":"cp-1"}],
   "conditions":[{"type":"MemoryPressure","status":"False"},{"type":"Ready","status":"True"}]}}]}`

func TestListNodesOverMutualTLS(t *testing.T) {
	api := newFakeAPI(t, serveJSON(nodesJSON))
	nodes, err := api.client(t).ListNodes(context.Background(), "node-role.kubernetes.io/control-plane")
	if err != nil {
		t.Fatal(err)
	}
	if len(nodes) != 1 || nodes[0].Metadata.Name != "cp-1" || len(nodes[0].Status.Addresses) != 2 ||
		nodes[0].Status.Addresses[0].Address != "10.5.0.2" || nodes[0].Status.Conditions[1].Type != "Ready" {
		t.Fatalf("nodes = %+v", nodes)
	}
	reqs := api.requests()
	if len(reqs) != 1 || reqs[0].Method != "GET" || reqs[0].Path != "/api/v1/nodes" ||
		reqs[0].Query != "labelSelector=node-role.kubernetes.io%2Fcontrol-plane" || reqs[0].ClientCN != "admin" {
		t.Errorf("requests = %+v", reqs)
	}
}

func TestTrust(t *testing.T) {
	api := newFakeAPI(t, serveJSON(nodesJSON))
	// Another CA's kubeconfig does not trust the server.
	other := newFakeAPI(t, serveJSON(nodesJSON))
	c, err := New(other.kubeconfig, api.srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	var unknown x509.UnknownAuthorityError
	if _, err := c.ListNodes(context.Background(), ""); !errors.As(err, &unknown) || !strings.Contains(err.Error(), "GET "+api.srv.URL+"/api/v1/nodes") {
		t.Errorf("server of another CA: err = %v", err)
	}
	if len(api.requests()) != 0 {
		t.Error("the request reached a server the client does not trust")
	}
}

func TestBearerToken(t *testing.T) {
	api := newFakeAPI(t, serveJSON(`{"items":[]}`))
	kc, err := kubeconfig.Parse(api.kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	kc.Users[0].User = kubeconfig.User{Token: "abc.def"}
	c, err := FromConfig(kc, "")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.ListCSRs(context.Background()); err != nil {
		t.Fatal(err)
	}
	if r := api.requests()[0]; r.Auth != "Bearer abc.def" || r.ClientCN != "" || r.Path != "/apis/certificates.k8s.io/v1/certificatesigningrequests" {
		t.Errorf("request = %+v", r)
	}
}

func TestAPIErrors(t *testing.T) {
	api := newFakeAPI(t, func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/api/v1/nodes/gone":
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusNotFound)
			_, _ = io.WriteString(w, `{"kind":"Status","apiVersion":"v1","status":"Failure","message":"nodes \"gone\" not found","reason":"NotFound","code":404}`)
		case "/readyz":
			w.WriteHeader(http.StatusInternalServerError)
			_, _ = io.WriteString(w, "[+]ping ok\n[-]etcd failed: reason withheld\n[+]log ok\n[-]poststarthook/rbac failed: not finished\nreadyz check failed\n")
		case "/big":
			w.WriteHeader(http.StatusBadGateway)
			_, _ = io.WriteString(w, strings.Repeat("x", 100<<10))
		case "/junk":
			_, _ = io.WriteString(w, "<html>")
		}
	})
	c := api.client(t)
	ctx := context.Background()

	_, err := c.GetNode(ctx, "gone")
	var ae *APIError
	if !errors.As(err, &ae) || ae.Reason != "NotFound" || !IsNotFound(err) ||
		err.Error() != `GET /api/v1/nodes/gone: 404 Not Found: nodes "gone" not found` {
		t.Errorf("missing node: %v (%+v)", err, ae)
	}
	err = c.Readyz(ctx)
	if err == nil || IsNotFound(err) || err.Error() != "GET /readyz: 500 Internal Server Error: failed: etcd failed: reason withheld; poststarthook/rbac failed: not finished" {
		t.Errorf("readyz: %v", err)
	}
	err = c.Get(ctx, "/big", nil)
	if !errors.As(err, &ae) || ae.StatusCode != http.StatusBadGateway || len(ae.Message) > maxMessage+3 || !strings.HasSuffix(ae.Message, "...") {
		t.Errorf("a large error body: %d bytes of message", len(ae.Message))
	}
	var v struct{}
	if err := c.Get(ctx, "/junk", &v); err == nil || !strings.Contains(err.Error(), "GET /junk: decode the answer") {
		t.Errorf("junk: %v", err)
	}
}

func TestContextEndsRequest(t *testing.T) {
	api := newFakeAPI(t, func(w http.ResponseWriter, r *http.Request) { <-r.Context().Done() })
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if err := api.client(t).Readyz(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("err = %v, want the context's deadline", err)
	}
}

func TestMergePatchAndLabelNode(t *testing.T) {
	api := newFakeAPI(t, serveJSON(`{}`))
	c := api.client(t)
	if err := c.MergePatchNode(context.Background(), "cp-1", []byte(`{"metadata":{"labels":{"a":null}}}`)); err != nil {
		t.Fatal(err)
	}
	if err := c.LabelNode(context.Background(), "cp-1", map[string]string{"node-role.kubernetes.io/control-plane": ""}); err != nil {
		t.Fatal(err)
	}
	reqs := api.requests()
	for i, want := range []string{`{"metadata":{"labels":{"a":null}}}`, `{"metadata":{"labels":{"node-role.kubernetes.io/control-plane":""}}}`} {
		if r := reqs[i]; r.Method != "PATCH" || r.Path != "/api/v1/nodes/cp-1" || r.ContentType != "application/merge-patch+json" || string(r.Body) != want {
			t.Errorf("request %d = %+v, body %s", i, r, r.Body)
		}
	}
}

// The CSR as the API serves it, with fields this package does not type.
const csrJSON = `{"kind":"CertificateSigningRequest","apiVersion":"certificates.k8s.io/v1",
 "metadata":{"name":"csr-2kq7d","resourceVersion":"1234","uid":"u-1"},
 "spec":{"signerName":"kubernetes.io/kubelet-serving","username":"system:node:worker-1","request":"UEVN","expirationSeconds":31536000,"extra":{"k":["v"]}},
 "status":{}}`

func TestApproveAndDenyCSR(t *testing.T) {
	api := newFakeAPI(t, func(w http.ResponseWriter, r *http.Request) {
		switch {
		case r.Method == "GET" && r.URL.Path == "/apis/certificates.k8s.io/v1/certificatesigningrequests/csr-2kq7d":
			_, _ = io.WriteString(w, csrJSON)
		case r.Method == "GET" && r.URL.Path == "/apis/certificates.k8s.io/v1/certificatesigningrequests/csr-done":
			_, _ = io.WriteString(w, `{"metadata":{"name":"csr-done"},"status":{"conditions":[{"type":"Approved","status":"True"}]}}`)
		case r.Method == "PUT":
			_, _ = io.WriteString(w, `{}`)
		default:
			http.NotFound(w, r)
		}
	})
	c := api.client(t)
	ctx := context.Background()
	if err := c.ApproveCSR(ctx, "csr-2kq7d", "the node's own names"); err != nil {
		t.Fatal(err)
	}
	if err := c.DenyCSR(ctx, "csr-2kq7d", "10.96.0.1 is a Service address"); err != nil {
		t.Fatal(err)
	}
	if err := c.ApproveCSR(ctx, "csr-done", "again"); err != nil {
		t.Fatal(err)
	}
	var puts []request
	for _, r := range api.requests() {
		if r.Method == "PUT" {
			puts = append(puts, r)
		}
	}
	if len(puts) != 2 {
		t.Fatalf("%d PUTs, want 2 (an approved request is not approved again)", len(puts))
	}
	var original map[string]any
	if err := json.Unmarshal([]byte(csrJSON), &original); err != nil {
		t.Fatal(err)
	}
	for i, want := range []struct{ typ, reason, message string }{
		{"Approved", "PlinthApprove", "the node's own names"},
		{"Denied", "PlinthDeny", "10.96.0.1 is a Service address"},
	} {
		p := puts[i]
		if p.Path != "/apis/certificates.k8s.io/v1/certificatesigningrequests/csr-2kq7d/approval" || p.ContentType != "application/json" {
			t.Errorf("PUT %d: %+v", i, p)
		}
		var got map[string]any
		if err := json.Unmarshal(p.Body, &got); err != nil {
			t.Fatal(err)
		}
		conds := got["status"].(map[string]any)["conditions"].([]any)
		cond := conds[0].(map[string]any)
		if len(conds) != 1 || cond["type"] != want.typ || cond["status"] != "True" || cond["reason"] != want.reason || cond["message"] != want.message || cond["lastUpdateTime"] == nil {
			t.Errorf("PUT %d conditions: %v", i, conds)
		}
		// Everything else goes back as it came: the resource version, the untyped fields,
		// the numbers as written.
		delete(got, "status")
		want := map[string]any{}
		for k, v := range original {
			want[k] = v
		}
		delete(want, "status")
		if g, w := mustJSON(t, got), mustJSON(t, want); g != w {
			t.Errorf("PUT %d body:\n got %s\nwant %s", i, g, w)
		}
		if !strings.Contains(string(p.Body), `"expirationSeconds":31536000`) {
			t.Errorf("PUT %d rewrote a number: %s", i, p.Body)
		}
	}
}

func mustJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestAPIServerAddresses(t *testing.T) {
	api := newFakeAPI(t, serveJSON(`{"kind":"EndpointSliceList","items":[
	 {"metadata":{"name":"kubernetes"},"addressType":"IPv4","endpoints":[{"addresses":["10.5.0.2"]},{"addresses":["10.5.0.3"]}],"ports":[{"port":6443}]},
	 {"metadata":{"name":"kubernetes-2"},"endpoints":[{"addresses":["10.5.0.3","10.5.0.4"]}]}]}`))
	// The kubeconfig names another server (as the admin kubeconfig names the local
	// one); the server argument replaces it.
	kc, err := kubeconfig.Parse(api.kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	kc.Clusters[0].Cluster.Server = "https://192.0.2.1:6443"
	data, err := kc.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "admin.conf")
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	addrs, err := APIServerAddresses(context.Background(), path, api.srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"10.5.0.2", "10.5.0.3", "10.5.0.4"}; !slices.Equal(addrs, want) {
		t.Errorf("addresses = %q, want %q", addrs, want)
	}
	if r := api.requests()[0]; r.Path != "/apis/discovery.k8s.io/v1/namespaces/default/endpointslices" || r.Query != "labelSelector=kubernetes.io%2Fservice-name%3Dkubernetes" {
		t.Errorf("request = %+v", r)
	}
	// Early in boot the admin kubeconfig is not there yet.
	_, err = APIServerAddresses(context.Background(), filepath.Join(t.TempDir(), "admin.conf"), api.srv.URL)
	if !errors.Is(err, fs.ErrNotExist) || !strings.Contains(err.Error(), "admin.conf") {
		t.Errorf("missing kubeconfig: %v", err)
	}
}

func TestNewRefusesBadServers(t *testing.T) {
	api := newFakeAPI(t, serveJSON(`{}`))
	for _, server := range []string{"http://10.5.0.2:6443", "10.5.0.2:6443", "https://"} {
		if _, err := New(api.kubeconfig, server); err == nil || !strings.Contains(err.Error(), "not an https:// URL") {
			t.Errorf("server %q: err = %v", server, err)
		}
	}
	if _, err := New([]byte("clusters: 3"), ""); err == nil {
		t.Error("New accepted a kubeconfig that is not one")
	}
}
