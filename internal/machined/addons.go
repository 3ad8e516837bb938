package machined

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"os"
	"slices"
	"time"

	"github.com/plinthos/plinth/internal/atomicfile"
	"github.com/plinthos/plinth/internal/backoff"
	"github.com/plinthos/plinth/internal/k8s/addons"
	"github.com/plinthos/plinth/internal/k8s/apply"
	"github.com/plinthos/plinth/internal/k8s/csrapprove"
	"github.com/plinthos/plinth/internal/k8s/kubeclient"
	"github.com/plinthos/plinth/internal/k8s/paths"
	"github.com/plinthos/plinth/internal/k8s/render"
	"github.com/plinthos/plinth/internal/resource"
	"github.com/plinthos/plinth/internal/resources"
	"github.com/plinthos/plinth/pkg/config"
)

// adminClient returns a client of the API with the admin kubeconfig, read now: the node
// writes it once the cluster's certificates are there.
func adminClient() (*kubeclient.Client, error) {
	c, err := kubeclient.NewFromFile(paths.PKIFile(paths.AdminKubeconfig), "")
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("no admin kubeconfig yet: %w", err)
	}
	return c, err
}

// runAddons is the control plane's cluster keeper: once the API answers it applies the
// cluster's manifests (server-side apply, so it can run again), and again whenever the
// configuration changes what they render to (a new kube-proxy image from plinthctl
// upgrade-k8s, say); it puts the role labels on this node, and keeps approving kubelet
// serving certificate requests of real nodes.
func (n *node) runAddons(ctx context.Context, logs io.Writer) error {
	applied := ""
	// A failure (mostly: the API server not ready yet, at bootstrap) is retried after a
	// second, then less and less often, up to the period of the rounds.
	const period = 10 * time.Second
	retry := backoff.New(time.Second, period)
	for {
		wait := period
		if err := n.addonsOnce(ctx, logs, &applied); err != nil {
			wait = retry.Next()
			fmt.Fprintf(logs, "%v; retrying in %s\n", err, wait)
		} else {
			retry.Reset()
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(wait):
		}
	}
}

// addonsOnce does one round of runAddons; applied is the digest of the manifests last
// applied, and is set once they all are.
func (n *node) addonsOnce(ctx context.Context, logs io.Writer, applied *string) error {
	kube, err := adminClient()
	if err != nil {
		return err
	}
	defer kube.Close()
	if err := kube.Readyz(ctx); err != nil {
		return fmt.Errorf("the API server is not ready yet: %w", err)
	}
	cfg, _ := n.cfg.Current()
	manifests, err := addons.Manifests(cfg)
	if err != nil {
		return err
	}
	names := slices.Sorted(maps.Keys(manifests))
	urls := addons.ExtraManifestURLs(cfg)
	h := sha256.New()
	for _, name := range names {
		fmt.Fprintf(h, "%s\x00%d\x00", name, len(manifests[name]))
		h.Write(manifests[name])
	}
	for _, u := range urls {
		fmt.Fprintf(h, "url\x00%s\x00", u)
	}
	if sum := hex.EncodeToString(h.Sum(nil)); sum != *applied {
		if *applied != "" {
			fmt.Fprintln(logs, "the configuration changed the cluster's manifests: applying them again")
		}
		// Server-side apply, taking over fields from other managers, as
		// `kubectl apply --server-side --force-conflicts` would.
		applier := apply.New(kube, "plinth")
		for _, name := range names {
			if err := applier.Apply(ctx, manifests[name]); err != nil {
				return fmt.Errorf("apply %s: %w", name, err)
			}
			fmt.Fprintf(logs, "applied %s\n", name)
		}
		for _, u := range urls {
			manifest, err := apply.Fetch(ctx, u)
			if err == nil {
				err = applier.Apply(ctx, manifest)
			}
			if err != nil {
				return fmt.Errorf("apply %s: %w", u, err)
			}
			fmt.Fprintf(logs, "applied %s\n", u)
		}
		*applied = sum
	}
	if err := n.labelSelf(ctx, kube, cfg); err != nil {
		fmt.Fprintf(logs, "label node: %v\n", err)
	}
	return approveServingCSRs(ctx, kube, cfg, n.nodeName(), logs)
}

// labelSelf puts the labels kubelet may not set itself (the control-plane role) on this node.
func (n *node) labelSelf(ctx context.Context, kube *kubeclient.Client, cfg *config.MachineConfig) error {
	labels := render.APINodeLabels(cfg, true)
	if len(labels) == 0 {
		return nil
	}
	// The name kubelet registered the node under (the short host name).
	return kube.LabelNode(ctx, n.nodeName(), labels)
}

// approveServingCSRs approves the pending kubelet serving certificate requests in which a
// node asks for its own names and addresses, and denies the other ones (see csrapprove
// for the checks and their residual risk).
func approveServingCSRs(ctx context.Context, api csrapprove.API, cfg *config.MachineConfig, self string, logs io.Writer) error {
	if cfg == nil {
		return fmt.Errorf("kubelet serving certificates: no machine configuration")
	}
	cluster, err := csrapprove.ClusterInfoFromConfig(cfg, self)
	if err != nil {
		return fmt.Errorf("kubelet serving certificates: %w", err)
	}
	return csrapprove.Review(ctx, api, cluster, logs)
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
// flanneld has written it and whenever it changes. It looks every quarter of a second until
// the first configuration is written (the node turns Ready only then), every 2 s after.
func (n *node) runCNIConfig(ctx context.Context, logs io.Writer) error {
	last, lastErr := "", ""
	for {
		wait := 2 * time.Second
		if last == "" {
			wait = 250 * time.Millisecond
		}
		data, err := os.ReadFile("/run/flannel/subnet.env")
		if err == nil && string(data) != last {
			cfg, _ := n.cfg.Current()
			conf, err := addons.CNIConfig(string(data), cfg)
			// A failure is logged once while it repeats.
			report := func(msg string) {
				if msg != lastErr {
					fmt.Fprintln(logs, msg)
					lastErr = msg
				}
			}
			if err != nil {
				report(fmt.Sprintf("CNI configuration: %v", err))
			} else if err := writeCNIConfig(conf); err != nil {
				report(err.Error())
			} else {
				fmt.Fprintf(logs, "wrote %s\n", addons.CNIConfigFile)
				last, lastErr = string(data), ""
			}
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(wait):
		}
	}
}

// writeCNIConfig writes the node's CNI configuration, and removes the file an older
// version wrote it to.
func writeCNIConfig(conf []byte) error {
	if err := os.MkdirAll(paths.CNIConfDir, 0o755); err != nil {
		return fmt.Errorf("create %s: %w", paths.CNIConfDir, err)
	}
	if err := atomicfile.Write(addons.CNIConfigFile, conf, 0o644); err != nil {
		return fmt.Errorf("write %s: %w", addons.CNIConfigFile, err)
	}
	if err := os.Remove(addons.OldCNIConfigFile); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("remove %s: %w", addons.OldCNIConfigFile, err)
	}
	return nil
}

// runsEtcd reports whether this node runs etcd (so it applies the cluster's manifests).
func (n *node) runsEtcd() bool {
	r, err := n.store.Get(resources.NamespaceEtcd, resources.EtcdStateType, resources.LocalID)
	if err != nil {
		return false
	}
	return r.(*resource.Typed[resources.EtcdStateSpec]).TypedSpec().Run
}
