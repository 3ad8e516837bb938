// Package etcdsnap takes a control plane's scheduled etcd snapshots: one file per snapshot
// in a directory of the node's disk, named by the time it was taken, the oldest removed
// beyond a count.
package etcdsnap

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

// Dir is where a node keeps its snapshots (on /var, which persists).
const Dir = "/var/lib/plinth/etcd-snapshots"

const (
	prefix = "etcd-"
	suffix = ".db"
	stamp  = "20060102T150405Z"
)

// Snapshot is one snapshot file.
type Snapshot struct {
	Name string
	Time time.Time
	Size int64
}

// Name is the file name of a snapshot taken at t.
func Name(t time.Time) string { return prefix + t.UTC().Format(stamp) + suffix }

// List returns the snapshots in dir, oldest first; other files are ignored, and a missing
// dir holds none.
func List(dir string) ([]Snapshot, error) {
	entries, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var out []Snapshot
	for _, e := range entries {
		name := e.Name()
		if !e.Type().IsRegular() || !strings.HasPrefix(name, prefix) || !strings.HasSuffix(name, suffix) {
			continue
		}
		t, err := time.Parse(stamp, strings.TrimSuffix(strings.TrimPrefix(name, prefix), suffix))
		if err != nil {
			continue
		}
		info, err := e.Info()
		if err != nil {
			continue // removed meanwhile
		}
		out = append(out, Snapshot{Name: name, Time: t, Size: info.Size()})
	}
	slices.SortFunc(out, func(a, b Snapshot) int { return a.Time.Compare(b.Time) })
	return out, nil
}

// Next is when the next snapshot is due: at once when there is none, else one interval
// after the newest (so a restart of machined does not take one early).
func Next(list []Snapshot, interval time.Duration, now time.Time) time.Time {
	if len(list) == 0 {
		return now
	}
	next := list[len(list)-1].Time.Add(interval)
	if next.After(now.Add(interval)) {
		return now // the newest is dated in the future: the clock went back
	}
	return next
}

// Taker writes a snapshot of etcd to w and returns its size.
type Taker func(ctx context.Context, w io.Writer) (int64, error)

// Take writes a snapshot into dir, named by now, through a temporary file that is renamed
// only once complete, then removes the oldest beyond keep. It returns the new snapshot and
// the names removed.
func Take(ctx context.Context, dir string, now time.Time, take Taker, keep int) (Snapshot, []string, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return Snapshot{}, nil, err
	}
	f, err := os.CreateTemp(dir, ".partial-*")
	if err != nil {
		return Snapshot{}, nil, err
	}
	defer os.Remove(f.Name()) // gone after the rename; a failed snapshot leaves nothing
	n, err := take(ctx, f)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return Snapshot{}, nil, fmt.Errorf("snapshot: %w", err)
	}
	snap := Snapshot{Name: Name(now), Time: now.UTC().Truncate(time.Second), Size: n}
	if err := os.Rename(f.Name(), filepath.Join(dir, snap.Name)); err != nil {
		return Snapshot{}, nil, err
	}
	list, err := List(dir)
	if err != nil {
		return snap, nil, err
	}
	var removed []string
	for len(list) > keep {
		if err := os.Remove(filepath.Join(dir, list[0].Name)); err != nil && !errors.Is(err, os.ErrNotExist) {
			return snap, removed, err
		}
		removed = append(removed, list[0].Name)
		list = list[1:]
	}
	return snap, removed, nil
}

// Run takes a snapshot every interval into dir until ctx ends, keeping keep of them. A
// failed snapshot (etcd not up yet, say) is logged and tried again a minute later.
func Run(ctx context.Context, dir string, interval time.Duration, keep int, take Taker, log *slog.Logger) {
	log.Info("scheduled etcd snapshots", "every", interval, "keep", keep, "dir", dir)
	for {
		list, err := List(dir)
		if err != nil {
			log.Error("list the snapshots", "error", err)
		}
		wait := time.Until(Next(list, interval, time.Now()))
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
		snap, removed, err := Take(ctx, dir, time.Now(), take, keep)
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			log.Warn("etcd snapshot failed; trying again in a minute", "error", err)
			select {
			case <-ctx.Done():
				return
			case <-time.After(time.Minute):
			}
			continue
		}
		log.Info("etcd snapshot taken", "file", filepath.Join(dir, snap.Name), "bytes", snap.Size, "removed", removed)
	}
}
