package kubeconfig

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const sample = `apiVersion: v1
kind: Config
clusters:
- name: demo
  cluster: {server: "https://10.5.0.2:6443", certificate-authority-data: Y2E=}
users:
- name: admin
  user: {token: abc}
contexts:
- name: admin@demo
  context: {cluster: demo, user: admin}
current-context: admin@demo
`

func TestRenameAndMerge(t *testing.T) {
	renamed, err := Rename([]byte(sample), "demo", "https://127.0.0.1:40000")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(renamed), "server: https://127.0.0.1:40000") || !strings.Contains(string(renamed), "current-context: demo") {
		t.Fatalf("rename:\n%s", renamed)
	}
	path := filepath.Join(t.TempDir(), "kube", "config")
	other := strings.ReplaceAll(sample, "demo", "other")
	if err := Merge(path, []byte(other)); err != nil {
		t.Fatal(err)
	}
	if err := Merge(path, renamed); err != nil {
		t.Fatal(err)
	}
	if err := Merge(path, renamed); err != nil { // again: replaced, not duplicated
		t.Fatal(err)
	}
	out, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	s := string(out)
	if strings.Count(s, "name: demo") != 2 || !strings.Contains(s, "name: other") || !strings.Contains(s, "current-context: demo") {
		t.Errorf("merged:\n%s", s)
	}
	st, _ := os.Stat(path)
	if st.Mode().Perm() != 0o600 {
		t.Errorf("mode %v", st.Mode().Perm())
	}
}
