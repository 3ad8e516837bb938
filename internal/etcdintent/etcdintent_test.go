package etcdintent

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

var day = time.Date(2026, 12, 2, 10, 0, 0, 0, time.UTC)

func open(t *testing.T, dir string) *Keeper {
	t.Helper()
	k, err := Open(filepath.Join(dir, "etcd-intent.json"), filepath.Join(dir, "etcd"), func() time.Time { return day })
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func absent(context.Context) error { return nil }

func signalled(t *testing.T, k *Keeper) {
	t.Helper()
	select {
	case <-k.Changed():
	default:
		t.Fatal("no change signalled")
	}
}

func TestBootstrapIsOnceAndOutlivesAReboot(t *testing.T) {
	dir := t.TempDir()
	k := open(t, dir)
	if got := k.Current(); got.Role != RoleNone {
		t.Fatalf("fresh node: %+v", got)
	}
	if err := k.Bootstrap(context.Background(), absent); err != nil {
		t.Fatal(err)
	}
	signalled(t, k)
	if got := k.Current(); got.Role != RoleBootstrap || !got.Decided.Equal(day) {
		t.Fatalf("after bootstrap: %+v", got)
	}
	err := k.Bootstrap(context.Background(), absent)
	if !errors.Is(err, ErrAlreadyBootstrapped) {
		t.Fatalf("second bootstrap: %v", err)
	}
	// A join after the bootstrap is refused without asking the cluster.
	err = k.Join(context.Background(), func(context.Context) (string, error) {
		t.Fatal("join asked the cluster on a bootstrapped node")
		return "", nil
	})
	if !errors.Is(err, ErrDecided) {
		t.Fatalf("join after bootstrap: %v", err)
	}

	// The decision outlives the process.
	if got := open(t, dir).Current(); got.Role != RoleBootstrap {
		t.Fatalf("after reopening: %+v", got)
	}
}

func TestJoinThenBootstrapRefused(t *testing.T) {
	dir := t.TempDir()
	k := open(t, dir)
	initial := "cp-1=https://10.5.0.2:2380,cp-2=https://10.5.0.3:2380"
	if err := k.Join(context.Background(), func(context.Context) (string, error) { return initial, nil }); err != nil {
		t.Fatal(err)
	}
	signalled(t, k)
	if got := k.Current(); got.Role != RoleJoin || got.InitialCluster != initial {
		t.Fatalf("after join: %+v", got)
	}
	err := k.Bootstrap(context.Background(), func(context.Context) error {
		t.Fatal("bootstrap probed the cluster on a joined node")
		return nil
	})
	if !errors.Is(err, ErrAlreadyBootstrapped) {
		t.Fatalf("bootstrap after join: %v", err)
	}
	if got := open(t, dir).Current(); got.InitialCluster != initial {
		t.Fatalf("after reopening: %+v", got)
	}

	// The members changed before etcd started: the initial cluster follows.
	changed, err := k.UpdateJoin(initial + ",cp-3=https://10.5.0.4:2380")
	if err != nil || !changed {
		t.Fatalf("UpdateJoin = %v, %v", changed, err)
	}
	signalled(t, k)
	if changed, _ := k.UpdateJoin(initial + ",cp-3=https://10.5.0.4:2380"); changed {
		t.Fatal("the same initial cluster counted as a change")
	}
}

func TestFailedJoinDecidesNothing(t *testing.T) {
	k := open(t, t.TempDir())
	boom := errors.New("no member answered")
	if err := k.Join(context.Background(), func(context.Context) (string, error) { return "", boom }); !errors.Is(err, boom) {
		t.Fatalf("join: %v", err)
	}
	if got := k.Current(); got.Role != RoleNone {
		t.Fatalf("after a failed join: %+v", got)
	}
	if err := k.Bootstrap(context.Background(), absent); err != nil {
		t.Fatalf("bootstrap after a failed join: %v", err)
	}
}

func TestBootstrapAsksTheCluster(t *testing.T) {
	k := open(t, t.TempDir())
	answers := errors.New("the cluster's API answers")
	if err := k.Bootstrap(context.Background(), func(context.Context) error { return answers }); !errors.Is(err, answers) {
		t.Fatalf("bootstrap: %v", err)
	}
	if got := k.Current(); got.Role != RoleNone {
		t.Fatalf("a refused bootstrap decided: %+v", got)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := k.Bootstrap(ctx, absent); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled bootstrap: %v", err)
	}
	if got := k.Current(); got.Role != RoleNone {
		t.Fatalf("a cancelled bootstrap decided: %+v", got)
	}
}

func TestBootstrapDuringJoinIsUnsure(t *testing.T) {
	k := open(t, t.TempDir())
	inAdd, release := make(chan struct{}), make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	var joinErr error
	go func() {
		defer wg.Done()
		joinErr = k.Join(context.Background(), func(context.Context) (string, error) {
			close(inAdd)
			<-release
			return "cp-1=https://10.5.0.2:2380,cp-2=https://10.5.0.3:2380", nil
		})
	}()
	<-inAdd
	if err := k.Bootstrap(context.Background(), absent); !errors.Is(err, ErrUnsure) {
		t.Fatalf("bootstrap during a join: %v", err)
	}
	close(release)
	wg.Wait()
	if joinErr != nil {
		t.Fatal(joinErr)
	}
	if got := k.Current(); got.Role != RoleJoin {
		t.Fatalf("after the join: %+v", got)
	}
}

func TestConcurrentBootstrapAndJoinOneWins(t *testing.T) {
	for range 50 {
		k := open(t, t.TempDir())
		var wg sync.WaitGroup
		var bootErr, joinErr error
		wg.Add(2)
		go func() {
			defer wg.Done()
			bootErr = k.Bootstrap(context.Background(), absent)
		}()
		go func() {
			defer wg.Done()
			joinErr = k.Join(context.Background(), func(context.Context) (string, error) { return "a=https://10.5.0.2:2380", nil })
		}()
		wg.Wait()
		got := k.Current()
		switch {
		case bootErr == nil && joinErr == nil:
			t.Fatalf("both won: %+v", got)
		case bootErr == nil && got.Role != RoleBootstrap, joinErr == nil && got.Role != RoleJoin:
			t.Fatalf("bootstrap %v, join %v, decided %+v", bootErr, joinErr, got)
		}
	}
}

func TestDataWithoutRecordIsAMember(t *testing.T) {
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "etcd", "member"), 0o700); err != nil {
		t.Fatal(err)
	}
	k := open(t, dir)
	if got := k.Current(); got.Role != RoleMember {
		t.Fatalf("node with etcd data: %+v", got)
	}
	if err := k.Bootstrap(context.Background(), absent); !errors.Is(err, ErrAlreadyBootstrapped) {
		t.Fatalf("bootstrap of a member: %v", err)
	}
	if err := k.Join(context.Background(), func(context.Context) (string, error) { return "x", nil }); !errors.Is(err, ErrDecided) {
		t.Fatalf("join of a member: %v", err)
	}
}

