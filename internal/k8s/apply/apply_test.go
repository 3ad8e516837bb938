package apply

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/plinthos/plinth/internal/k8s/kubeclient"
)

// fakeAPI answers discovery from a table and records the apply patches it is sent; a
// real API server is what the end-to-end tests apply the add-ons to.
type fakeAPI struct {
	mu        sync.Mutex
	discovery map[string]string // path -> APIResourceList JSON
	patches   []string          // "path content-type body"
	gets      []string
	fail      map[string]int // path prefix -> status of its patches
}

func (f *fakeAPI) Get(_ context.Context, path string, v any) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.gets = append(f.gets, path)
	d, ok := f.discovery[path]
	if !ok {
		return &kubeclient.APIError{Method: http.MethodGet, Path: path, StatusCode: http.StatusNotFound}
	}
	return json.Unmarshal([]byte(d), v)
}

func (f *fakeAPI) Patch(_ context.Context, path, contentType string, body []byte, _ any) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	for p, code := range f.fail {
		if strings.HasPrefix(path, p) {
			return &kubeclient.APIError{Method: http.MethodPatch, Path: path, StatusCode: code, Message: "refused"}
		}
	}
	f.patches = append(f.patches, path+" "+contentType+" "+string(body))
	return nil
}

func newFake() *fakeAPI {
	return &fakeAPI{discovery: map[string]string{
		"/api/v1": `{"resources":[{"name":"namespaces","kind":"Namespace","namespaced":false},
			{"name":"configmaps","kind":"ConfigMap","namespaced":true},
			{"name":"pods","kind":"Pod","namespaced":true},{"name":"pods/status","kind":"Pod","namespaced":true}]}`,
		"/apis/apps/v1": `{"resources":[{"name":"deployments","kind":"Deployment","namespaced":true}]}`,
	}}
}

const query = "?fieldManager=plinth&force=true"

func TestApplyManifest(t *testing.T) {
	f := newFake()
	manifest := `
apiVersion: v1
kind: Namespace
metadata:
  name: demo
---
# a comment only
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: demo}
spec: {replicas: 2}
---
{"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}}
---
apiVersion: v1
kind: List
items:
- apiVersion: v1
  kind: ConfigMap
  metadata: {name: a, namespace: demo}
  data: {k: "1"}
- apiVersion: v1
  kind: ConfigMap
  metadata: {name: b, namespace: demo}
`
	if err := New(f, "plinth").Apply(t.Context(), []byte(manifest)); err != nil {
		t.Fatal(err)
	}
	var paths []string
	for _, p := range f.patches {
		path, rest, _ := strings.Cut(p, " ")
		if ct, _, _ := strings.Cut(rest, " "); ct != "application/apply-patch+yaml" {
			t.Errorf("%s: content type %s", path, ct)
		}
		paths = append(paths, path)
	}
	want := []string{
		"/api/v1/namespaces/demo" + query,
		"/apis/apps/v1/namespaces/demo/deployments/web" + query,
		"/api/v1/namespaces/default/pods/p" + query, // no namespace: default
		"/api/v1/namespaces/demo/configmaps/a" + query,
		"/api/v1/namespaces/demo/configmaps/b" + query,
	}
	if !slices.Equal(paths, want) {
		t.Fatalf("patched\n%s\nwant\n%s", strings.Join(paths, "\n"), strings.Join(want, "\n"))
	}
	// The body is the object as JSON.
	_, body, _ := strings.Cut(f.patches[1], "application/apply-patch+yaml ")
	var obj map[string]any
	if err := json.Unmarshal([]byte(body), &obj); err != nil {
		t.Fatalf("body %s: %v", body, err)
	}
	if obj["spec"].(map[string]any)["replicas"] != float64(2) {
		t.Errorf("body %s", body)
	}
	// Discovery is asked once per group version.
	if !slices.Equal(f.gets, []string{"/api/v1", "/apis/apps/v1"}) {
		t.Errorf("discovery requests %v", f.gets)
	}
}

