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
