package configmgr

import (
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/plinthos/plinth/pkg/config"
)

// change is one call of OnChange.
type change struct {
	hostname string
	version  uint64
}

// recorder collects the calls of OnChange.
type recorder struct {
	mu    sync.Mutex
	calls []change
}

func (r *recorder) record(c *config.MachineConfig, version uint64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.calls = append(r.calls, change{c.Machine.Network.Hostname, version})
}

func (r *recorder) all() []change {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]change(nil), r.calls...)
}

// checkConverged fails unless the calls have growing versions and the last one reports
// the manager's active configuration, which is also its current one.
func checkConverged(t *testing.T, m *Manager, calls []change) {
	t.Helper()
	for i := 1; i < len(calls); i++ {
		if calls[i].version <= calls[i-1].version {
			t.Fatalf("OnChange versions do not grow: %v", calls)
		}
	}
	active, version := m.Active()
	current, _ := m.Current()
	if active != current {
		t.Fatalf("Active (%s) is not Current (%s)", active.Machine.Network.Hostname, current.Machine.Network.Hostname)
	}
	if len(calls) == 0 {
		t.Fatal("OnChange was never called")
	}
	last := calls[len(calls)-1]
	if last.hostname != current.Machine.Network.Hostname || last.version != version {
		t.Fatalf("the last OnChange reported %s (version %d); the active configuration is %s (version %d); calls %v",
			last.hostname, last.version, current.Machine.Network.Hostname, version, calls)
	}
}

func TestActiveVersions(t *testing.T) {
	cp := generated(t).ControlPlane
	m, clk, _, _ := newManager(t)
	if cfg, v := m.Active(); cfg != nil || v != 0 {
		t.Fatalf("Active before Boot = %v, %d", cfg, v)
	}
	var rec recorder
	m.OnChange = rec.record
	boot(t, m, withHostname(t, cp, "one"))
	want := func(host string, version uint64) {
		t.Helper()
		cfg, v := m.Active()
		if cfg.Machine.Network.Hostname != host || v != version {
			t.Fatalf("Active = %s version %d, want %s version %d", cfg.Machine.Network.Hostname, v, host, version)
		}
	}
	want("one", 1)

	// Nothing becomes active: no new version.
	if _, err := m.Apply([]byte("kind: Nope\n"), ModeAuto, false, 0); err == nil {
		t.Fatal("garbage applied")
	}
	if _, err := m.Apply(withHostname(t, cp, "dry"), ModeAuto, true, 0); err != nil {
		t.Fatal(err)
	}
	if _, err := m.Apply(withHostname(t, cp, "staged"), ModeStaged, false, 0); err != nil {
		t.Fatal(err)
	}
	want("one", 1)

	if _, err := m.Apply(withHostname(t, cp, "two"), ModeNoReboot, false, 0); err != nil {
		t.Fatal(err)
	}
	want("two", 2)
	if _, err := m.Apply(withHostname(t, cp, "trial"), ModeTry, false, 30*time.Second); err != nil {
		t.Fatal(err)
	}
	want("trial", 3)
	clk.Advance(31 * time.Second)
	waitFor(t, func() bool { _, v := m.Active(); return v == 4 })
	want("two", 4)

	// A type change is stored for the next boot: Current has it, the running (Active)
	// configuration and its version stay.
	w := *cp
	w.Machine.Type = config.TypeWorker
	w.Machine.CA.Key, w.Cluster.CA.Key = nil, nil
	w.Cluster.AggregatorCA, w.Cluster.Etcd.CA = config.CertAndKey{}, config.CertAndKey{}
	w.Cluster.ServiceAccount, w.Cluster.SecretboxEncryptionSecret = config.ServiceAccountSpec{}, ""
	res, err := m.Apply(marshal(t, &w), ModeAuto, false, 0)
	if err != nil || !res.RebootNeeded {
		t.Fatalf("auto apply of a type change: %+v %v", res, err)
	}
	if cur, _ := m.Current(); cur.Machine.Type != config.TypeWorker {
		t.Error("Current is not the configuration stored for the reboot")
	}
	want("two", 4)

	if got := fmt.Sprint(rec.all()); got != "[{two 2} {trial 3} {two 4}]" {
		t.Errorf("OnChange calls %s", got)
	}
}