func TestApplyGoesOnPastFailures(t *testing.T) {
	f := newFake()
	f.fail = map[string]int{"/apis/apps/v1": http.StatusUnprocessableEntity}
	manifest := `
apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
---
apiVersion: example.com/v1
kind: Widget
metadata: {name: w}
---
apiVersion: v1
kind: Secret
metadata: {name: s}
---
apiVersion: v1
kind: Namespace
metadata: {name: n, namespace: x}
---
apiVersion: v1
kind: ConfigMap
metadata: {name: c}
`
	err := New(f, "plinth").Apply(t.Context(), []byte(manifest))
	if err == nil {
		t.Fatal("no error")
	}
	for _, want := range []string{
		"deployment/web: PATCH",
		"widget/w: the API serves no example.com/v1 (is its CustomResourceDefinition applied and established?)",
		"secret/s: the API serves no kind Secret in v1",
		"x/namespace/n: a Namespace is not namespaced; remove metadata.namespace",
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %q", err, want)
		}
	}
	if len(f.patches) != 1 || !strings.HasPrefix(f.patches[0], "/api/v1/namespaces/default/configmaps/c?") {
		t.Errorf("patches %v, want the ConfigMap's only", f.patches)
	}
}

func TestApplyLooksUpAgainAfterAMiss(t *testing.T) {
	f := newFake()
	a := New(f, "plinth")
	widget := []byte("apiVersion: example.com/v1\nkind: Widget\nmetadata: {name: w}\n")
	if err := a.Apply(t.Context(), widget); err == nil {
		t.Fatal("a kind the API does not serve was applied")
	}
	// The definition is served now (applied by an earlier object, say).
	f.mu.Lock()
	f.discovery["/apis/example.com/v1"] = `{"resources":[{"name":"widgets","kind":"Widget","namespaced":false}]}`
	f.mu.Unlock()
	if err := a.Apply(t.Context(), widget); err != nil {
		t.Fatal(err)
	}
	if want := "/apis/example.com/v1/widgets/w" + query; !strings.HasPrefix(f.patches[0], want+" ") {
		t.Errorf("patched %s, want %s", f.patches[0], want)
	}
}

func TestParseRefuses(t *testing.T) {
	for _, c := range []struct{ manifest, want string }{
		{"- a\n- b\n", "document 1: not an object"},
		{"kind: ConfigMap\nmetadata: {name: a}\n", "document 1: no apiVersion"},
		{"apiVersion: v1\nmetadata: {name: a}\n", "document 1: no kind"},
		{"apiVersion: v1\nkind: Pod\nmetadata: {generateName: a-}\n", "generateName cannot be applied"},
		{"apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\n---\napiVersion: v1\nkind: ConfigMap\n", "document 2: ConfigMap: no metadata.name"},
		{"apiVersion: v1\nkind: List\nitems:\n- apiVersion: v1\n  kind: ConfigMap\n", "document 1, item 1: ConfigMap: no metadata.name"},
		{"apiVersion: v1\nkind: List\nitems: {a: b}\n", "items is not a list"},
		{"a: [\n", "document 1:"},
	} {
		_, err := Parse([]byte(c.manifest))
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("Parse(%q) = %v, want an error with %q", c.manifest, err, c.want)
		}
	}
}

func TestFetch(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/m.yaml" {
			http.NotFound(w, r)
			return
		}
		_, _ = w.Write([]byte("apiVersion: v1\n"))
	}))
	defer srv.Close()
	data, err := Fetch(t.Context(), srv.URL+"/m.yaml")
	if err != nil || string(data) != "apiVersion: v1\n" {
		t.Fatalf("Fetch = %q, %v", data, err)
	}
	if _, err := Fetch(t.Context(), srv.URL+"/gone.yaml"); err == nil || !strings.Contains(err.Error(), "404") {
		t.Fatalf("Fetch of a missing file: %v", err)
	}
}
