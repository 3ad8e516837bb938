package machined

import (
	"encoding/json"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/plinthos/plinth/internal/apid"
	"github.com/plinthos/plinth/internal/k8s/objects"
)

func readPolicy(t *testing.T, path string) apid.Policy {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var p apid.Policy
	if err := json.Unmarshal(data, &p); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestAPIDPolicy: the members are the node itself, the nodes its trustd certified (kept
// across restarts) and Kubernetes' nodes; the revoked serials follow the configuration.
func TestAPIDPolicy(t *testing.T) {
	dir := t.TempDir()
	path, issued, k8s := filepath.Join(dir, "policy.json"), filepath.Join(dir, "certified.json"), filepath.Join(dir, "k8s.json")
	p, err := newAPIDPolicy(path, issued, k8s, nil, []string{"10.5.0.2", "cp-1"}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	if got := readPolicy(t, path); !slices.Equal(got.Members, []string{"10.5.0.2", "cp-1"}) || len(got.RevokedSerials) != 0 {
		t.Errorf("initial policy %+v", got)
	}
	p.AddIssued("10.5.0.3")
	if err := p.SetKubernetes([]string{"10.5.0.4", "10.5.0.2"}); err != nil {
		t.Fatal(err)
	}
	if err := p.SetRevoked([]string{"1a2b"}); err != nil {
		t.Fatal(err)
	}
	got := readPolicy(t, path)
	if !slices.Equal(got.Members, []string{"10.5.0.2", "10.5.0.3", "10.5.0.4", "cp-1"}) || !slices.Equal(got.RevokedSerials, []string{"1a2b"}) {
		t.Errorf("policy %+v", got)
	}
	// A restarted machined still knows the nodes its trustd certified, and the members
	// Kubernetes listed last (its API may be down: etcd lost, being recovered).
	if _, err := newAPIDPolicy(path, issued, k8s, nil, []string{"10.5.0.2"}, slog.New(slog.DiscardHandler)); err != nil {
		t.Fatal(err)
	}
	if got := readPolicy(t, path); !slices.Equal(got.Members, []string{"10.5.0.2", "10.5.0.3", "10.5.0.4"}) {
		t.Errorf("policy after a restart %+v", got)
	}
}

// TestNodeMembers: the members from Kubernetes are the nodes' internal and external
// addresses, sorted, each once; not their host names.
func TestNodeMembers(t *testing.T) {
	node := func(name string, addrs ...objects.NodeAddress) objects.Node {
		return objects.Node{Metadata: objects.ObjectMeta{Name: name}, Status: objects.NodeStatus{Addresses: addrs}}
	}
	got := nodeMembers([]objects.Node{
		node("w-1", objects.NodeAddress{Type: "InternalIP", Address: "10.5.0.3"}, objects.NodeAddress{Type: "Hostname", Address: "w-1"}),
		node("cp-1", objects.NodeAddress{Type: "ExternalIP", Address: "203.0.113.7"}, objects.NodeAddress{Type: "InternalIP", Address: "10.5.0.2"},
			objects.NodeAddress{Type: "InternalDNS", Address: "cp-1.internal"}),
		node("cp-1-again", objects.NodeAddress{Type: "InternalIP", Address: "10.5.0.2"}),
		node("new"),
	})
	if want := []string{"10.5.0.2", "10.5.0.3", "203.0.113.7"}; !slices.Equal(got, want) {
		t.Errorf("members = %q, want %q", got, want)
	}
}
