package machined

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/plinthos/plinth/internal/controllers"
	"github.com/plinthos/plinth/internal/events"
	"github.com/plinthos/plinth/internal/healthgate"
	"github.com/plinthos/plinth/internal/k8s/certs"
	"github.com/plinthos/plinth/internal/k8s/kubeclient"
	"github.com/plinthos/plinth/internal/k8s/paths"
	"github.com/plinthos/plinth/internal/machineapi"
	"github.com/plinthos/plinth/internal/osimage"
	"github.com/plinthos/plinth/internal/osimage/artifact"
	"github.com/plinthos/plinth/internal/resources"
	"github.com/plinthos/plinth/internal/service"
	"github.com/plinthos/plinth/internal/slots"
	"github.com/plinthos/plinth/internal/upgrade"
	"github.com/plinthos/plinth/internal/version"
)

// slotted is a platform whose installed machine boots from A/B root slots (metal).
type slotted interface {
	// Slots returns the boot disk's slots, or machineapi.ErrNoSlots when the machine runs
	// from its install media.
	Slots() (slots.Disk, error)
}

// GateTimeout bounds the trial boot's health gate: a trial whose services are not all
// running and healthy by then is rolled back.
const GateTimeout = 10 * time.Minute

// gateSettle is how long the services must stay healthy for the gate to pass, so that a
// service that starts and then crashes does not get the slot committed.
const gateSettle = 10 * time.Second

// upgrader implements machineapi.Upgrader on a slotted platform, and the trial boot's
// health gate, commit and rollback report.
type upgrader struct {
	n       *node
	p       slotted
	mu      sync.Mutex // one upgrade or rollback at a time
	changed chan struct{}
}

func newUpgrader(n *node, p slotted) *upgrader {
	return &upgrader{n: n, p: p, changed: make(chan struct{}, 1)}
}

func (u *upgrader) notify() {
	select {
	case u.changed <- struct{}{}:
	default:
	}
}

// controller publishes the UpgradeStatus resource.
func (u *upgrader) controller() *controllers.Published[resources.UpgradeStatusSpec] {
	return &controllers.Published[resources.UpgradeStatusSpec]{ControllerName: "runtime.UpgradeStatus", Namespace: resources.NamespaceRuntime,
		Type: resources.UpgradeStatusType, ID: resources.DefaultID, Changed: u.changed, Read: u.status}
}

func (u *upgrader) status() (resources.UpgradeStatusSpec, bool, error) {
	var spec resources.UpgradeStatusSpec
	d, err := u.p.Slots()
	if errors.Is(err, machineapi.ErrNoSlots) {
		return spec, false, nil
	}
	if err != nil {
		return spec, false, err
	}
	u.mu.Lock() // the EFI partition is mounted by one user at a time
	defer u.mu.Unlock()
	ss, def, err := d.Slots()
	if err != nil {
		return spec, false, err
	}
	spec.Booted, spec.Default, spec.Slots = d.Booted, def, map[string]string{}
	for _, s := range ss {
		spec.Slots[s.Name] = s.Version
	}
	if spec.Armed, err = d.Armed(); err != nil {
		return spec, false, err
	}
	rec, ok, err := upgrade.Load(u.n.opts.StateDir)
	if err != nil {
		return spec, false, err
	}
	if ok {
		spec.Last = &resources.UpgradeRecord{From: rec.From, FromSlot: rec.FromSlot, To: rec.To, Slot: rec.Slot, State: rec.State,
			Reason: rec.Reason, Updated: rec.Updated.Format(time.RFC3339)}
	}
	return spec, true, nil
}

