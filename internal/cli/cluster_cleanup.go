package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"slices"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/plinthos/plinth/internal/atomicfile"
	"github.com/plinthos/plinth/internal/kubeconfig"
	"github.com/plinthos/plinth/internal/provision"
	"github.com/plinthos/plinth/internal/provision/docker"
	"github.com/plinthos/plinth/internal/yamlx"
)

// clusterCleanupTimeout bounds the removal of a cluster whose create failed; the removal
// runs on a context of its own, so it also runs after Ctrl-C.
const clusterCleanupTimeout = 2 * time.Minute

// createdCluster is what cluster create made once the provisioner had started the nodes,
// for removeFailedCluster.
type createdCluster struct {
	name     string
	stateDir string
	cluster  *provision.Cluster
	// contextMerged is set once the cluster's context is in the client config, with the
	// context that was current before.
	contextMerged   bool
	previousContext string
	// kubeconfig is set once the admin kubeconfig is merged into the user's.
	kubeconfig *kubeconfigMerge
}

// failedClusterCreate ends a cluster create that failed with err after the provisioner
// started the nodes: it prints each node's last log lines, then removes everything the
// create made unless --retain, and returns err with what became of the cluster.
func failedClusterCreate(ctx context.Context, out io.Writer, g *globalFlags, f *clusterCreateFlags, prov provision.Provisioner, made *createdCluster, err error) error {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), clusterCleanupTimeout)
	defer cancel()
	printNodeLogs(ctx, out, prov, made.cluster)
	destroy := "plinthctl cluster destroy --name " + f.name
	if f.stateDir != "" {
		destroy += " --state-dir " + f.stateDir
	}
	if f.retain {
		return fmt.Errorf("%w\nthe nodes' last log lines are above; the cluster is kept (--retain): inspect it with `plinthctl cluster show --name %s`, remove it with `%s`",
			err, f.name, destroy)
	}
	fmt.Fprintf(out, "\nremoving cluster %q (Ctrl-C again stops the removal; finish it then with `%s`)\n", f.name, destroy)
	if rerr := made.remove(ctx, out, g, prov); rerr != nil {
		return fmt.Errorf("%w\nthe nodes' last log lines are above; removing the cluster failed: %v\nfinish the removal with `%s`", err, rerr, destroy)
	}
	return fmt.Errorf("%w\nthe nodes' last log lines are above; the cluster is removed (create it with --retain to keep a failed cluster for inspection)", err)
}

// printNodeLogs prints the last log lines of every node of the cluster, and of its load
// balancer.
func printNodeLogs(ctx context.Context, out io.Writer, prov provision.Provisioner, c *provision.Cluster) {
	nodes := slices.Clone(c.Nodes)
	if c.LoadBalancer != nil {
		nodes = append(nodes, *c.LoadBalancer)
	}
	for _, n := range nodes {
		logs, err := prov.Logs(ctx, n.Name, docker.LogLines)
		logs = strings.TrimRight(logs, "\n")
		switch {
		case err != nil:
			fmt.Fprintf(out, "\nthe log of %s cannot be read: %v\n", n.Name, err)
		case logs == "":
			fmt.Fprintf(out, "\n%s has logged nothing\n", n.Name)
		default:
			fmt.Fprintf(out, "\nlast %d log lines of %s:\n%s\n", docker.LogLines, n.Name, logs)
		}
	}
}

// remove removes what the create made, as cluster destroy does: the containers, volumes
// and network, the contexts merged into the kubeconfig and the client config (the context
// current before is current again), and the state files. The state files stay when the
// client config cannot be cleaned, so that cluster destroy still finds the context.
func (c *createdCluster) remove(ctx context.Context, out io.Writer, g *globalFlags, prov provision.Provisioner) error {
	var errs []error
	if err := prov.Destroy(ctx, c.name, out); err != nil {
		errs = append(errs, fmt.Errorf("remove the nodes: %w", err))
	}
	if c.kubeconfig != nil {
		if err := c.kubeconfig.undo(out); err != nil {
			errs = append(errs, fmt.Errorf("remove the kubeconfig context from %s: %w", c.kubeconfig.path, err))
		}
	}
	if c.contextMerged {
		if err := removeClusterContexts(g, c.stateDir, c.previousContext, out); err != nil {
			return errors.Join(append(errs, fmt.Errorf("remove the context from the client config: %w", err))...)
		}
	}
	if err := removeStateFiles(c.stateDir, out); err != nil {
		errs = append(errs, fmt.Errorf("remove the state files: %w", err))
	}
	return errors.Join(errs...)
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

// removeClusterKubeconfig takes out of the user's kubeconfig what cluster create merged for
// the cluster name: the context name, the cluster name and the user admin@name (the
// names the admin kubeconfig carries). The cluster and the user stay while another context
// still refers to them; every other entry stays. If the removed context was current, none
// is current afterwards. A missing file or missing entries are no error.
func removeClusterKubeconfig(name string, out io.Writer) error {
	path, err := kubeconfig.DefaultPath()
	if err != nil {
		return fmt.Errorf("find the kubeconfig: %w", err)
	}
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
