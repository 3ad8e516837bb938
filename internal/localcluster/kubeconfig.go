package localcluster

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/plinthos/plinth/internal/atomicfile"
	"github.com/plinthos/plinth/internal/kubeconfig"
	"github.com/plinthos/plinth/internal/yamlx"
)

// kubeconfigPath is path, or kubeconfig.DefaultPath() when path is empty.
func kubeconfigPath(path string) (string, error) {
	if path != "" {
		return path, nil
	}
	path, err := kubeconfig.DefaultPath()
	if err != nil {
		return "", fmt.Errorf("find the kubeconfig: %w", err)
	}
	return path, nil
}

// kubeconfigMerge is the merge of a new cluster's admin kubeconfig into the user's, which
// a failed cluster create undoes.
type kubeconfigMerge struct {
	path   string
	added  map[string]any // the merged kubeconfig
	before map[string]any // the file before the merge, nil when there was none
}

// The lists of named entries of a kubeconfig, which kubeconfig.Merge merges by name.
var kubeconfigLists = []string{"clusters", "users", "contexts"}

// mergeKubeconfig merges data into the kubeconfig at path with kubeconfig.Merge and
// returns how to undo it.
func mergeKubeconfig(path string, data []byte) (*kubeconfigMerge, error) {
	before, err := readKubeconfig(path)
	if err != nil {
		return nil, err
	}
	added, err := parseKubeconfig(data)
	if err != nil {
		return nil, err
	}
	if err := kubeconfig.Merge(path, data); err != nil {
		return nil, err
	}
	return &kubeconfigMerge{path: path, added: added, before: before}, nil
}

// undo takes out of the file the clusters, users and contexts the merge added, puts back
// the entries of the same names that it replaced, and makes the context current again that
// was current before, if the merged one still is. Everything else in the file stays as it
// is now. A file that the merge created and that holds nothing else is removed.
func (m *kubeconfigMerge) undo(out io.Writer) error {
	cur, err := readKubeconfig(m.path)
	if err != nil || cur == nil {
		return err
	}
	empty := true
	for _, key := range kubeconfigLists {
		kept := []any{}
		for _, e := range asAnyList(cur[key]) {
			name, ok := entryName(e)
			if !ok || namedEntry(m.added[key], name) == nil {
				kept = append(kept, e)
			} else if old := namedEntry(m.before[key], name); old != nil {
				kept = append(kept, old)
			}
		}
		cur[key] = kept
		empty = empty && len(kept) == 0
	}
	added, _ := m.added["current-context"].(string)
	if current, _ := cur["current-context"].(string); current == added {
		if previous, ok := m.before["current-context"]; ok {
			cur["current-context"] = previous
		} else {
			delete(cur, "current-context")
		}
	}
	if m.before == nil && empty {
		if err := os.Remove(m.path); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
		fmt.Fprintf(out, "removed %s (it held only context %q)\n", m.path, added)
		return nil
	}
	data, err := yamlx.Marshal(cur)
	if err != nil {
		return err
	}
	if err := atomicfile.Write(m.path, data, 0o600); err != nil {
		return err
	}
	fmt.Fprintf(out, "removed kubeconfig context %q from %s\n", added, m.path)
	return nil
}

// readKubeconfig parses the kubeconfig at path; a file that does not exist is nil.
func readKubeconfig(path string) (map[string]any, error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	d, err := parseKubeconfig(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return d, nil
}

func parseKubeconfig(data []byte) (map[string]any, error) {
	d := map[string]any{}
	if err := yaml.Unmarshal(data, &d); err != nil {
		return nil, fmt.Errorf("parse kubeconfig: %w", err)
	}
	if d == nil {
		d = map[string]any{}
	}
	return d, nil
}

func asAnyList(v any) []any {
	l, _ := v.([]any)
	return l
}

// entryName is the name of a kubeconfig list entry.
func entryName(e any) (string, bool) {
	m, ok := e.(map[string]any)
	if !ok {
		return "", false
	}
	name, ok := m["name"].(string)
	return name, ok
}

// namedEntry returns the entry of list named name, or nil.
func namedEntry(list any, name string) any {
	for _, e := range asAnyList(list) {
		if n, ok := entryName(e); ok && n == name {
			return e
		}
	}
	return nil
}

// removeKubeconfigEntries takes out of the kubeconfig at path what Create merged for
// the cluster name: the context name, the cluster name and the user admin@name (the
// names the admin kubeconfig carries). The cluster and the user stay while another context
// still refers to them; every other entry stays. If the removed context was current, none
// is current afterwards. A missing file or missing entries are no error.
func removeKubeconfigEntries(path, name string, out io.Writer) error {
	cur, err := readKubeconfig(path)
	if err != nil || cur == nil {
		return err
	}
	var removed []string
	drop := func(key, entry string, keep func(name string) bool) {
		kept := []any{}
		for _, e := range asAnyList(cur[key]) {
			if n, ok := entryName(e); ok && n == entry && !keep(n) {
				removed = append(removed, fmt.Sprintf("%s %q", strings.TrimSuffix(key, "s"), n))
				continue
			}
			kept = append(kept, e)
		}
		cur[key] = kept
	}
	never := func(string) bool { return false }
	drop("contexts", name, never)
	// referenced reports whether a remaining context refers to the entry n by field.
	referenced := func(field string) func(string) bool {
		return func(n string) bool {
			for _, e := range asAnyList(cur["contexts"]) {
				m, _ := e.(map[string]any)
				c, _ := m["context"].(map[string]any)
				if ref, _ := c[field].(string); ref == n {
					return true
				}
			}
			return false
		}
	}
	drop("clusters", name, referenced("cluster"))
	drop("users", "admin@"+name, referenced("user"))
	if len(removed) == 0 {
		return nil
	}
	wasCurrent := false
	if current, _ := cur["current-context"].(string); current == name {
		delete(cur, "current-context")
		wasCurrent = true
	}
	data, err := yamlx.Marshal(cur)
	if err != nil {
		return err
	}
	if err := atomicfile.Write(path, data, 0o600); err != nil {
		return err
	}
	fmt.Fprintf(out, "removed %s from the kubeconfig %s\n", strings.Join(removed, ", "), path)
	if wasCurrent {
		fmt.Fprintln(out, "it held the current context: none is current now (pick one with `kubectl config use-context NAME`)")
	}
	return nil
}
