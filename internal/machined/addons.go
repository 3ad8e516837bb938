package machined

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/plinthos/plinth/internal/atomicfile"
	"github.com/plinthos/plinth/internal/k8s/addons"
	"github.com/plinthos/plinth/internal/k8s/csrapprove"
	"github.com/plinthos/plinth/internal/k8s/paths"
	"github.com/plinthos/plinth/internal/k8s/render"
	"github.com/plinthos/plinth/internal/resource"
	"github.com/plinthos/plinth/internal/resources"
	"github.com/plinthos/plinth/pkg/config"
)

// kubectl runs the node's kubectl with the admin kubeconfig and returns its output.
func kubectl(ctx context.Context, stdin []byte, args ...string) ([]byte, error) {
	return kubectlWith(ctx, paths.PKIFile(paths.AdminKubeconfig), stdin, args...)
}

// runAddons is the control plane's cluster keeper: once the API answers it applies the
// cluster's manifests (server-side apply, so it can run again), puts the role labels on
// this node, and keeps approving kubelet serving certificate requests of real nodes.
func (n *node) runAddons(ctx context.Context, logs io.Writer) error {
	applied := false
	for {
		if err := n.addonsOnce(ctx, logs, &applied); err != nil {
			fmt.Fprintf(logs, "%v; retrying\n", err)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(10 * time.Second):
		}
	}
}

func (n *node) addonsOnce(ctx context.Context, logs io.Writer, applied *bool) error {
	if _, err := kubectl(ctx, nil, "get", "--raw", "/readyz"); err != nil {
		return fmt.Errorf("the API server is not ready yet: %w", err)
	}
	cfg, _ := n.cfg.Current()
	if !*applied {
		manifests, err := addons.Manifests(cfg)
		if err != nil {
			return err
		}
		names := make([]string, 0, len(manifests))
		for name := range manifests {
			names = append(names, name)
		}
		slices.Sort(names)
		for _, name := range names {
			if _, err := kubectl(ctx, manifests[name], "apply", "--server-side", "--force-conflicts", "--field-manager", "plinth", "-f", "-"); err != nil {
				return fmt.Errorf("apply %s: %w", name, err)
			}
			fmt.Fprintf(logs, "applied %s\n", name)
		}
		for _, u := range addons.ExtraManifestURLs(cfg) {
			if _, err := kubectl(ctx, nil, "apply", "--server-side", "--force-conflicts", "--field-manager", "plinth", "-f", u); err != nil {
				return fmt.Errorf("apply %s: %w", u, err)
			}
			fmt.Fprintf(logs, "applied %s\n", u)
		}
		*applied = true
	}
	if err := n.labelSelf(ctx, cfg); err != nil {
		fmt.Fprintf(logs, "label node: %v\n", err)
	}
	return approveServingCSRs(ctx, cfg, n.nodeName(), logs)
}

// labelSelf puts the labels kubelet may not set itself (the control-plane role) on this node.
func (n *node) labelSelf(ctx context.Context, cfg *config.MachineConfig) error {
	labels := render.APINodeLabels(cfg, true)
	if len(labels) == 0 {
		return nil
	}
	// The name kubelet registered the node under (the short host name).
	args := []string{"label", "node", n.nodeName(), "--overwrite"}
	for k, v := range labels {
		args = append(args, k+"="+v)
	}
	_, err := kubectl(ctx, nil, args...)
	return err
}

// approveServingCSRs approves the pending kubelet serving certificate requests in which a
// node asks for its own names and addresses, and denies the other ones (see csrapprove
// for the checks and their residual risk).
func approveServingCSRs(ctx context.Context, cfg *config.MachineConfig, self string, logs io.Writer) error {
	if cfg == nil {
		return fmt.Errorf("kubelet serving certificates: no machine configuration")
	}
	cluster, err := csrapprove.ClusterInfoFromConfig(cfg, self)
	if err != nil {
		return fmt.Errorf("kubelet serving certificates: %w", err)
	}
	run := func(ctx context.Context, args ...string) ([]byte, error) { return kubectl(ctx, nil, args...) }
	return csrapprove.Review(ctx, run, cluster, logs)
}

// nodeName is the name under which this node's kubelet registers (--hostname-override):
// the host name without the domain.
func (n *node) nodeName() string {
	r, err := n.store.Get(resources.NamespaceNetwork, resources.HostnameType, resources.HostnameID)
	if err != nil {
		return n.opts.Hostname
	}
	return r.(*resource.Typed[resources.HostnameSpec]).TypedSpec().Hostname
}

// runCNIConfig writes the node's CNI configuration from flannel's subnet file, as soon as
// flanneld has written it and whenever it changes.
func (n *node) runCNIConfig(ctx context.Context, logs io.Writer) error {
	last := ""
	for {
		data, err := os.ReadFile("/run/flannel/subnet.env")
		if err == nil && string(data) != last {
			cfg, _ := n.cfg.Current()
			conf, err := addons.CNIConfig(string(data), cfg)
			if err != nil {
				fmt.Fprintf(logs, "CNI configuration: %v\n", err)
			} else {
				p := filepath.Join(paths.CNIConfDir, "10-flannel.conflist")
				if err := os.MkdirAll(paths.CNIConfDir, 0o755); err == nil {
					if err := atomicfile.Write(p, conf, 0o644); err != nil {
						fmt.Fprintf(logs, "write %s: %v\n", p, err)
					} else {
						fmt.Fprintf(logs, "wrote %s\n", p)
						last = string(data)
					}
				}
			}
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(2 * time.Second):
		}
	}
}

// runsEtcd reports whether this node runs etcd (so it applies the cluster's manifests).
func (n *node) runsEtcd() bool {
	r, err := n.store.Get(resources.NamespaceEtcd, resources.EtcdStateType, resources.LocalID)
	if err != nil {
		return false
	}
	return r.(*resource.Typed[resources.EtcdStateSpec]).TypedSpec().Run
}
