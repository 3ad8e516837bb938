// Package apply applies Kubernetes manifests, of any kind, with server-side apply: what
// `kubectl apply --server-side --force-conflicts` does, without kubectl. machined applies
// the cluster's add-ons and the manifests of cluster.extraManifests with it.
//
// A manifest is a stream of YAML documents; a document may also be a List whose items are
// objects. Each object is sent, in the stream's order, as an apply patch to its resource,
// which the API's discovery names (so custom resources work once their definition is
// served). A namespaced object without a namespace goes to "default", as kubectl's default
// context puts it.
package apply

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/plinthos/plinth/internal/k8s/kubeclient"
)

// API is what apply needs of a client of the Kubernetes API (kubeclient.Client).
type API interface {
	Get(ctx context.Context, path string, v any) error
	Patch(ctx context.Context, path, contentType string, body []byte, v any) error
}

// Object is one object of a manifest, as read.
type Object struct {
	APIVersion, Kind, Namespace, Name string
	// Body is the object as JSON, the apply patch.
	Body []byte
}

// String names the object as kubectl does: kind/name, with its namespace when it has one.
func (o Object) String() string {
	s := strings.ToLower(o.Kind) + "/" + o.Name
	if o.Namespace != "" {
		s = o.Namespace + "/" + s
	}
	return s
}

// Parse reads the objects of a manifest: YAML documents (JSON is YAML too), a List's items
// taken one by one, empty documents skipped. Each object needs apiVersion, kind and
// metadata.name.
func Parse(manifest []byte) ([]Object, error) {
	dec := yaml.NewDecoder(bytes.NewReader(manifest))
	var objs []Object
	for n := 1; ; n++ {
		var doc any
		err := dec.Decode(&doc)
		if errors.Is(err, io.EOF) {
			return objs, nil
		}
		if err != nil {
			return nil, fmt.Errorf("document %d: %w", n, err)
		}
		if doc == nil {
			continue
		}
		m, ok := doc.(map[string]any)
		if !ok {
			return nil, fmt.Errorf("document %d: not an object (a YAML mapping)", n)
		}
		kind, _ := m["kind"].(string)
		if !strings.HasSuffix(kind, "List") || m["items"] == nil {
			o, err := object(m)
			if err != nil {
				return nil, fmt.Errorf("document %d: %w", n, err)
			}
			objs = append(objs, o)
			continue
		}
		items, ok := m["items"].([]any)
		if !ok {
			return nil, fmt.Errorf("document %d: %s: items is not a list", n, kind)
		}
		for i, it := range items {
			o, err := object(it)
			if err != nil {
				return nil, fmt.Errorf("document %d, item %d: %w", n, i+1, err)
			}
			objs = append(objs, o)
		}
	}
}

// object checks one decoded object and encodes it as JSON.
func object(v any) (Object, error) {
	m, ok := v.(map[string]any)
	if !ok {
		return Object{}, fmt.Errorf("not an object (a YAML mapping)")
	}
	var o Object
	o.APIVersion, _ = m["apiVersion"].(string)
	o.Kind, _ = m["kind"].(string)
	meta, _ := m["metadata"].(map[string]any)
	o.Name, _ = meta["name"].(string)
	o.Namespace, _ = meta["namespace"].(string)
	switch {
	case o.APIVersion == "":
		return o, fmt.Errorf("no apiVersion")
	case o.Kind == "":
		return o, fmt.Errorf("no kind")
	case o.Name == "":
		if _, gen := meta["generateName"]; gen {
			return o, fmt.Errorf("%s: generateName cannot be applied (apply needs metadata.name)", o.Kind)
		}
		return o, fmt.Errorf("%s: no metadata.name", o.Kind)
	}
	body, err := json.Marshal(m)
	if err != nil {
		return o, fmt.Errorf("%s: %w", o, err)
	}
	o.Body = body
	return o, nil
}

// resource is one entry of the API's discovery.
type resource struct {
	Name       string `json:"name"`
	Kind       string `json:"kind"`
	Namespaced bool   `json:"namespaced"`
}

