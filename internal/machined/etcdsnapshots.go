package machined

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/plinthos/plinth/internal/etcdsnap"
	"github.com/plinthos/plinth/internal/resources"
	"github.com/plinthos/plinth/pkg/config"
)

// runEtcdSnapshots takes the scheduled etcd snapshots of cluster.etcd.snapshots, and
// follows a no-reboot apply that changes the schedule.
func (n *node) runEtcdSnapshots(ctx context.Context, logs io.Writer) error {
	log := slog.New(slog.NewTextHandler(logs, nil))
	schedule := func(s resources.MachineConfigSpec) (time.Duration, int) {
		if s.Config == nil || s.Config.Cluster.Etcd.Snapshots.Interval == "" {
			return 0, 0
		}
		d, err := time.ParseDuration(s.Config.Cluster.Etcd.Snapshots.Interval)
		if err != nil {
			return 0, 0 // validation refuses it before it gets here
		}
		keep := s.Config.Cluster.Etcd.Snapshots.Keep
		if keep == 0 {
			keep = config.DefaultEtcdSnapshotsKeep
		}
		return d, keep
	}
	return follower[resources.MachineConfigSpec]{
		name:  "etcd-snapshots",
		watch: n.watchMachineConfig,
		key: func(s resources.MachineConfigSpec) string {
			d, keep := schedule(s)
			return fmt.Sprint(d, keep)
		},
		run: func(ctx context.Context, s resources.MachineConfigSpec) error {
			d, keep := schedule(s)
			if d == 0 {
				log.Info("no scheduled etcd snapshot (cluster.etcd.snapshots.interval)")
				<-ctx.Done()
				return nil
			}
			etcdsnap.Run(ctx, etcdsnap.Dir, d, keep, etcdClient().Snapshot, log)
			return nil
		},
	}.Run(ctx, logs)
}
