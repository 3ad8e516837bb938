package localcluster

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strings"

	"github.com/plinthos/plinth/internal/kubeconfig"
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
	added  *kubeconfig.Config // the merged kubeconfig
	before *kubeconfig.Config // the file before the merge, nil when there was none
}

// mergeKubeconfig merges data into the kubeconfig at path with kubeconfig.Merge and
// returns how to undo it.
func mergeKubeconfig(path string, data []byte) (*kubeconfigMerge, error) {
	before, err := kubeconfig.ReadFile(path)
	if err != nil {
		return nil, err
	}
	added, err := kubeconfig.Parse(data)
	if err != nil {
		return nil, err
	}
	if err := kubeconfig.Merge(path, data); err != nil {
		return nil, err
	}
	return &kubeconfigMerge{path: path, added: added, before: before}, nil
}

// undo takes the merge back with kubeconfig's Unmerge: everything else in the file stays
// as it is now. A file that the merge created and that holds nothing else is removed.
func (m *kubeconfigMerge) undo(out io.Writer) error {
	cur, err := kubeconfig.ReadFile(m.path)
	if err != nil || cur == nil {
		return err
	}
	cur.Unmerge(m.added, m.before)
	if m.before == nil && len(cur.Clusters) == 0 && len(cur.Users) == 0 && len(cur.Contexts) == 0 {
		if err := os.Remove(m.path); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
		fmt.Fprintf(out, "removed %s (it held only context %q)\n", m.path, m.added.CurrentContext)
		return nil
	}
	if err := cur.WriteFile(m.path); err != nil {
		return err
	}
	fmt.Fprintf(out, "removed kubeconfig context %q from %s\n", m.added.CurrentContext, m.path)
	return nil
}

// removeKubeconfigEntries takes out of the kubeconfig at path what Create merged for
// the cluster name: the context name, the cluster name and the user admin@name (the
// names the admin kubeconfig carries), as kubeconfig's Remove does. A missing file or
// missing entries are no error, and leave the file as it is.
func removeKubeconfigEntries(path, name string, out io.Writer) error {
	cur, err := kubeconfig.ReadFile(path)
	if err != nil || cur == nil {
		return err
	}
	wasCurrent := cur.CurrentContext == name
	removed := cur.Remove(name, name, "admin@"+name)
	if len(removed) == 0 {
		return nil
	}
	if err := cur.WriteFile(path); err != nil {
		return err
	}
	fmt.Fprintf(out, "removed %s from the kubeconfig %s\n", strings.Join(removed, ", "), path)
	if wasCurrent {
		fmt.Fprintln(out, "it held the current context: none is current now (pick one with `kubectl config use-context NAME`)")
	}
	return nil
}
