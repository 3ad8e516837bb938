package kubeconfig

import (
	"encoding/base64"
	"maps"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
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

// A kubeconfig of a user as kubectl and other tools write it: fields this package does not
// type must survive a merge.
const userConfig = `apiVersion: v1
kind: Config
preferences:
  colors: true
extensions:
- name: tool
  extension: {answer: 42}
clusters:
- name: prod
  cluster:
    server: https://prod.example.org
    certificate-authority-data: Y2E=
    proxy-url: socks5://localhost:1080
    extensions:
    - name: client.authentication.k8s.io/exec
      extension: {audience: prod}
users:
- name: cloud
  user:
    exec:
      apiVersion: client.authentication.k8s.io/v1
      command: cloud-auth
      args: [token, --cluster, prod]
      interactiveMode: Never
contexts:
- name: prod
  context: {cluster: prod, user: cloud, namespace: web, extensions: [{name: x, extension: y}]}
current-context: prod
`

func TestMergeKeepsUnknownFields(t *testing.T) {
	path := filepath.Join(t.TempDir(), "config")
	if err := os.WriteFile(path, []byte(userConfig), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := Merge(path, []byte(sample)); err != nil {
		t.Fatal(err)
	}
	out, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	// Compare as untyped documents: the user's entries are as they were, the new ones
	// appended, the new context current.
	var before, after map[string]any
	if err := yaml.Unmarshal([]byte(userConfig), &before); err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(out, &after); err != nil {
		t.Fatal(err)
	}
	var added map[string]any
	if err := yaml.Unmarshal([]byte(sample), &added); err != nil {
		t.Fatal(err)
	}
	want := maps.Clone(before)
	for _, key := range []string{"clusters", "users", "contexts"} {
		want[key] = append(slices.Clone(before[key].([]any)), added[key].([]any)...)
	}
	want["current-context"] = "admin@demo"
	if !reflect.DeepEqual(after, want) {
		t.Errorf("merged:\n%s", out)
	}
}

func TestNewMarshalParse(t *testing.T) {
	ca, cert, key := []byte("-----BEGIN CERTIFICATE-----\nQ0E=\n-----END CERTIFICATE-----\n"), []byte("crt"), []byte("key")
	c := New("demo", Cluster{Server: "https://10.5.0.2:6443", CertificateAuthorityData: ca}, "admin", User{ClientCertificateData: cert, ClientKeyData: key})
	data, err := c.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	// kubectl and kubelet read the *-data fields as base64 strings.
	var raw struct {
		Clusters []struct {
			Cluster map[string]string `yaml:"cluster"`
		} `yaml:"clusters"`
		Users []struct {
			User map[string]string `yaml:"user"`
		} `yaml:"users"`
		Contexts []struct {
			Name    string            `yaml:"name"`
			Context map[string]string `yaml:"context"`
		} `yaml:"contexts"`
		Current string `yaml:"current-context"`
	}
	if err := yaml.Unmarshal(data, &raw); err != nil {
		t.Fatal(err)
	}
	b64 := base64.StdEncoding.EncodeToString
	if raw.Clusters[0].Cluster["certificate-authority-data"] != b64(ca) || raw.Users[0].User["client-certificate-data"] != b64(cert) ||
		raw.Users[0].User["client-key-data"] != b64(key) || raw.Contexts[0].Name != "admin@demo" || raw.Current != "admin@demo" ||
		raw.Contexts[0].Context["cluster"] != "demo" || raw.Contexts[0].Context["user"] != "admin" {
		t.Fatalf("marshalled:\n%s", data)
	}
	back, err := Parse(data)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(back, c) {
		t.Errorf("parsed back %+v, want %+v", back, c)
	}
	if _, err := Parse([]byte("clusters: [{name: x, cluster: {certificate-authority-data: '%%%'}}]")); err == nil {
		t.Error("Parse accepted data that is not base64")
	}
}

func TestSelected(t *testing.T) {
	c, err := Parse([]byte(userConfig))
	if err != nil {
		t.Fatal(err)
	}
	add, err := Parse([]byte(sample))
	if err != nil {
		t.Fatal(err)
	}
	c.Clusters = append(c.Clusters, add.Clusters...)
	c.Users = append(c.Users, add.Users...)
	c.Contexts = append(c.Contexts, add.Contexts...)
	for _, tc := range []struct {
		current, server, token, err string
	}{
		{"prod", "https://prod.example.org", "", ""},
		{"admin@demo", "https://10.5.0.2:6443", "abc", ""},
		{"", "https://prod.example.org", "", ""}, // the first context
		{"gone", "", "", `current context "gone" not found`},
	} {
		c.CurrentContext = tc.current
		cl, u, err := c.Selected()
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("%q: err = %v, want %q", tc.current, err, tc.err)
			}
			continue
		}
		if err != nil || cl.Server != tc.server || u.Token != tc.token {
			t.Errorf("%q: %+v, %+v, %v", tc.current, cl, u, err)
		}
	}
	c.CurrentContext = "prod"
	c.Contexts[0].Context.User = "nobody"
	if _, _, err := c.Selected(); err == nil || !strings.Contains(err.Error(), `user "nobody"`) {
		t.Errorf("missing user: %v", err)
	}
	c.Contexts[0].Context.Cluster = "nowhere"
	if _, _, err := c.Selected(); err == nil || !strings.Contains(err.Error(), `cluster "nowhere"`) {
		t.Errorf("missing cluster: %v", err)
	}
	// Without contexts: the first cluster and user.
	c.Contexts, c.CurrentContext = nil, ""
	if cl, u, err := c.Selected(); err != nil || cl.Server != "https://prod.example.org" || u.Extra["exec"] == nil {
		t.Errorf("no context: %+v, %+v, %v", cl, u, err)
	}
	if _, _, err := (&Config{}).Selected(); err == nil {
		t.Error("an empty kubeconfig has a cluster")
	}
}