func TestResetForgetsAndRemovesData(t *testing.T) {
	dir := t.TempDir()
	k := open(t, dir)
	if err := k.Bootstrap(context.Background(), absent); err != nil {
		t.Fatal(err)
	}
	signalled(t, k)
	if err := os.MkdirAll(filepath.Join(dir, "etcd", "member", "wal"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := k.Reset(); err != nil {
		t.Fatal(err)
	}
	signalled(t, k)
	if got := k.Current(); got.Role != RoleNone {
		t.Fatalf("after reset: %+v", got)
	}
	if _, err := os.Stat(filepath.Join(dir, "etcd")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("etcd data after reset: %v", err)
	}
	if got := open(t, dir).Current(); got.Role != RoleNone {
		t.Fatalf("after reset and reopening: %+v", got)
	}
	if err := k.Bootstrap(context.Background(), absent); err != nil {
		t.Fatalf("bootstrap after reset: %v", err)
	}
}

func TestOpenRefusesABadRecord(t *testing.T) {
	for name, data := range map[string]string{
		"not json":       "bootstrap\n",
		"unknown role":   `{"role":"leader"}`,
		"join, no peers": `{"role":"join"}`,
	} {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, "etcd-intent.json")
			if err := os.WriteFile(path, []byte(data), 0o600); err != nil {
				t.Fatal(err)
			}
			if _, err := Open(path, filepath.Join(dir, "etcd"), time.Now); err == nil {
				t.Fatal("accepted")
			}
		})
	}
}

