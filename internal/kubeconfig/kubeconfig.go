// Package kubeconfig merges kubeconfig files the way users expect from plinthctl
// kubeconfig and cluster create: the cluster, user and context of a new kubeconfig replace
// the entries of the same names, and its context becomes the current one.
package kubeconfig

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"go.yaml.in/yaml/v3"

	"github.com/plinthos/plinth/internal/atomicfile"
	"github.com/plinthos/plinth/internal/yamlx"
)

// DefaultPath is the first entry of $KUBECONFIG, or ~/.kube/config.
func DefaultPath() (string, error) {
	if env := os.Getenv("KUBECONFIG"); env != "" {
		return filepath.SplitList(env)[0], nil
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return "", err
	}
	return filepath.Join(home, ".kube", "config"), nil
}

type doc = map[string]any

func parse(data []byte) (doc, error) {
	d := doc{}
	if err := yaml.Unmarshal(data, &d); err != nil {
		return nil, fmt.Errorf("parse kubeconfig: %w", err)
	}
	if d == nil {
		d = doc{}
	}
	return d, nil
}

// Rename renames the (single) context of a kubeconfig and points its server at server when
// server is not empty.
func Rename(data []byte, context, server string) ([]byte, error) {
	d, err := parse(data)
	if err != nil {
		return nil, err
	}
	ctxs, _ := d["contexts"].([]any)
	if len(ctxs) != 1 {
		return nil, fmt.Errorf("expected one context, found %d", len(ctxs))
	}
	ctxs[0].(doc)["name"] = context
	d["current-context"] = context
	if server != "" {
		for _, c := range asList(d["clusters"]) {
			if cl, ok := c.(doc)["cluster"].(doc); ok {
				cl["server"] = server
			}
		}
	}
	return yamlx.Marshal(d)
}

func asList(v any) []any {
	l, _ := v.([]any)
	return l
}

// upsert replaces the entry of the same name in list, or appends it.
func upsert(list []any, entry any) []any {
	name := entry.(doc)["name"]
	for i, e := range list {
		if m, ok := e.(doc); ok && m["name"] == name {
			list[i] = entry
			return list
		}
	}
	return append(list, entry)
}

// Merge merges the kubeconfig data into the file at path (created if missing), atomically,
// and makes data's current context current.
func Merge(path string, data []byte) error {
	add, err := parse(data)
	if err != nil {
		return err
	}
	existing := doc{"apiVersion": "v1", "kind": "Config"}
	raw, err := os.ReadFile(path)
	switch {
	case err == nil:
		if existing, err = parse(raw); err != nil {
			return fmt.Errorf("%s: %w", path, err)
		}
	case !errors.Is(err, fs.ErrNotExist):
		return err
	}
	for _, key := range []string{"clusters", "users", "contexts"} {
		list := asList(existing[key])
		for _, e := range asList(add[key]) {
			list = upsert(list, e)
		}
		existing[key] = list
	}
	existing["current-context"] = add["current-context"]
	out, err := yamlx.Marshal(existing)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return err
	}
	return atomicfile.Write(path, out, 0o600)
}
