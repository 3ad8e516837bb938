package localcluster

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/plinthos/plinth/internal/kubeconfig"
	"github.com/plinthos/plinth/internal/provision/provisiontest"
)

// readKubeconfigFile reads the kubeconfig at path, which must exist.
func readKubeconfigFile(t *testing.T, path string) *kubeconfig.Config {
	t.Helper()
	c, err := kubeconfig.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if c == nil {
		t.Fatalf("%s: no such file", path)
	}
	return c
}

func writeKubeconfigFile(t *testing.T, path string, c *kubeconfig.Config) {
	t.Helper()
	if err := c.WriteFile(path); err != nil {
		t.Fatal(err)
	}
}

func TestKubeconfigMergeUndo(t *testing.T) {
	added, err := kubeconfig.Rename(provisiontest.Kubeconfig("demo", "https://127.0.0.1:41002"), "demo", "") // as Create names the context
	if err != nil {
		t.Fatal(err)
	}

	// A kubeconfig that the merge created is removed again.
	dir := t.TempDir()
	path := filepath.Join(dir, "config")
	m, err := mergeKubeconfig(path, added)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(path); err != nil {
		t.Fatalf("merge wrote nothing: %v", err)
	}
	var out bytes.Buffer
	if err := m.undo(&out); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("kubeconfig created by the merge is still there after undo: %v\n%s", err, out.String())
	}
	if want := `removed ` + path + ` (it held only context "demo")`; !strings.Contains(out.String(), want) {
		t.Errorf("undo output:\n%s\nwant %q", out.String(), want)
	}

	// In a kubeconfig of other contexts, the merged entries go, what they replaced comes
	// back, and a context added after the merge stays; the current context is restored.
	before := []byte("apiVersion: v1\nkind: Config\n" +
		"clusters:\n- name: demo\n  cluster: {server: https://old:6443}\n- name: mine\n  cluster: {server: https://192.0.2.9:6443}\n" +
		"users:\n- name: me\n  user: {token: t}\n" +
		"contexts:\n- name: mine\n  context: {cluster: mine, user: me}\n" +
		"current-context: mine\n")
	if err := os.WriteFile(path, before, 0o600); err != nil {
		t.Fatal(err)
	}
	if m, err = mergeKubeconfig(path, added); err != nil {
		t.Fatal(err)
	}
	cur := readKubeconfigFile(t, path)
	if cur.CurrentContext != "demo" || len(cur.Contexts) != 2 {
		t.Fatalf("merge: %+v", cur)
	}
	later := kubeconfig.NamedContext{Name: "later", Context: kubeconfig.Context{Cluster: "mine", User: "me"}}
	cur.Contexts = append(cur.Contexts, later)
	writeKubeconfigFile(t, path, cur)
	out.Reset()
	if err := m.undo(&out); err != nil {
		t.Fatal(err)
	}
	if want := `removed kubeconfig context "demo" from ` + path; !strings.Contains(out.String(), want) {
		t.Errorf("undo output:\n%s\nwant %q", out.String(), want)
	}
	got := readKubeconfigFile(t, path)
	want, err := kubeconfig.Parse(before)
	if err != nil {
		t.Fatal(err)
	}
	want.Contexts = append(want.Contexts, later)
	if !reflect.DeepEqual(got, want) {
		data, _ := os.ReadFile(path)
		t.Errorf("after undo:\n%s\nwant the file before the merge, with context later", data)
	}
	if fi, err := os.Stat(path); err != nil {
		t.Error(err)
	} else if fi.Mode().Perm() != 0o600 {
		t.Errorf("kubeconfig mode after undo: %v", fi.Mode().Perm())
	}
}

func TestDestroyRemovesKubeconfigEntries(t *testing.T) {
	dir := t.TempDir()
	kc := filepath.Join(dir, "kube", "config")
	prov := provisiontest.New()
	destroy := func() string {
		t.Helper()
		var out bytes.Buffer
		err := Destroy(t.Context(), prov, "demo", DestroyOptions{StateDir: filepath.Join(dir, "state"),
			ClientConfigPath: filepath.Join(dir, "pc"), KubeconfigPath: kc, Progress: &out})
		if err != nil {
			t.Fatalf("Destroy: %v\n%s", err, out.String())
		}
		return out.String()
	}
	// What Create merged for "demo", next to another cluster's entries and a
	// context of the user's own that shares the user admin@demo.
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
	d := readKubeconfigFile(t, kc)
	d.Contexts = append(d.Contexts, kubeconfig.NamedContext{Name: "mine", Context: kubeconfig.Context{Cluster: "other", User: "admin@demo"}})
	writeKubeconfigFile(t, kc, d)

	out := destroy()
	if !strings.Contains(out, `removed context "demo", cluster "demo" from the kubeconfig `+kc) ||
		!strings.Contains(out, "none is current now") {
		t.Errorf("destroy output:\n%s", out)
	}
	d = readKubeconfigFile(t, kc)
	names := func(key string) []string {
		switch key {
		case "contexts":
			return entryNames(d.Contexts, func(e kubeconfig.NamedContext) string { return e.Name })
		case "clusters":
			return entryNames(d.Clusters, func(e kubeconfig.NamedCluster) string { return e.Name })
		default:
			return entryNames(d.Users, func(e kubeconfig.NamedUser) string { return e.Name })
		}
	}
	for key, want := range map[string][]string{
		"contexts": {"admin@other", "mine"},
		"clusters": {"other"},
		"users":    {"admin@other", "admin@demo"}, // "mine" still refers to admin@demo
	} {
		if got := names(key); !slices.Equal(got, want) {
			t.Errorf("%s after destroy: %v, want %v", key, got, want)
		}
	}
	if d.CurrentContext != "" {
		t.Errorf("current-context after destroy: %v, want none", d.CurrentContext)
	}

	// Without the sharing context the user goes too; a second destroy changes nothing.
	d.Contexts = d.Contexts[:1] // admin@other
	writeKubeconfigFile(t, kc, d)
	if err := kubeconfig.Merge(kc, demo); err != nil {
		t.Fatal(err)
	}
	d = readKubeconfigFile(t, kc)
	d.CurrentContext = "admin@other"
	writeKubeconfigFile(t, kc, d)
	out = destroy()
	if !strings.Contains(out, `removed context "demo", cluster "demo", user "admin@demo"`) || strings.Contains(out, "none is current") {
		t.Errorf("destroy output:\n%s", out)
	}
	d = readKubeconfigFile(t, kc)
	if got := names("users"); !slices.Equal(got, []string{"admin@other"}) || d.CurrentContext != "admin@other" {
		t.Errorf("after the second destroy: users %v, current %v", got, d.CurrentContext)
	}
	before, err := os.ReadFile(kc)
	if err != nil {
		t.Fatal(err)
	}
	if out = destroy(); strings.Contains(out, "kubeconfig") {
		t.Errorf("destroy of a cluster already gone:\n%s", out)
	}
	if after, err := os.ReadFile(kc); err != nil || !bytes.Equal(after, before) {
		t.Error("a destroy with nothing to remove rewrote the kubeconfig")
	}
}

func entryNames[T any](list []T, name func(T) string) []string {
	var l []string
	for _, e := range list {
		l = append(l, name(e))
	}
	return l
}