// Upgrade implements machineapi.Upgrader.
func (u *upgrader) Upgrade(ctx context.Context, actor string, r io.Reader, stage bool) (machineapi.UpgradeResult, error) {
	var res machineapi.UpgradeResult
	if !u.mu.TryLock() {
		return res, errors.New("another upgrade or rollback of this node is in progress")
	}
	defer u.mu.Unlock()
	d, err := u.p.Slots()
	if err != nil {
		return res, err
	}
	dir := u.n.opts.StateDir
	prev, hasPrev, err := upgrade.Load(dir)
	if err != nil {
		return res, err
	}
	if hasPrev && prev.State == upgrade.Trying && d.Booted == prev.Slot {
		return res, fmt.Errorf("this boot is the trial of %s, not committed yet: wait until it is committed or rolled back (plinthctl get upgradestatus)", prev.To)
	}
	if armed, err := d.Armed(); err != nil {
		return res, err
	} else if armed != "" {
		// A new upgrade replaces one staged and not booted yet; its record says so, so
		// that a failure of the new one is not reported at the next boot as the staged
		// one's rollback.
		if err := d.Disarm(); err != nil {
			return res, err
		}
		if hasPrev && prev.State == upgrade.Armed {
			prev.State = upgrade.Superseded
			if err := upgrade.Save(dir, prev, time.Now()); err != nil {
				return res, err
			}
		}
	}
	profile := osimage.ProfileOS
	if u.n.platform.Kubernetes() {
		profile = osimage.ProfileK8s
	}
	u.n.events.Publish(events.Event{ActorID: actor, Type: "upgrade", Message: "upgrade: receiving the artifact and writing the other slot"})
	m, slot, err := d.Stage(ctx, r, func(m artifact.Manifest) error {
		if m.Profile != profile {
			return fmt.Errorf("the artifact is the %s profile of the OS image and this node runs the %s profile: build the artifact with the node's profile (make image-os for os, make image-os-k8s for k8s)", m.Profile, profile)
		}
		u.n.log.Info("upgrade: writing the other slot", "version", m.Version, "slot", slots.Other(d.Booted))
		return nil
	})
	if err != nil {
		u.n.events.Publish(events.Event{ActorID: actor, Type: "upgrade", Message: "upgrade failed, nothing armed: " + err.Error()})
		u.notify() // the slot may have lost its entry (Stage drops it before it writes)
		return res, err
	}
	res = machineapi.UpgradeResult{FromVersion: version.Tag, FromSlot: d.Booted, Version: m.Version, Slot: slot, Rebooting: !stage}
	rec := upgrade.Record{From: version.Tag, FromSlot: d.Booted, To: m.Version, Slot: slot, State: upgrade.Armed, Actor: actor}
	if err := upgrade.Save(dir, rec, time.Now()); err != nil {
		return res, err
	}
	if err := d.ArmTrial(slot); err != nil {
		rec.State, rec.Reason = upgrade.RolledBack, "arming the trial boot failed: "+err.Error()
		if serr := upgrade.Save(dir, rec, time.Now()); serr != nil {
			u.n.log.Error("upgrade record", "error", serr)
		}
		u.notify()
		return res, err
	}
	u.notify()
	msg := fmt.Sprintf("upgrade: %s written to slot %s and armed for one trial boot", m.Version, slot)
	u.n.events.Publish(events.Event{ActorID: actor, Type: "upgrade", Message: msg, Data: map[string]string{"version": m.Version, "slot": slot}})
	u.n.log.Info(msg)
	if !stage {
		if err := u.n.Reboot(actor); err != nil {
			return res, err
		}
	}
	return res, nil
}

// Rollback implements machineapi.Upgrader.
func (u *upgrader) Rollback(actor string) (machineapi.UpgradeResult, error) {
	var res machineapi.UpgradeResult
	if !u.mu.TryLock() {
		return res, errors.New("an upgrade or rollback of this node is in progress")
	}
	defer u.mu.Unlock()
	d, err := u.p.Slots()
	if err != nil {
		return res, err
	}
	other := slots.Other(d.Booted)
	ss, _, err := d.Slots()
	if err != nil {
		return res, err
	}
	idx := slices.IndexFunc(ss, func(s slots.Slot) bool { return s.Name == other })
	if idx < 0 || ss[idx].Version == "" {
		return res, fmt.Errorf("slot %s holds nothing to roll back to: this node was never upgraded", other)
	}
	if rec, ok, err := upgrade.Load(u.n.opts.StateDir); err != nil {
		return res, err
	} else if ok && rec.Slot == other && (rec.State == upgrade.RolledBack || rec.State == upgrade.GateFailed || rec.State == upgrade.Armed) {
		return res, fmt.Errorf("slot %s holds %s, whose upgrade did not commit (%s): it is not a version to roll back to; upgrade to a working build instead", other, rec.To, rec.State)
	}
	if err := d.Disarm(); err != nil {
		return res, err
	}
	if err := d.SetDefault(other); err != nil {
		return res, err
	}
	rec := upgrade.Record{From: version.Tag, FromSlot: d.Booted, To: ss[idx].Version, Slot: other, State: upgrade.Reverted, Actor: actor}
	if err := upgrade.Save(u.n.opts.StateDir, rec, time.Now()); err != nil {
		u.n.log.Error("upgrade record", "error", err)
	}
	u.notify()
	msg := fmt.Sprintf("rollback: slot %s (%s) is the default; rebooting into it", other, ss[idx].Version)
	u.n.events.Publish(events.Event{ActorID: actor, Type: "upgrade", Message: msg})
	u.n.log.Info(msg)
	return machineapi.UpgradeResult{FromVersion: version.Tag, FromSlot: d.Booted, Version: ss[idx].Version, Slot: other, Rebooting: true}, u.n.Reboot(actor)
}

