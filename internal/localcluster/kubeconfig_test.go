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
	"github.com/plinthos/plinth/internal/yamlx"
)

func TestKubeconfigMergeUndo(t *testing.T) {
	added := fakeKubeconfig("demo", "https://127.0.0.1:41002")
	rename := func(data []byte) []byte { // as Create names the context
		d, err := parseKubeconfig(data)
		if err != nil {
			t.Fatal(err)
		}
		d["contexts"].([]any)[0].(map[string]any)["name"] = "demo"
		d["current-context"] = "demo"
		return mustMarshalKubeconfig(t, d)
	}
	added = rename(added)

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
	cur, err := readKubeconfig(path)
	if err != nil {
		t.Fatal(err)
	}
	if cur["current-context"] != "demo" || len(cur["contexts"].([]any)) != 2 {
		t.Fatalf("merge: %v", cur)
	}
	later := map[string]any{"name": "later", "context": map[string]any{"cluster": "mine", "user": "me"}}
	cur["contexts"] = append(cur["contexts"].([]any), later)
	if err := os.WriteFile(path, mustMarshalKubeconfig(t, cur), 0o600); err != nil {
		t.Fatal(err)
	}
	out.Reset()
	if err := m.undo(&out); err != nil {
		t.Fatal(err)
	}
	got, err := readKubeconfig(path)
	if err != nil {
		t.Fatal(err)
	}
	want, _ := parseKubeconfig(before)
	want["contexts"] = append(want["contexts"].([]any), later)
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

func mustMarshalKubeconfig(t *testing.T, d map[string]any) []byte {
	t.Helper()
	data, err := yamlx.Marshal(d)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

func TestDestroyRemovesKubeconfigEntries(t *testing.T) {
	dir := t.TempDir()
	kc := filepath.Join(dir, "kube", "config")
	prov := newFakeProvisioner()
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
	if err := kubeconfig.Merge(kc, fakeKubeconfig("other", "https://192.0.2.1:6443")); err != nil {
		t.Fatal(err)
	}
	demo, err := kubeconfig.Rename(fakeKubeconfig("demo", "https://127.0.0.1:6443"), "demo", "")
	if err != nil {
		t.Fatal(err)
	}
	if err := kubeconfig.Merge(kc, demo); err != nil {
		t.Fatal(err)
	}
	d, err := readKubeconfig(kc)
	if err != nil {
		t.Fatal(err)
	}
	d["contexts"] = append(asAnyList(d["contexts"]), map[string]any{"name": "mine",
		"context": map[string]any{"cluster": "other", "user": "admin@demo"}})
	data, err := yamlx.Marshal(d)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(kc, data, 0o600); err != nil {
		t.Fatal(err)
	}

	out := destroy()
	if !strings.Contains(out, `removed context "demo", cluster "demo" from the kubeconfig `+kc) ||
		!strings.Contains(out, "none is current now") {
		t.Errorf("destroy output:\n%s", out)
	}
	d, err = readKubeconfig(kc)
	if err != nil {
		t.Fatal(err)
	}
	names := func(key string) []string {
		var l []string
		for _, e := range asAnyList(d[key]) {
			n, _ := entryName(e)
			l = append(l, n)
		}
		return l
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
	if cur, ok := d["current-context"]; ok {
		t.Errorf("current-context after destroy: %v, want none", cur)
	}

	// Without the sharing context the user goes too; a second destroy changes nothing.
	d["contexts"] = []any{namedEntry(d["contexts"], "admin@other")}
	d["current-context"] = "admin@other"
	data, err = yamlx.Marshal(d)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(kc, data, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := kubeconfig.Merge(kc, demo); err != nil {
		t.Fatal(err)
	}
	d, _ = readKubeconfig(kc)
	d["current-context"] = "admin@other"
	data, _ = yamlx.Marshal(d)
	if err := os.WriteFile(kc, data, 0o600); err != nil {
		t.Fatal(err)
	}
	out = destroy()
	if !strings.Contains(out, `removed context "demo", cluster "demo", user "admin@demo"`) || strings.Contains(out, "none is current") {
		t.Errorf("destroy output:\n%s", out)
	}
	d, _ = readKubeconfig(kc)
	if got := names("users"); !slices.Equal(got, []string{"admin@other"}) || d["current-context"] != "admin@other" {
		t.Errorf("after the second destroy: users %v, current %v", got, d["current-context"])
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
