package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/spf13/cobra"

	"github.com/plinthos/plinth/pkg/api/machine"
	"github.com/plinthos/plinth/pkg/client"
)

func newBootstrapCommand(g *globalFlags) *cobra.Command {
	var (
		recoverFrom string
		force       bool
	)
	cmd := &cobra.Command{
		Use:   "bootstrap",
		Short: "Start a new cluster's etcd on one control-plane node (once per cluster), or recover it from a snapshot",
		Long: `Bootstrap starts etcd as a new cluster on exactly one control-plane node; the Kubernetes
control plane then comes up there, and other control-plane nodes join by themselves. It is
refused, with the reason, on a node or cluster that was bootstrapped already.
'plinthctl cluster create' bootstraps by itself.

With --recover-from SNAPSHOT, the node's etcd becomes a new one-member cluster holding the
snapshot's data: a file of 'plinthctl etcd snapshot', of the scheduled snapshots
(cluster.etcd.snapshots), or a member's db file copied from a disk. The node stops etcd,
moves its data directory aside (kept as /var/lib/etcd.before-recovery-TIME), restores the
snapshot with the etcd image's etcdutl, and starts etcd again; the Kubernetes API comes back
with the snapshot's objects. While etcd answers on the node, it is refused unless --force.
See docs/etcd-recovery.md.`,
		Example: `  plinthctl -n 10.5.0.2 bootstrap
  plinthctl -n 10.5.0.2 bootstrap --recover-from etcd.db
  plinthctl -n 10.5.0.2 bootstrap --recover-from etcd.db --force`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if force && recoverFrom == "" {
				return errors.New("--force applies only with --recover-from")
			}
			if recoverFrom != "" {
				info, err := os.Stat(recoverFrom)
				if err != nil {
					return err
				}
				if !info.Mode().IsRegular() || info.Size() == 0 {
					return fmt.Errorf("%s is not a snapshot file (empty, or not a regular file)", recoverFrom)
				}
			}
			return g.onNodes(cmd, recoverFrom != "", func(ctx context.Context, s *session, node string, w io.Writer) error {
				if len(s.nodes) > 1 {
					return fmt.Errorf("bootstrap exactly one node: give one with -n")
				}
				if recoverFrom != "" {
					return recoverEtcd(ctx, s, recoverFrom, force, w)
				}
				resp, err := s.client.Machine.Bootstrap(ctx, &machine.BootstrapRequest{})
				if err != nil {
					return client.Describe(err)
				}
				fmt.Fprintf(w, "%s: %s\n", node, resp.Message)
				return nil
			})
		},
	}
	cmd.Flags().StringVar(&recoverFrom, "recover-from", "", "an etcd snapshot to start the new cluster's etcd from (disaster recovery)")
	cmd.Flags().BoolVar(&force, "force", false, "with --recover-from: recover even while etcd answers on the node (its data is kept aside)")
	return cmd
}

// recoverEtcd streams the snapshot to the node, which restores it.
func recoverEtcd(ctx context.Context, s *session, path string, force bool, w io.Writer) error {
	stream, err := s.client.Machine.EtcdRecover(ctx)
	if err != nil {
		return client.Describe(err)
	}
	first := true
	err = sendFile(path, w, func(chunk []byte) error {
		err := stream.Send(&machine.EtcdRecoverRequest{Chunk: chunk, Force: first && force})
		first = false
		return err
	})
	if err != nil {
		if _, cerr := stream.CloseAndRecv(); cerr != nil {
			return client.Describe(cerr)
		}
		return err
	}
	fmt.Fprintln(w, "the node stops etcd and restores the snapshot...")
	resp, err := stream.CloseAndRecv()
	if err != nil {
		return client.Describe(err)
	}
	fmt.Fprintln(w, resp.Message)
	return nil
}