func TestRecover(t *testing.T) {
	dir := t.TempDir()
	k := open(t, dir)
	if err := k.Join(context.Background(), func(context.Context) (string, error) { return "a=https://10.5.0.2:2380", nil }); err != nil {
		t.Fatal(err)
	}
	old := filepath.Join(dir, "etcd", "member", "old")
	if err := os.MkdirAll(old, 0o700); err != nil {
		t.Fatal(err)
	}
	<-k.Changed()

	// etcd must stop while the role is recovering; the restore writes the new data.
	var roleWhileStopping Role
	aside, err := k.Recover(context.Background(),
		func(context.Context) error { roleWhileStopping = k.Current().Role; return nil }, // the controllers read it meanwhile
		func(_ context.Context, dataDir string) error {
			return os.MkdirAll(filepath.Join(dataDir, "member", "new"), 0o700)
		})
	if err != nil {
		t.Fatal(err)
	}
	if roleWhileStopping != RoleRecovering {
		t.Errorf("role while etcd stops: %q, want recovering", roleWhileStopping)
	}
	if got := k.Current(); got.Role != RoleBootstrap {
		t.Errorf("after the recovery: %+v, want bootstrap", got)
	}
	if _, err := os.Stat(filepath.Join(aside, "member", "old")); err != nil {
		t.Errorf("the old data is not kept aside at %s: %v", aside, err)
	}
	if _, err := os.Stat(filepath.Join(dir, "etcd", "member", "new")); err != nil {
		t.Errorf("no restored data: %v", err)
	}
	if got := open(t, dir).Current(); got.Role != RoleBootstrap {
		t.Errorf("after reopening: %+v", got)
	}

	// A failed restore puts the data and the role back.
	_, err = k.Recover(context.Background(), func(context.Context) error { return nil },
		func(_ context.Context, dataDir string) error {
			_ = os.MkdirAll(filepath.Join(dataDir, "half"), 0o700)
			return errors.New("snapshot corrupt")
		})
	if err == nil || err.Error() != "snapshot corrupt" {
		t.Errorf("failed restore: %v", err)
	}
	if got := k.Current(); got.Role != RoleBootstrap {
		t.Errorf("after a failed recovery: %+v, want bootstrap again", got)
	}
	if _, err := os.Stat(filepath.Join(dir, "etcd", "member", "new")); err != nil {
		t.Errorf("the data is not back after a failed recovery: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "etcd", "half")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the half-restored data stayed: %v", err)
	}
	// etcd that does not stop: nothing moves.
	if _, err := k.Recover(context.Background(), func(context.Context) error { return errors.New("still up") }, nil); err == nil {
		t.Error("a recovery went on while etcd did not stop")
	}
	if _, err := os.Stat(filepath.Join(dir, "etcd", "member", "new")); err != nil {
		t.Errorf("data moved although etcd did not stop: %v", err)
	}
}

// A bootstrapped node whose etcd data is lost must not start etcd as a new, empty
// cluster: its role reads RoleLost, and a bootstrap is refused.
func TestLostDataIsNotAFirstStart(t *testing.T) {
	dir := t.TempDir()
	k := open(t, dir)
	if err := k.Bootstrap(context.Background(), absent); err != nil {
		t.Fatal(err)
	}
	// Before etcd first wrote its data, an empty directory is a first start.
	if noted, err := k.Refresh(); noted || err != nil {
		t.Fatalf("noted a start without data: %v %v", noted, err)
	}
	if got := k.Current(); got.Role != RoleBootstrap {
		t.Fatalf("before etcd started: %+v", got)
	}
	member := filepath.Join(dir, "etcd", "member")
	if err := os.MkdirAll(member, 0o700); err != nil {
		t.Fatal(err)
	}
	<-k.Changed()
	if noted, err := k.Refresh(); !noted || err != nil {
		t.Fatalf("start not noted: %v %v", noted, err)
	}
	signalled(t, k)
	if got := k.Current(); got.Role != RoleBootstrap || !got.Started {
		t.Fatalf("after etcd started: %+v", got)
	}

	// The disk is wiped: the data is gone, the record stays.
	if err := os.RemoveAll(filepath.Join(dir, "etcd")); err != nil {
		t.Fatal(err)
	}
	if _, err := k.Refresh(); err != nil {
		t.Fatal(err)
	}
	signalled(t, k) // the controllers learn of the loss
	if got := k.Current(); got.Role != RoleLost {
		t.Fatalf("data lost: %+v, want lost", got)
	}
	if got := open(t, dir).Current(); got.Role != RoleLost {
		t.Fatalf("data lost, after a reboot: %+v, want lost", got)
	}
	if err := k.Bootstrap(context.Background(), absent); !errors.Is(err, ErrAlreadyBootstrapped) {
		t.Fatalf("bootstrap of a node that lost its data: %v", err)
	}

	// A record from before Started existed: the start is noted when the record is read.
	dir2 := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir2, "etcd-intent.json"), []byte(`{"role":"bootstrap"}`), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(dir2, "etcd", "member"), 0o700); err != nil {
		t.Fatal(err)
	}
	open(t, dir2)
	if err := os.RemoveAll(filepath.Join(dir2, "etcd")); err != nil {
		t.Fatal(err)
	}
	if got := open(t, dir2).Current(); got.Role != RoleLost {
		t.Fatalf("old record, data lost: %+v, want lost", got)
	}
}