// TestOnChangeOrderApplyDuringRollback makes an apply overtake the rollback of a try: the
// rollback's OnChange call is held until the apply is done. The last call must still
// report the applied configuration, the active one (it used to report the rolled-back
// one, so the MachineConfig resource ended with a configuration that was not active).
func TestOnChangeOrderApplyDuringRollback(t *testing.T) {
	cp := generated(t).ControlPlane
	m, clk, _, _ := newManager(t)
	boot(t, m, withHostname(t, cp, "boot"))
	if _, err := m.Apply(withHostname(t, cp, "trial"), ModeTry, false, 30*time.Second); err != nil {
		t.Fatal(err)
	}

	var rec recorder
	held, release := make(chan struct{}), make(chan struct{})
	var calls atomic.Int32
	m.OnChange = func(c *config.MachineConfig, version uint64) {
		if calls.Add(1) == 1 { // the rollback's call; later ones are not held
			close(held)
			<-release
		}
		rec.record(c, version)
	}

	clk.Advance(31 * time.Second) // the rollback to "boot"; its OnChange is held
	<-held
	applied := make(chan error, 1)
	go func() {
		_, err := m.Apply(withHostname(t, cp, "applied"), ModeNoReboot, false, 0)
		applied <- err
	}()
	// The apply is active before the held call goes on (its own call waits, or is done).
	waitFor(t, func() bool { cur, _ := m.Current(); return cur.Machine.Network.Hostname == "applied" })
	close(release)
	if err := <-applied; err != nil {
		t.Fatal(err)
	}
	checkConverged(t, m, rec.all())
	if cur, _ := m.Current(); cur.Machine.Network.Hostname != "applied" {
		t.Errorf("active configuration %s, want applied", cur.Machine.Network.Hostname)
	}
}

// TestOnChangeConcurrentAppliesAndRollbacks runs applies in every mode from several
// goroutines while the fake clock fires the trial timers. Run it with -race -count=20.
func TestOnChangeConcurrentAppliesAndRollbacks(t *testing.T) {
	cp := generated(t).ControlPlane
	m, clk, _, _ := newManager(t)
	boot(t, m, withHostname(t, cp, "boot"))
	var rec recorder
	m.OnChange = rec.record

	const workers, rounds = 3, 4
	var docs [workers][rounds][]byte
	for w := range workers {
		for r := range rounds {
			docs[w][r] = withHostname(t, cp, fmt.Sprintf("w%d-r%d", w, r))
		}
	}
	// Each worker applies, then fires the pending trial timer: its rollback races with the
	// other workers' applies.
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for r := range rounds {
				mode := ModeNoReboot
				if (w+r)%2 == 0 {
					mode = ModeTry
				}
				if _, err := m.Apply(docs[w][r], mode, false, time.Second); err != nil {
					t.Error(err)
					return
				}
				clk.Advance(time.Second)
			}
		})
	}
	wg.Wait()
	// A trial may still be pending: roll it back too, and wait until that is reported.
	clk.Advance(time.Second)
	waitFor(t, func() bool {
		m.mu.Lock()
		defer m.mu.Unlock()
		return m.tryTimer == nil
	})
	waitFor(t, func() bool {
		_, v := m.Active()
		calls := rec.all()
		return len(calls) > 0 && calls[len(calls)-1].version == v
	})
	checkConverged(t, m, rec.all())
}

// TestRebootNeedJudgedAgainstTheRunningConfig: after an apply that waits for a reboot, a
// later no-reboot apply that keeps the same change still needs the reboot (it was judged
// against the stored configuration, and went live without one).
func TestRebootNeedJudgedAgainstTheRunningConfig(t *testing.T) {
	m, _, _, _ := newManager(t)
	cp := generated(t).ControlPlane
	boot(t, m, withHostname(t, cp, "boot"))
	running, _ := m.Active()
	otherCluster := func(host string) []byte {
		c := *cp
		c.Cluster.ID = "another-cluster-id"
		c.Machine.Network.Hostname = host
		return marshal(t, &c)
	}
	res, err := m.Apply(otherCluster("boot"), ModeAuto, false, 0)
	if err != nil || !res.RebootNeeded {
		t.Fatalf("a cluster identity change: %+v, %v; want a reboot", res, err)
	}
	// The same change again, with a harmless edit, without a reboot: refused.
	if _, err := m.Apply(otherCluster("renamed"), ModeNoReboot, false, 0); !errors.Is(err, ErrNeedsReboot) {
		t.Fatalf("no-reboot apply of a change that waits for a reboot: %v", err)
	}
	if _, err := m.Apply(withHostname(t, cp, "boot"), ModeTry, false, 0); err == nil {
		t.Fatal("a try while a reboot is pending was accepted")
	}
	if now, _ := m.Active(); now != running {
		t.Error("the running configuration changed without a reboot")
	}
}
