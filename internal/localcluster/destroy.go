package localcluster

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/plinthos/plinth/internal/provision"
)

// DestroyOptions say where Destroy finds what Create made besides the nodes.
type DestroyOptions struct {
	// StateDir is the cluster's state directory: its state files go, and its
	// plinthconfig names the CA by which the cluster's contexts are found.
	StateDir string
	// ClientConfigPath is the user's client config, where the cluster's context was
	// merged.
	ClientConfigPath string
	// KubeconfigPath is the kubeconfig where the cluster's admin context was merged; empty
	// means kubeconfig.DefaultPath().
	KubeconfigPath string
	// Progress receives a line per thing removed; nil discards them.
	Progress io.Writer
}

// Destroy removes the cluster name: its nodes, network and volumes (prov.Destroy), what
// Create merged into the kubeconfig (the context and cluster NAME and the user
// admin@NAME; the cluster and user stay while another context refers to them), the
// contexts of the client config that trust the cluster's CA (where one was current, none
// is afterwards), and the state files. A cluster already gone is no error.
func Destroy(ctx context.Context, prov provision.Provisioner, name string, opts DestroyOptions) error {
	out := progress(opts.Progress)
	if opts.StateDir == "" || opts.ClientConfigPath == "" {
		return errors.New("destroy a local cluster: the state directory and the client config path are required")
	}
	if err := prov.Destroy(ctx, name, out); err != nil {
		return err
	}
	path, err := kubeconfigPath(opts.KubeconfigPath)
	if err == nil {
		err = removeKubeconfigEntries(path, name, out)
	}
	if err != nil {
		return fmt.Errorf("remove the cluster's entries from the kubeconfig: %w", err)
	}
	if err := removeContexts(opts.ClientConfigPath, opts.StateDir, "", out); err != nil {
		return fmt.Errorf("remove the cluster's context from the client config: %w", err)
	}
	return removeStateFiles(opts.StateDir, out)
}
