package cli

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/plinthos/plinth/internal/kubeconfig"
	"github.com/plinthos/plinth/internal/provision/provisiontest"
)

// readYAML parses the YAML file at path into a map.
func readYAML(t *testing.T, path string) map[string]any {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	d := map[string]any{}
	if err := yaml.Unmarshal(data, &d); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return d
}

// entryNames lists the names of the entries of the kubeconfig list key.
func entryNames(d map[string]any, key string) []string {
	var names []string
	l, _ := d[key].([]any)
	for _, e := range l {
		m, _ := e.(map[string]any)
		n, _ := m["name"].(string)
		names = append(names, n)
	}
	return names
}

// The kubeconfig cleanup itself is tested in internal/localcluster; this checks that
// cluster destroy does it, on $KUBECONFIG, and says so.
func TestClusterDestroyRemovesKubeconfigEntries(t *testing.T) {
	home, _ := isolateHome(t)
	newFakeProvisioner(t)
	kc := filepath.Join(home, "kube", "config")
	t.Setenv("KUBECONFIG", kc)
	if err := kubeconfig.Merge(kc, provisiontest.Kubeconfig("other", "https://192.0.2.1:6443")); err != nil {
		t.Fatal(err)
	}
	demo, err := kubeconfig.Rename(provisiontest.Kubeconfig("demo", "https://127.0.0.1:6443"), "demo", "")
	if err != nil {
		t.Fatal(err)
	}
	if err := kubeconfig.Merge(kc, demo); err != nil {
		t.Fatal(err)
	}

	out := mustCLI(t, "cluster", "destroy", "--name", "demo")
	if !strings.Contains(out, `removed context "demo", cluster "demo", user "admin@demo" from the kubeconfig `+kc) ||
		!strings.Contains(out, "none is current now (pick one with `kubectl config use-context NAME`)") {
		t.Errorf("destroy output:\n%s", out)
	}
	d := readYAML(t, kc)
	for key, want := range map[string][]string{"contexts": {"admin@other"}, "clusters": {"other"}, "users": {"admin@other"}} {
		if got := entryNames(d, key); !slices.Equal(got, want) {
			t.Errorf("%s after destroy: %v, want %v", key, got, want)
		}
	}
	if out = mustCLI(t, "cluster", "destroy", "--name", "demo"); strings.Contains(out, "kubeconfig") {
		t.Errorf("destroy of a cluster already gone:\n%s", out)
	}
}