// assess runs once per boot, once the services are started: it reports a trial that came
// back on the old slot, or runs this trial boot's health gate and commits the slot or
// reboots out of it.
func (u *upgrader) assess(ctx context.Context, log *slog.Logger) {
	d, err := u.p.Slots()
	if errors.Is(err, machineapi.ErrNoSlots) {
		return
	}
	if err != nil {
		log.Error("upgrade: the slots", "error", err)
		return
	}
	dir := u.n.opts.StateDir
	rec, ok, err := upgrade.Load(dir)
	if err != nil || !ok {
		if err != nil {
			log.Error("upgrade", "error", err)
		}
		return
	}
	u.mu.Lock()
	armed, err := d.Armed()
	u.mu.Unlock()
	if err != nil {
		log.Error("upgrade: the armed trial", "error", err)
		return
	}
	verdict, reason := upgrade.Assess(rec, d.Booted, armed)
	save := func(state, reason string) {
		rec.State, rec.Reason = state, reason
		if err := upgrade.Save(dir, rec, time.Now()); err != nil {
			log.Error("upgrade record", "error", err)
		}
		u.notify()
	}
	switch verdict {
	case upgrade.CameBack:
		msg := fmt.Sprintf("upgrade to %s rolled back: %s", rec.To, reason)
		save(upgrade.RolledBack, reason)
		log.Warn(msg)
		u.n.events.Publish(events.Event{Type: "upgrade", Message: msg, Data: map[string]string{"version": rec.To, "state": upgrade.RolledBack}})
	case upgrade.Trial:
		save(upgrade.Trying, "")
		msg := fmt.Sprintf("trial boot of %s (slot %s): waiting up to %s for every service to be running and healthy", rec.To, rec.Slot, GateTimeout)
		log.Info(msg)
		u.n.events.Publish(events.Event{Type: "upgrade", Message: msg})
		err := gate(ctx, u.n.sup.List, u.controlPlaneNotReady, GateTimeout, gateSettle)
		if ctx.Err() != nil {
			return // the node stops; the next boot decides
		}
		if err == nil {
			u.mu.Lock()
			err = d.SetDefault(rec.Slot)
			u.mu.Unlock()
			if err != nil {
				err = fmt.Errorf("commit: %w", err)
			}
		}
		if err != nil {
			reason := fmt.Sprintf("the trial boot of %s failed its health gate: %v", rec.To, err)
			save(upgrade.GateFailed, reason)
			log.Error(reason + "; rebooting into " + rec.From)
			u.n.events.Publish(events.Event{Type: "upgrade", Message: reason + "; rebooting into " + rec.From})
			_ = u.n.Reboot("upgrade-gate")
			return
		}
		save(upgrade.Committed, "")
		msg = fmt.Sprintf("upgrade to %s committed: slot %s is the default", rec.To, rec.Slot)
		log.Info(msg)
		u.n.events.Publish(events.Event{Type: "upgrade", Message: msg, Data: map[string]string{"version": rec.To, "state": upgrade.Committed}})
	}
}

// controlPlaneNotReady says why this control plane is not ready yet: its etcd member is not
// a voting member following a leader, or its API server does not answer /readyz; "" when it
// is, or the node runs no etcd.
func (u *upgrader) controlPlaneNotReady(ctx context.Context) string {
	if !u.n.platform.Kubernetes() || !u.n.runsEtcd() {
		return ""
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	st, err := etcdClient().Status(ctx)
	if err != nil {
		return "etcd: " + err.Error()
	}
	if why := healthgate.Etcd(st.Leader, st.IsLearner, st.Errors); why != "" {
		return why
	}
	api, err := kubeclient.NewFromFile(paths.PKIFile(paths.AdminKubeconfig), certs.LocalAPIServer)
	if err != nil {
		return "kube-apiserver: " + err.Error()
	}
	defer api.Close()
	if err := api.Readyz(ctx); err != nil {
		return "kube-apiserver not ready: " + err.Error()
	}
	return ""
}

// gate waits until every service is running (or finished or skipped) and none is
// unhealthy, and extra (when set) finds nothing wrong, and all stays so for settle; it
// fails with what is not after timeout.
func gate(ctx context.Context, list func() []service.Status, extra func(context.Context) string, timeout, settle time.Duration) error {
	return healthgate.Wait(ctx, timeout, settle, func(ctx context.Context) []string {
		var bad []string
		for _, st := range list() {
			health := ""
			if st.Healthy != nil && !*st.Healthy {
				health = "unhealthy"
			}
			if why := healthgate.Service(st.ID, string(st.State), health); why != "" {
				bad = append(bad, why)
			}
		}
		if len(bad) == 0 && extra != nil {
			if why := extra(ctx); why != "" {
				bad = append(bad, why)
			}
		}
		return bad
	})
}
