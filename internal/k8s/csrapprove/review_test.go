package csrapprove

import (
	"bytes"
	"context"
	"errors"
	"net/netip"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/plinthos/plinth/pkg/config"
)

// testdata/csrs.json and testdata/nodes.json are `kubectl get csr -o json` and `kubectl get
// nodes -o json` of a two-node cluster (cp-1 at 172.20.0.2, worker-1 at 172.20.0.3). The
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

func TestParseRequests(t *testing.T) {
	reqs, err := ParseRequests(readFixture(t, "csrs.json"))
	if err != nil {
		t.Fatal(err)
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

func TestParseRequestsBadBase64(t *testing.T) {
	reqs, err := ParseRequests([]byte(`{"items":[{"metadata":{"name":"csr-x"},"spec":{"request":"%%%"}}]}`))
	if err != nil {
		t.Fatal(err)
	}
	if len(reqs) != 1 || reqs[0].PEM != nil {
		t.Fatalf("requests = %+v, want one without PEM", reqs)
	}
}

func TestParseNodes(t *testing.T) {
	nodes, err := ParseNodes(readFixture(t, "nodes.json"))
	if err != nil {
		t.Fatal(err)
	}
	want := []Node{
		{Name: "cp-1", Addresses: []Address{{AddressInternalIP, "172.20.0.2"}, {AddressHostname, "cp-1"}}},
		{Name: "worker-1", Addresses: []Address{{AddressInternalIP, "172.20.0.3"}, {AddressHostname, "worker-1"}}},
	}
	if !slices.EqualFunc(nodes, want, func(a, b Node) bool { return a.Name == b.Name && slices.Equal(a.Addresses, b.Addresses) }) {
		t.Fatalf("nodes = %+v, want %+v", nodes, want)
	}
}

func TestParseErrors(t *testing.T) {
	if _, err := ParseRequests([]byte("<html>")); err == nil {
		t.Error("ParseRequests accepted garbage")
	}
	if _, err := ParseNodes([]byte("<html>")); err == nil {
		t.Error("ParseNodes accepted garbage")
	}
}

// fakeKubectl answers get csr and get nodes from the fixtures and records the rest.
type fakeKubectl struct {
	csrs, nodes []byte
	calls       [][]string
	fail        string // a command (joined args) that fails
}

func (f *fakeKubectl) run(_ context.Context, args ...string) ([]byte, error) {
	f.calls = append(f.calls, args)
	cmd := strings.Join(args, " ")
	switch {
	case cmd == f.fail:
		return nil, errors.New("forbidden")
	case cmd == "get csr -o json":
		return f.csrs, nil
	case cmd == "get nodes -o json":
		return f.nodes, nil
	}
	return nil, nil
}

func (f *fakeKubectl) commands() []string {
	var out []string
	for _, c := range f.calls {
		out = append(out, strings.Join(c, " "))
	}
	return out
}

var fixtureCluster = ClusterInfo{
	ServiceCIDRs:   []netip.Prefix{netip.MustParsePrefix("10.96.0.0/12")},
	PodCIDRs:       []netip.Prefix{netip.MustParsePrefix("10.244.0.0/16")},
	DNSDomain:      "cluster.local",
	APIServerNames: []string{"172.20.0.2"},
	Self:           "cp-1",
}

func TestReview(t *testing.T) {
	k := &fakeKubectl{csrs: readFixture(t, "csrs.json"), nodes: readFixture(t, "nodes.json")}
	var logs bytes.Buffer
	if err := Review(context.Background(), k.run, fixtureCluster, &logs); err != nil {
		t.Fatal(err)
	}
	want := []string{"get csr -o json", "get nodes -o json", "certificate approve csr-2kq7d", "certificate deny csr-9zx4m"}
	if got := k.commands(); !slices.Equal(got, want) {
		t.Errorf("kubectl calls = %q, want %q", got, want)
	}
	wantLogs := "approved kubelet serving certificate csr-2kq7d for system:node:worker-1\n" +
		"denied kubelet serving certificate csr-9zx4m for system:node:worker-1: IP address 10.96.0.1 is in the Service network 10.96.0.0/12\n"
	if logs.String() != wantLogs {
		t.Errorf("logs:\n%s\nwant:\n%s", logs.String(), wantLogs)
	}
}

func TestReviewNothingPending(t *testing.T) {
	k := &fakeKubectl{csrs: []byte(`{"apiVersion":"v1","items":[],"kind":"List"}`)}
	if err := Review(context.Background(), k.run, fixtureCluster, &bytes.Buffer{}); err != nil {
		t.Fatal(err)
	}
	if got := k.commands(); !slices.Equal(got, []string{"get csr -o json"}) {
		t.Errorf("kubectl calls = %q, want only the CSR list", got)
	}
}

// A failed approval is reported, and the next request is still decided.
func TestReviewKeepsGoingAfterAnError(t *testing.T) {
	k := &fakeKubectl{csrs: readFixture(t, "csrs.json"), nodes: readFixture(t, "nodes.json"), fail: "certificate approve csr-2kq7d"}
	var logs bytes.Buffer
	err := Review(context.Background(), k.run, fixtureCluster, &logs)
	if err == nil || !strings.Contains(err.Error(), "csr-2kq7d") {
		t.Fatalf("Review error = %v, want one about csr-2kq7d", err)
	}
	if !slices.Contains(k.commands(), "certificate deny csr-9zx4m") {
		t.Errorf("csr-9zx4m was not decided after the error: %q", k.commands())
	}
}

func TestReviewListErrors(t *testing.T) {
	for _, fail := range []string{"get csr -o json", "get nodes -o json"} {
		k := &fakeKubectl{csrs: readFixture(t, "csrs.json"), nodes: readFixture(t, "nodes.json"), fail: fail}
		if err := Review(context.Background(), k.run, fixtureCluster, &bytes.Buffer{}); err == nil {
			t.Errorf("%s failing: Review returned no error", fail)
		}
		if slices.ContainsFunc(k.commands(), func(c string) bool { return strings.HasPrefix(c, "certificate") }) {
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
	k := &fakeKubectl{csrs: readFixture(t, "csrs.json"), nodes: []byte(`{"apiVersion":"v1","items":[],"kind":"List"}`)}
	var logs bytes.Buffer
	if err := Review(context.Background(), k.run, fixtureCluster, &logs); err != nil {
		t.Fatal(err)
	}
	if got := k.commands(); !slices.Equal(got, []string{"get csr -o json", "get nodes -o json"}) {
		t.Errorf("kubectl calls = %q, want no decision", got)
	}
}