func TestRejoin(t *testing.T) {
	dir := t.TempDir()
	k := open(t, dir)
	if err := k.Join(context.Background(), func(context.Context) (string, error) { return "a=https://10.5.0.2:2380", nil }); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(dir, "etcd", "member", "old"), 0o700); err != nil {
		t.Fatal(err)
	}
	var roleWhileStopping Role
	aside, err := k.Rejoin(context.Background(), func(context.Context) error { roleWhileStopping = k.Current().Role; return nil })
	if err != nil {
		t.Fatal(err)
	}
	if roleWhileStopping != RoleRejoining {
		t.Errorf("role while etcd stops: %q, want rejoining", roleWhileStopping)
	}
	if got := k.Current(); got.Role != RoleNone {
		t.Errorf("after the rejoin: %+v, want none", got)
	}
	if _, err := os.Stat(filepath.Join(aside, "member", "old")); err != nil {
		t.Errorf("the old data is not kept aside at %q: %v", aside, err)
	}
	if err := k.Join(context.Background(), func(context.Context) (string, error) { return "b=https://10.5.0.3:2380", nil }); err != nil {
		t.Fatalf("join after the rejoin: %v", err)
	}

	// A node that lost its data rejoins with nothing to move.
	if err := os.MkdirAll(filepath.Join(dir, "etcd", "member"), 0o700); err != nil {
		t.Fatal(err)
	}
	if _, err := k.Refresh(); err != nil {
		t.Fatal(err)
	}
	if err := os.RemoveAll(filepath.Join(dir, "etcd")); err != nil {
		t.Fatal(err)
	}
	// The node made a new, empty data directory at boot.
	if err := os.Mkdir(filepath.Join(dir, "etcd"), 0o700); err != nil {
		t.Fatal(err)
	}
	if got := k.Current(); got.Role != RoleLost {
		t.Fatalf("joined node, data lost: %+v", got)
	}
	if aside, err := k.Rejoin(context.Background(), func(context.Context) error { return nil }); err != nil || aside != "" {
		t.Fatalf("rejoin of a node without data: %q %v", aside, err)
	}
	if got := k.Current(); got.Role != RoleNone {
		t.Fatalf("after the rejoin: %+v", got)
	}
}

// A recovery or rejoin cut short by a crash, and a leave, are read back after a reboot
// (a node that could not read them would not boot).
func TestOpenReadsEveryRecordedRole(t *testing.T) {
	for _, role := range []Role{RoleRecovering, RoleRejoining, RoleLeft} {
		dir := t.TempDir()
		if err := os.WriteFile(filepath.Join(dir, "etcd-intent.json"), []byte(`{"role":"`+string(role)+`"}`), 0o600); err != nil {
			t.Fatal(err)
		}
		if got := open(t, dir).Current(); got.Role != role {
			t.Errorf("%s read back as %+v", role, got)
		}
	}
	k := open(t, t.TempDir())
	if err := k.Left(); err != nil {
		t.Fatal(err)
	}
	if err := k.Bootstrap(context.Background(), absent); !errors.Is(err, ErrAlreadyBootstrapped) {
		t.Errorf("bootstrap after a leave: %v", err)
	}
	if err := k.Join(context.Background(), func(context.Context) (string, error) { return "x", nil }); !errors.Is(err, ErrDecided) {
		t.Errorf("join after a leave: %v", err)
	}
	if err := k.Reset(); err != nil || k.Current().Role != RoleNone {
		t.Errorf("reset after a leave: %v %+v", err, k.Current())
	}
}