// Applier applies objects through an API as one field manager; it remembers the
// resources of each group version it looked up.
type Applier struct {
	api     API
	manager string
	known   map[string][]resource // by group version
}

// New returns an Applier that applies as fieldManager, taking the objects' fields over
// from other managers (force).
func New(api API, fieldManager string) *Applier {
	return &Applier{api: api, manager: fieldManager, known: map[string][]resource{}}
}

// Apply applies every object of manifest, in order. It goes on past an object that fails
// and returns the failures together (nil if none), as kubectl does.
func (a *Applier) Apply(ctx context.Context, manifest []byte) error {
	objs, err := Parse(manifest)
	if err != nil {
		return err
	}
	var errs []error
	for _, o := range objs {
		if err := a.ApplyObject(ctx, o); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// ApplyObject applies one object.
func (a *Applier) ApplyObject(ctx context.Context, o Object) error {
	r, err := a.resourceOf(ctx, o.APIVersion, o.Kind)
	if err != nil {
		return fmt.Errorf("%s: %w", o, err)
	}
	path := "/apis/" + o.APIVersion
	if !strings.Contains(o.APIVersion, "/") {
		path = "/api/" + o.APIVersion // the core group
	}
	if r.Namespaced {
		ns := o.Namespace
		if ns == "" {
			ns = "default"
		}
		path += "/namespaces/" + url.PathEscape(ns)
	} else if o.Namespace != "" {
		return fmt.Errorf("%s: a %s is not namespaced; remove metadata.namespace", o, o.Kind)
	}
	path += "/" + r.Name + "/" + url.PathEscape(o.Name) + "?" + url.Values{"fieldManager": {a.manager}, "force": {"true"}}.Encode()
	if err := a.api.Patch(ctx, path, "application/apply-patch+yaml", o.Body, nil); err != nil {
		return fmt.Errorf("%s: %w", o, err)
	}
	return nil
}

// resourceOf finds the resource of kind in apiVersion through discovery. A group version
// or kind not found is looked up again at the next call (a definition just applied may
// be served a moment later).
func (a *Applier) resourceOf(ctx context.Context, apiVersion, kind string) (resource, error) {
	find := func() (resource, bool) {
		for _, r := range a.known[apiVersion] {
			// Subresources (pods/status) share their parent's kind.
			if r.Kind == kind && !strings.Contains(r.Name, "/") {
				return r, true
			}
		}
		return resource{}, false
	}
	if r, ok := find(); ok {
		return r, nil
	}
	path := "/apis/" + apiVersion
	if !strings.Contains(apiVersion, "/") {
		path = "/api/" + apiVersion
	}
	var list struct {
		Resources []resource `json:"resources"`
	}
	if err := a.api.Get(ctx, path, &list); err != nil {
		if kubeclient.IsNotFound(err) {
			return resource{}, fmt.Errorf("the API serves no %s (is its CustomResourceDefinition applied and established?)", apiVersion)
		}
		return resource{}, fmt.Errorf("discover %s: %w", apiVersion, err)
	}
	a.known[apiVersion] = list.Resources
	if r, ok := find(); ok {
		return r, nil
	}
	return resource{}, fmt.Errorf("the API serves no kind %s in %s", kind, apiVersion)
}

// maxManifest bounds a manifest fetched from a URL.
const maxManifest = 16 << 20

// Fetch gets a manifest from an http or https URL, in at most a minute.
func Fetch(ctx context.Context, rawURL string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, rawURL, nil)
	if err != nil {
		return nil, fmt.Errorf("fetch %s: %w", rawURL, err)
	}
	req.Header.Set("User-Agent", "plinth")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, fmt.Errorf("fetch %s: %w", rawURL, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("fetch %s: %s", rawURL, resp.Status)
	}
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxManifest+1))
	if err != nil {
		return nil, fmt.Errorf("fetch %s: %w", rawURL, err)
	}
	if len(data) > maxManifest {
		return nil, fmt.Errorf("fetch %s: larger than %d MiB", rawURL, maxManifest>>20)
	}
	return data, nil
}
