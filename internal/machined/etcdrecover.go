package machined

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/plinthos/plinth/internal/machineapi"
	"github.com/plinthos/plinth/internal/reaper"
	"github.com/plinthos/plinth/pkg/config"
)

// etcdStopTimeout bounds the wait for kubelet to stop etcd once its manifest is gone.
const etcdStopTimeout = 3 * time.Minute

// Recover makes this control plane's etcd a new one-member cluster from the snapshot at
// path (what plinthctl etcd snapshot writes, or a member's db file copied from a disk).
// While etcd answers, it refuses unless force. The data it replaces is kept aside.
func (n *node) Recover(ctx context.Context, path string, force bool) (string, error) {
	if !n.platform.Kubernetes() {
		return "", fmt.Errorf("%w: a node on the %s platform runs no etcd", machineapi.ErrCannotBootstrap, n.platform.Name())
	}
	cfg, _ := n.cfg.Current()
	if cfg.Machine.Type != config.TypeControlPlane {
		return "", fmt.Errorf("%w: this is a worker; recover etcd on a control-plane node", machineapi.ErrCannotBootstrap)
	}
	self, err := n.etcdSelf(ctx)
	if err != nil {
		return "", err
	}
	// Healthy is serving: a linearizable read, which takes a quorum. A member that lost its
	// quorum still answers a status request, and recovering it is what recovery is for.
	if n.etcdServes(ctx) && !force {
		sctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		st, err := etcdClient().Status(sctx)
		cancel()
		detail := ""
		if err == nil {
			detail = fmt.Sprintf(" (revision %d, database %d bytes)", st.Header.Revision, st.DBSize)
		}
		return "", fmt.Errorf("%w: etcd serves on this node%s: recovering would replace its data with the snapshot's; pass --force to do it anyway",
			machineapi.ErrEtcdHealthy, detail)
	}
	image := cfg.Cluster.Etcd.Image
	restore := func(ctx context.Context, dataDir string) error {
		return etcdutlRestore(ctx, image, path, dataDir, self.Name, self.PeerURL)
	}
	aside, err := n.etcd.Recover(ctx, etcdStopped, restore)
	if err != nil {
		return "", err
	}
	msg := "etcd starts on this node as a new cluster from the snapshot; the Kubernetes control plane follows"
	if aside != "" {
		msg += "; the data it replaced is kept in " + aside
	}
	return msg, nil
}

// EtcdLeft records that this node removed its own etcd member (plinthctl etcd leave):
// etcd stays down, and the node does not join again, until a reset.
func (n *node) EtcdLeft() error { return n.etcd.Left() }

// etcdStopped waits until the local etcd no longer answers (kubelet stopped its pod).
func etcdStopped(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, etcdStopTimeout)
	defer cancel()
	c := etcdClient()
	for {
		sctx, scancel := context.WithTimeout(ctx, 2*time.Second)
		_, err := c.Status(sctx)
		scancel()
		if err != nil && ctx.Err() == nil {
			// Refused (or timed out): wait a moment more for the process to be gone.
			if !sleep(ctx, 2*time.Second) {
				return ctx.Err()
			}
			return nil
		}
		if !sleep(ctx, time.Second) {
			return fmt.Errorf("etcd still answers after %s: %w", etcdStopTimeout, ctx.Err())
		}
	}
}

// etcdutlRestore restores the snapshot into dataDir with the etcdutl of the etcd image, as
// the only member name at peerURL. A snapshot without the hash etcd appends (a db file
// copied from a member's disk) is restored without that check.
func etcdutlRestore(ctx context.Context, image, snapshot, dataDir, name, peerURL string) error {
	mnt, err := os.MkdirTemp(filepath.Dir(dataDir), ".etcdutl-")
	if err != nil {
		return err
	}
	defer os.Remove(mnt)
	unmount, err := ctrStore{}.Mount(ctx, image, mnt)
	if err != nil {
		return fmt.Errorf("mount %s for its etcdutl: %w", image, err)
	}
	defer func() {
		uctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		defer cancel()
		_ = unmount(uctx)
	}()
	etcdutl := filepath.Join(mnt, "usr", "bin", "etcdutl")
	// The revision moves well past the snapshot's and the old ones read as compacted, so that
	// a client watching from before the snapshot lists again instead of missing changes.
	args := []string{"snapshot", "restore", snapshot, "--data-dir", dataDir, "--name", name,
		"--initial-cluster", name + "=" + peerURL, "--initial-advertise-peer-urls", peerURL,
		"--bump-revision", "1000000000", "--mark-compacted"}
	out, err := reaper.Command(ctx, etcdutl, args...).CombinedOutput()
	if err != nil && strings.Contains(string(out), "hash") {
		// No sha256 at the end: a db file from a disk, not a snapshot.
		_ = os.RemoveAll(dataDir)
		out, err = reaper.Command(ctx, etcdutl, append(args, "--skip-hash-check")...).CombinedOutput()
	}
	if err != nil {
		return fmt.Errorf("etcdutl snapshot restore: %w: %s", err, strings.TrimSpace(string(out)))
	}
	if _, err := os.Stat(filepath.Join(dataDir, "member")); err != nil {
		return errors.New("etcdutl snapshot restore wrote no member directory")
	}
	return nil
}