func TestRenameNeedsOneContext(t *testing.T) {
	two := strings.Replace(sample, "current-context:", "- name: second\n  context: {cluster: demo, user: admin}\ncurrent-context:", 1)
	if _, err := Rename([]byte(two), "x", ""); err == nil || !strings.Contains(err.Error(), "found 2") {
		t.Errorf("two contexts: %v", err)
	}
	if _, err := Rename([]byte("apiVersion: v1\nkind: Config\n"), "x", ""); err == nil || !strings.Contains(err.Error(), "found 0") {
		t.Errorf("no context: %v", err)
	}
}

// untyped parses a kubeconfig as a plain YAML document, to compare files field by field,
// the fields this package does not type included.
func untyped(t *testing.T, data []byte) map[string]any {
	t.Helper()
	var d map[string]any
	if err := yaml.Unmarshal(data, &d); err != nil {
		t.Fatal(err)
	}
	return d
}

func mustParse(t *testing.T, data string) *Config {
	t.Helper()
	c, err := Parse([]byte(data))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestReadFileWriteFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "kube", "config")
	if c, err := ReadFile(path); c != nil || err != nil {
		t.Fatalf("ReadFile of a missing file: %v, %v; want nil, nil", c, err)
	}
	// Relative file names stay relative (Load would make them absolute).
	withFiles := strings.Replace(userConfig, "    exec:\n", "    client-certificate: certs/me.crt\n    exec:\n", 1)
	if err := mustParse(t, withFiles).WriteFile(path); err != nil {
		t.Fatal(err)
	}
	if st, err := os.Stat(path); err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("written: %v, %v", st, err)
	}
	c, err := ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if c.Users[0].User.ClientCertificate != "certs/me.crt" {
		t.Errorf("client-certificate read back as %q", c.Users[0].User.ClientCertificate)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(untyped(t, data), untyped(t, []byte(withFiles))) {
		t.Errorf("written and read back:\n%s\nwant the fields of:\n%s", data, withFiles)
	}
	if err := os.WriteFile(path, []byte("clusters: {"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := ReadFile(path); err == nil || !strings.Contains(err.Error(), path) {
		t.Errorf("ReadFile of a broken file: %v, want an error naming the file", err)
	}
}

func TestUnmerge(t *testing.T) {
	// The user's kubeconfig holds an entry "demo" of each kind that the merge replaces.
	before := strings.Replace(userConfig, "current-context: prod\n",
		"- name: admin@demo\n  context: {cluster: demo, user: admin, namespace: old}\ncurrent-context: prod\n", 1)
	before = strings.Replace(before, "users:\n", "users:\n- name: admin\n  user: {token: old, username: kept}\n", 1)
	before = strings.Replace(before, "clusters:\n", "clusters:\n- name: demo\n  cluster: {server: https://old:6443, proxy-url: http://proxy:3128}\n", 1)
	path := filepath.Join(t.TempDir(), "config")
	if err := os.WriteFile(path, []byte(before), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := Merge(path, []byte(sample)); err != nil {
		t.Fatal(err)
	}
	c, err := ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if c.CurrentContext != "admin@demo" || c.Clusters[0].Cluster.Server != "https://10.5.0.2:6443" {
		t.Fatalf("merged: %+v", c)
	}
	c.Unmerge(mustParse(t, sample), mustParse(t, before))
	data, err := c.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(untyped(t, data), untyped(t, []byte(before))) {
		t.Errorf("unmerged:\n%s\nwant as before:\n%s", data, before)
	}

	// Entries added since stay; a context made current since stays current. Without a
	// file before, the merged entries just go.
	c = mustParse(t, sample)
	c.Contexts = append(c.Contexts, NamedContext{Name: "later", Context: Context{Cluster: "demo", User: "admin"}})
	c.CurrentContext = "later"
	c.Unmerge(mustParse(t, sample), nil)
	if len(c.Clusters) != 0 || len(c.Users) != 0 || len(c.Contexts) != 1 || c.Contexts[0].Name != "later" || c.CurrentContext != "later" {
		t.Errorf("unmerged from nothing: %+v", c)
	}
	c.CurrentContext = "admin@demo"
	c.Unmerge(mustParse(t, sample), nil)
	if c.CurrentContext != "" {
		t.Errorf("current context %q, want none", c.CurrentContext)
	}
}

func TestRemove(t *testing.T) {
	c := mustParse(t, userConfig)
	add := mustParse(t, sample)
	c.Clusters = append(c.Clusters, add.Clusters...)
	c.Users = append(c.Users, add.Users...)
	c.Contexts = append(c.Contexts, add.Contexts...)
	c.CurrentContext = "admin@demo"
	// A context of the user's own shares the user admin.
	c.Contexts = append(c.Contexts, NamedContext{Name: "mine", Context: Context{Cluster: "prod", User: "admin"}})

	removed := c.Remove("admin@demo", "demo", "admin")
	if want := []string{`context "admin@demo"`, `cluster "demo"`}; !slices.Equal(removed, want) {
		t.Errorf("removed %q, want %q", removed, want)
	}
	if c.CurrentContext != "" || len(c.Contexts) != 2 || len(c.Clusters) != 1 || len(c.Users) != 2 {
		t.Errorf("after Remove: %+v", c)
	}
	// Without the sharing context the user goes too; removing again removes nothing.
	c.Contexts = c.Contexts[:1]
	c.CurrentContext = "prod"
	if removed := c.Remove("admin@demo", "demo", "admin"); !slices.Equal(removed, []string{`user "admin"`}) || c.CurrentContext != "prod" {
		t.Errorf("removed %q, current %q", removed, c.CurrentContext)
	}
	if removed := c.Remove("admin@demo", "demo", "admin"); len(removed) != 0 {
		t.Errorf("removed %q from a kubeconfig without them", removed)
	}
	// What is left is the user's kubeconfig, unknown fields and all.
	data, err := c.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(untyped(t, data), untyped(t, []byte(userConfig))) {
		t.Errorf("left:\n%s\nwant:\n%s", data, userConfig)
	}
}
