package csrapprove

import (
	"bytes"
	"context"
	"encoding/json"
	"encoding/pem"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/plinthos/plinth/internal/k8s/kubeclient"
	"github.com/plinthos/plinth/internal/k8s/objects"
	"github.com/plinthos/plinth/internal/kubeconfig"
	"github.com/plinthos/plinth/pkg/config"
)

// testdata/csrs.json and testdata/nodes.json are the lists of CSRs and nodes (`kubectl get
// csr -o json`, `kubectl get nodes -o json`) of a two-node cluster (cp-1 at 172.20.0.2, worker-1 at 172.20.0.3). The
// requests in them were generated with crypto/x509 (ECDSA P-256, keys thrown away):
//   - csr-h5v8t: worker-2's bootstrap client request, approved (another signer);
//   - csr-p3n6w: cp-1's serving request, approved;
//   - csr-2kq7d: worker-1's serving request for worker-1 and 172.20.0.3, pending;
//   - csr-9zx4m: worker-1's serving request that also names 10.96.0.1, pending;
//   - csr-w8r2c: a kubelet serving request made by kubernetes-admin, pending.

func readFixture(t *testing.T, name string) []byte {
	t.Helper()
	data, err := os.ReadFile("testdata/" + name)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

func TestRequestOf(t *testing.T) {
	var reqs []Request
	for _, o := range decodeFixture[objects.CertificateSigningRequest](t, "csrs.json") {
		reqs = append(reqs, requestOf(o))
	}
	var names []string
	for _, r := range reqs {
		names = append(names, r.Name)
	}
	if want := []string{"csr-h5v8t", "csr-p3n6w", "csr-2kq7d", "csr-9zx4m", "csr-w8r2c"}; !slices.Equal(names, want) {
		t.Fatalf("names = %q, want %q", names, want)
	}
	client, served, pending := reqs[0], reqs[1], reqs[2]
	if client.SignerName != "kubernetes.io/kube-apiserver-client-kubelet" || client.Username != "system:bootstrap:q8w2zk" {
		t.Errorf("client request = %+v", client)
	}
	if !slices.Equal(served.Conditions, []string{"Approved"}) {
		t.Errorf("approved request conditions = %q", served.Conditions)
	}
	if pending.SignerName != SignerKubeletServing || pending.Username != "system:node:worker-1" ||
		!slices.Equal(pending.Groups, []string{"system:nodes", "system:authenticated"}) ||
		!slices.Equal(pending.Usages, []string{"digital signature", "server auth"}) || len(pending.Conditions) != 0 {
		t.Errorf("pending request = %+v", pending)
	}
	csr, err := parseCSR(pending.PEM)
	if err != nil {
		t.Fatalf("spec.request: %v", err)
	}
	if csr.Subject.CommonName != "system:node:worker-1" || !slices.Equal(csr.DNSNames, []string{"worker-1"}) {
		t.Errorf("request subject %q, DNS names %q", csr.Subject.CommonName, csr.DNSNames)
	}
}

func TestRequestOfBadBase64(t *testing.T) {
	r := requestOf(objects.CertificateSigningRequest{Metadata: objects.ObjectMeta{Name: "csr-x"}, Spec: objects.CertificateSigningRequestSpec{Request: "%%%"}})
	if r.Name != "csr-x" || r.PEM != nil {
		t.Fatalf("request = %+v, want one without PEM", r)
	}
}

func TestNodeOf(t *testing.T) {
	var nodes []Node
	for _, o := range decodeFixture[objects.Node](t, "nodes.json") {
		nodes = append(nodes, nodeOf(o))
	}
	want := []Node{
		{Name: "cp-1", Addresses: []Address{{AddressInternalIP, "172.20.0.2"}, {AddressHostname, "cp-1"}}},
		{Name: "worker-1", Addresses: []Address{{AddressInternalIP, "172.20.0.3"}, {AddressHostname, "worker-1"}}},
	}
	if !slices.EqualFunc(nodes, want, func(a, b Node) bool { return a.Name == b.Name && slices.Equal(a.Addresses, b.Addresses) }) {
		t.Fatalf("nodes = %+v, want %+v", nodes, want)
	}
}

// decodeFixture reads the items of a list fixture.
func decodeFixture[T any](t *testing.T, name string) []T {
	t.Helper()
	var list struct {
		Items []T `json:"items"`
	}
	if err := json.Unmarshal(readFixture(t, name), &list); err != nil {
		t.Fatal(err)
	}
	return list.Items
}

// fakeAPI is an API server (over TLS, through kubeclient) that serves the fixtures and
// records the calls: "list csrs", "list nodes", "approve NAME" and "deny NAME".
type fakeAPI struct {
	csrs, nodes []byte
	fail        string // a call that the API forbids

	mu       sync.Mutex
	calls    []string
	messages []string // of the approvals and denials
}

func (f *fakeAPI) client(t *testing.T) *kubeclient.Client {
	t.Helper()
	const csrPath = "/apis/certificates.k8s.io/v1/certificatesigningrequests"
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		call, answer := "", []byte(nil)
		switch name, sub, _ := strings.Cut(strings.TrimPrefix(strings.TrimPrefix(r.URL.Path, csrPath), "/"), "/"); {
		case r.Method == "GET" && r.URL.Path == csrPath:
			call, answer = "list csrs", f.csrs
		case r.Method == "GET" && r.URL.Path == "/api/v1/nodes":
			call, answer = "list nodes", f.nodes
		case r.Method == "GET" && strings.HasPrefix(r.URL.Path, csrPath+"/"):
			var list struct{ Items []json.RawMessage }
			_ = json.Unmarshal(f.csrs, &list)
			for _, it := range list.Items {
				if strings.Contains(string(it), `"name": "`+name+`"`) {
					answer = it
				}
			}
		case r.Method == "PUT" && sub == "approval":
			var csr objects.CertificateSigningRequest
			if err := json.NewDecoder(r.Body).Decode(&csr); err != nil || csr.Metadata.Name != name || len(csr.Status.Conditions) == 0 {
				http.Error(w, "bad approval", http.StatusBadRequest)
				return
			}
			c := csr.Status.Conditions[len(csr.Status.Conditions)-1]
			call, answer = map[string]string{"Approved": "approve ", "Denied": "deny "}[c.Type]+name, []byte(`{}`)
			f.mu.Lock()
			f.messages = append(f.messages, c.Message)
			f.mu.Unlock()
		}
		if call != "" {
			f.mu.Lock()
			f.calls = append(f.calls, call)
			f.mu.Unlock()
		}
		switch {
		case call != "" && call == f.fail:
			w.WriteHeader(http.StatusForbidden)
			_, _ = w.Write([]byte(`{"kind":"Status","reason":"Forbidden","message":"forbidden"}`))
		case answer == nil:
			http.NotFound(w, r)
		default:
			_, _ = w.Write(answer)
		}
	}))
	t.Cleanup(srv.Close)
	ca := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw})
	kc, err := kubeconfig.New("test", kubeconfig.Cluster{Server: srv.URL, CertificateAuthorityData: ca}, "approver", kubeconfig.User{Token: "t"}).Marshal()
	if err != nil {
		t.Fatal(err)
	}
	c, err := kubeclient.New(kc, "")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}

