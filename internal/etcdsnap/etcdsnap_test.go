package etcdsnap

import (
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

func writer(data string) Taker {
	return func(_ context.Context, w io.Writer) (int64, error) {
		n, err := io.WriteString(w, data)
		return int64(n), err
	}
}

func names(t *testing.T, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range entries {
		out = append(out, e.Name())
	}
	return out
}

func TestTakeKeepsTheNewest(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "snaps")
	t0 := time.Date(2026, 12, 3, 10, 0, 0, 0, time.UTC)
	for i := range 4 {
		snap, removed, err := Take(context.Background(), dir, t0.Add(time.Duration(i)*time.Hour), writer("db"), 2)
		if err != nil {
			t.Fatal(err)
		}
		if snap.Size != 2 || snap.Name != Name(t0.Add(time.Duration(i)*time.Hour)) {
			t.Errorf("snapshot %+v", snap)
		}
		if i >= 2 && len(removed) != 1 {
			t.Errorf("take %d removed %v, want the oldest", i, removed)
		}
	}
	// Something else in the directory stays and is not a snapshot.
	if err := os.WriteFile(filepath.Join(dir, "notes.txt"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	list, err := List(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 2 || list[0].Name != "etcd-20261203T120000Z.db" || list[1].Name != "etcd-20261203T130000Z.db" {
		t.Errorf("kept %v, want the two newest", list)
	}
	if got := names(t, dir); !slices.Equal(got, []string{"etcd-20261203T120000Z.db", "etcd-20261203T130000Z.db", "notes.txt"}) {
		t.Errorf("files %v", got)
	}
}

func TestFailedTakeLeavesNothing(t *testing.T) {
	dir := t.TempDir()
	failing := func(_ context.Context, w io.Writer) (int64, error) {
		_, _ = io.WriteString(w, "half")
		return 0, errors.New("etcd went away")
	}
	if _, _, err := Take(context.Background(), dir, time.Now(), failing, 3); err == nil || !strings.Contains(err.Error(), "etcd went away") {
		t.Errorf("err %v", err)
	}
	if got := names(t, dir); len(got) != 0 {
		t.Errorf("a failed snapshot left %v", got)
	}
}

func TestNext(t *testing.T) {
	now := time.Date(2026, 12, 3, 10, 0, 0, 0, time.UTC)
	if got := Next(nil, time.Hour, now); !got.Equal(now) {
		t.Errorf("no snapshot: next %v, want now", got)
	}
	list := []Snapshot{{Time: now.Add(-3 * time.Hour)}, {Time: now.Add(-20 * time.Minute)}}
	if got := Next(list, time.Hour, now); !got.Equal(now.Add(40 * time.Minute)) {
		t.Errorf("next %v, want an hour after the newest", got)
	}
	if got := Next([]Snapshot{{Time: now.Add(5 * time.Hour)}}, time.Hour, now); !got.Equal(now) {
		t.Errorf("a snapshot from the future: next %v, want now", got)
	}
	if got := Next([]Snapshot{{Time: now.Add(-5 * time.Hour)}}, time.Hour, now); !got.Before(now) {
		t.Errorf("overdue: next %v, want in the past (at once)", got)
	}
}

func TestListMissingDir(t *testing.T) {
	list, err := List(filepath.Join(t.TempDir(), "none"))
	if err != nil || len(list) != 0 {
		t.Errorf("List of a missing dir: %v %v", list, err)
	}
}