func (f *fakeAPI) commands() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.calls)
}

var fixtureCluster = ClusterInfo{
	ServiceCIDRs:   []netip.Prefix{netip.MustParsePrefix("10.96.0.0/12")},
	PodCIDRs:       []netip.Prefix{netip.MustParsePrefix("10.244.0.0/16")},
	DNSDomain:      "cluster.local",
	APIServerNames: []string{"172.20.0.2"},
	Self:           "cp-1",
}

func TestReview(t *testing.T) {
	k := &fakeAPI{csrs: readFixture(t, "csrs.json"), nodes: readFixture(t, "nodes.json")}
	var logs bytes.Buffer
	if err := Review(context.Background(), k.client(t), fixtureCluster, &logs); err != nil {
		t.Fatal(err)
	}
	want := []string{"list csrs", "list nodes", "approve csr-2kq7d", "deny csr-9zx4m"}
	if got := k.commands(); !slices.Equal(got, want) {
		t.Errorf("API calls = %q, want %q", got, want)
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	if len(k.messages) != 2 || !strings.Contains(k.messages[1], "10.96.0.1 is in the Service network") {
		t.Errorf("condition messages = %q, want the denial's reason in the second", k.messages)
	}
	wantLogs := "approved kubelet serving certificate csr-2kq7d for system:node:worker-1\n" +
		"denied kubelet serving certificate csr-9zx4m for system:node:worker-1: IP address 10.96.0.1 is in the Service network 10.96.0.0/12\n"
	if logs.String() != wantLogs {
		t.Errorf("logs:\n%s\nwant:\n%s", logs.String(), wantLogs)
	}
}

func TestReviewNothingPending(t *testing.T) {
	k := &fakeAPI{csrs: []byte(`{"apiVersion":"v1","items":[],"kind":"List"}`)}
	if err := Review(context.Background(), k.client(t), fixtureCluster, &bytes.Buffer{}); err != nil {
		t.Fatal(err)
	}
	if got := k.commands(); !slices.Equal(got, []string{"list csrs"}) {
		t.Errorf("API calls = %q, want only the CSR list", got)
	}
}

// A failed approval is reported, and the next request is still decided.
func TestReviewKeepsGoingAfterAnError(t *testing.T) {
	k := &fakeAPI{csrs: readFixture(t, "csrs.json"), nodes: readFixture(t, "nodes.json"), fail: "approve csr-2kq7d"}
	var logs bytes.Buffer
	err := Review(context.Background(), k.client(t), fixtureCluster, &logs)
	if err == nil || !strings.Contains(err.Error(), "approve csr-2kq7d") || !strings.Contains(err.Error(), "403 Forbidden: forbidden") {
		t.Fatalf("Review error = %v, want the API's refusal to approve csr-2kq7d", err)
	}
	if !slices.Contains(k.commands(), "deny csr-9zx4m") {
		t.Errorf("csr-9zx4m was not decided after the error: %q", k.commands())
	}
}

func TestReviewListErrors(t *testing.T) {
	for _, fail := range []string{"list csrs", "list nodes"} {
		k := &fakeAPI{csrs: readFixture(t, "csrs.json"), nodes: readFixture(t, "nodes.json"), fail: fail}
		if err := Review(context.Background(), k.client(t), fixtureCluster, &bytes.Buffer{}); err == nil {
			t.Errorf("%s failing: Review returned no error", fail)
		}
		if slices.ContainsFunc(k.commands(), func(c string) bool { return strings.HasPrefix(c, "approve") || strings.HasPrefix(c, "deny") }) {
			t.Errorf("%s failing: Review approved or denied: %q", fail, k.commands())
		}
	}
}

func TestClusterInfoFromConfig(t *testing.T) {
	cfg := &config.MachineConfig{}
	cfg.Cluster.ControlPlane.Endpoint = "https://172.20.0.2:6443"
	cfg.Cluster.APIServer.CertSANs = []string{"api.example.org", "203.0.113.1"}
	info, err := ClusterInfoFromConfig(cfg, "cp-1")
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(info.ServiceCIDRs, []netip.Prefix{netip.MustParsePrefix(config.DefaultServiceSubnet)}) ||
		!slices.Equal(info.PodCIDRs, []netip.Prefix{netip.MustParsePrefix(config.DefaultPodSubnet)}) {
		t.Errorf("networks = %v, %v, want the defaults", info.ServiceCIDRs, info.PodCIDRs)
	}
	if info.DNSDomain != config.DefaultDNSDomain || info.Self != "cp-1" {
		t.Errorf("domain %q, self %q", info.DNSDomain, info.Self)
	}
	if want := []string{"172.20.0.2", "api.example.org", "203.0.113.1"}; !slices.Equal(info.APIServerNames, want) {
		t.Errorf("API server names = %q, want %q", info.APIServerNames, want)
	}
	if cfg.Cluster.Network.ServiceSubnets != nil {
		t.Error("ClusterInfoFromConfig changed the configuration")
	}

	cfg.Cluster.Network.ServiceSubnets = []string{"10.96.0.0/12", "fd00:10:96::/108"}
	cfg.Cluster.Network.PodSubnets = []string{"10.244.0.0"}
	if _, err := ClusterInfoFromConfig(cfg, "cp-1"); err == nil || !strings.Contains(err.Error(), "podSubnets") {
		t.Errorf("bad pod subnet: err = %v", err)
	}
}

// A request of a node that has not registered yet is left pending, not denied: the kubelet
// asks for its serving certificate as it registers, and a denial would hold it back.
func TestReviewWaitsForTheNode(t *testing.T) {
	k := &fakeAPI{csrs: readFixture(t, "csrs.json"), nodes: []byte(`{"apiVersion":"v1","items":[],"kind":"List"}`)}
	var logs bytes.Buffer
	if err := Review(context.Background(), k.client(t), fixtureCluster, &logs); err != nil {
		t.Fatal(err)
	}
	if got := k.commands(); !slices.Equal(got, []string{"list csrs", "list nodes"}) {
		t.Errorf("API calls = %q, want no decision", got)
	}
}
