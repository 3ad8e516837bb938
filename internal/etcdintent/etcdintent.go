// Package etcdintent owns a control-plane node's decision about its etcd member: start a
// new cluster here (bootstrap) or be added to the cluster's existing etcd (join). One
// Keeper decides (a bootstrap and a join of the same node never both win), records the
// decision in one file of the node's state directory so that it outlives a reboot, tells
// its reader when it changed, and forgets it on reset. Nothing else writes or reads that
// file: the node's controllers see the decision through the Keeper.
package etcdintent

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/plinthos/plinth/internal/atomicfile"
)

// Role is the node's part in the cluster's etcd.
type Role string

// The roles.
const (
	// RoleNone: nothing decided yet; the node waits for a bootstrap or a join.
	RoleNone Role = ""
	// RoleBootstrap: etcd starts here as a new, one-member cluster.
	RoleBootstrap Role = "bootstrap"
	// RoleJoin: this node was added to the cluster's etcd; it starts with the join's
	// initial cluster.
	RoleJoin Role = "join"
	// RoleMember: no decision is recorded, yet the node holds etcd data (a member from
	// before, whose record was lost): etcd runs from its data.
	RoleMember Role = "member"
	// RoleRecovering: the node's etcd data is being replaced by a snapshot's; etcd must not
	// run. A recovery that ends records RoleBootstrap (or puts back the role before it);
	// one cut short by a crash leaves this role, and etcd stays down until a recovery runs
	// again.
	RoleRecovering Role = "recovering"
	// RoleRejoining: the node's etcd data belongs to no member of the cluster's etcd (a
	// recovery elsewhere made a new cluster); etcd must not run while the data is moved
	// aside, after which the node joins afresh (RoleNone).
	RoleRejoining Role = "rejoining"
	// RoleLost: the node bootstrapped or joined etcd and etcd wrote its data here, but the
	// data directory is gone (a wiped or new disk). etcd must not run: started on an empty
	// directory it would make a new, empty cluster (a bootstrapped node) or take a member's
	// place without its log (a joined one). The node rejoins once another control plane
	// serves the cluster's etcd, or is recovered from a snapshot.
	RoleLost Role = "lost"
	// RoleLeft: the node removed its own member from the cluster's etcd (plinthctl etcd
	// leave), before a reset or its retirement: etcd must not run, and the node does not
	// join again until it is reset.
	RoleLeft Role = "left"
)

// Intent is the decision.
type Intent struct {
	Role Role `json:"role"`
	// InitialCluster is etcd's --initial-cluster of a join: name=peerURL, comma-separated.
	InitialCluster string `json:"initialCluster,omitempty"`
	// Decided is when the role was decided (zero for RoleNone and RoleMember).
	Decided time.Time `json:"decided,omitzero"`
	// Started records that etcd wrote its data here under this role: from then on, a
	// missing data directory means the data was lost (RoleLost), not that etcd has yet to
	// start.
	Started bool `json:"started,omitempty"`
}

// ErrAlreadyBootstrapped is returned (wrapped, with the reason) when a bootstrap comes
// after this node's etcd was decided.
var ErrAlreadyBootstrapped = errors.New("already bootstrapped")

// ErrUnsure is returned (wrapped) when a bootstrap cannot tell yet whether the cluster
// was bootstrapped elsewhere; the caller may try again.
var ErrUnsure = errors.New("cannot tell yet whether the cluster is bootstrapped")

// ErrDecided is returned (wrapped) by Join when the node's etcd was decided meanwhile.
var ErrDecided = errors.New("this node's etcd is decided already")

// Keeper decides, records and publishes the node's Intent.
type Keeper struct {
	path    string // the record
	dataDir string // etcd's data directory on the host
	now     func() time.Time
	changed chan struct{}

	// mu makes a bootstrap, a join and a reset take turns.
	mu  sync.Mutex
	cur Intent // the record's content (never RoleMember)
	// seen is the role Refresh saw last.
	seen Role
	// replacing is set while Recover or Rejoin stops etcd and replaces its data, without mu.
	replacing bool
}

// Open reads the record at path (a missing one is RoleNone). dataDir is etcd's data
// directory: a member there without a record reads as RoleMember.
func Open(path, dataDir string, now func() time.Time) (*Keeper, error) {
	k := &Keeper{path: path, dataDir: dataDir, now: now, changed: make(chan struct{}, 1)}
	data, err := os.ReadFile(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return k, nil
	case err != nil:
		return nil, fmt.Errorf("read the etcd intent: %w", err)
	}
	if err := json.Unmarshal(data, &k.cur); err != nil {
		return nil, fmt.Errorf("read the etcd intent %s: %w", path, err)
	}
	switch k.cur.Role {
	case RoleBootstrap, RoleJoin, RoleRecovering, RoleRejoining, RoleLeft:
	default:
		return nil, fmt.Errorf("read the etcd intent %s: unknown role %q", path, k.cur.Role)
	}
	if k.cur.Role == RoleJoin && k.cur.InitialCluster == "" {
		return nil, fmt.Errorf("read the etcd intent %s: a join without its initial cluster", path)
	}
	if _, err := k.Refresh(); err != nil {
		return nil, err
	}
	return k, nil
}

// Refresh looks at etcd's data directory: it records that etcd started under the node's
// role once the directory holds a member (and reports whether it recorded that now), and
// signals a change when the data appeared or vanished since the last look. The node calls
// it while it runs (and Open does), so that a later loss of the data is told from a first
// start, and its controllers learn of the loss.
func (k *Keeper) Refresh() (bool, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if (k.cur.Role == RoleBootstrap || k.cur.Role == RoleJoin) && !k.cur.Started && k.holdsData() {
		in := k.cur
		in.Started = true
		return true, k.set(in)
	}
	if role := k.current().Role; role != k.seen {
		k.seen = role
		k.signal()
	}
	return false, nil
}

// Current returns the decision.
func (k *Keeper) Current() Intent {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.current()
}

func (k *Keeper) current() Intent {
	switch {
	case k.cur.Role == RoleNone && k.holdsData():
		return Intent{Role: RoleMember}
	case k.cur.Started && !k.holdsData():
		return Intent{Role: RoleLost, Decided: k.cur.Decided}
	}
	return k.cur
}

// Changed is signalled after each change of the decision; a reader calls Current then.
// One signal may stand for several changes.
func (k *Keeper) Changed() <-chan struct{} { return k.changed }

func (k *Keeper) holdsData() bool {
	_, err := os.Stat(filepath.Join(k.dataDir, "member"))
	return err == nil
}

// set records in and signals the change; k.mu is held.
func (k *Keeper) set(in Intent) error {
	if in.Role == RoleNone {
		if err := os.Remove(k.path); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("forget the etcd intent: %w", err)
		}
	} else {
		data, err := json.Marshal(in)
		if err != nil {
			return err
		}
		if err := os.MkdirAll(filepath.Dir(k.path), 0o700); err != nil {
			return err
		}
		if err := atomicfile.Write(k.path, append(data, '\n'), 0o600); err != nil {
			return fmt.Errorf("record the etcd intent: %w", err)
		}
	}
	k.cur = in
	k.seen = k.current().Role
	k.signal()
	return nil
}

func (k *Keeper) signal() {
	select {
	case k.changed <- struct{}{}:
	default: // a signal is pending: the reader sees the newest decision
	}
}

// Bootstrap decides that etcd starts here as a new cluster, unless it was decided
// already (ErrAlreadyBootstrapped), a join is deciding right now (ErrUnsure), or
// clusterAbsent does not say for sure that no cluster exists yet (its error is returned:
// wrap ErrAlreadyBootstrapped or ErrUnsure in it). clusterAbsent runs while no join can
// decide.
func (k *Keeper) Bootstrap(ctx context.Context, clusterAbsent func(context.Context) error) error {
	if !k.mu.TryLock() {
		return fmt.Errorf("%w: this node is adding itself to an etcd cluster it found through the cluster's API right now (see plinthctl logs etcd-join)", ErrUnsure)
	}
	defer k.mu.Unlock()
	switch cur := k.current(); cur.Role {
	case RoleMember:
		return fmt.Errorf("%w: this node already holds etcd data (it is a member of a cluster); a cluster is bootstrapped once, and further control-plane nodes join it by themselves", ErrAlreadyBootstrapped)
	case RoleJoin:
		return fmt.Errorf("%w: this node joined the cluster's etcd, which was bootstrapped on another control-plane node; a cluster is bootstrapped once", ErrAlreadyBootstrapped)
	case RoleBootstrap:
		return fmt.Errorf("%w: this node was bootstrapped already; etcd is starting or running here (see plinthctl services and plinthctl logs kubelet)", ErrAlreadyBootstrapped)
	case RoleRecovering:
		return fmt.Errorf("%w: this node's etcd is being recovered from a snapshot, or a recovery was cut short: run bootstrap --recover-from again", ErrAlreadyBootstrapped)
	case RoleRejoining:
		return fmt.Errorf("%w: this node is moving aside etcd data of a cluster that no longer exists, and then joins the cluster's etcd by itself", ErrAlreadyBootstrapped)
	case RoleLeft:
		return fmt.Errorf("%w: this node left the cluster's etcd (plinthctl etcd leave); reset it (plinthctl reset) before it bootstraps or joins again", ErrAlreadyBootstrapped)
	case RoleLost:
		return fmt.Errorf("%w: this node was a member of the cluster's etcd and its etcd data is gone; it rejoins by itself once another control-plane node serves etcd, and if none does, recover etcd from a snapshot (plinthctl bootstrap --recover-from SNAPSHOT)", ErrAlreadyBootstrapped)
	}
	if err := clusterAbsent(ctx); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	return k.set(Intent{Role: RoleBootstrap, Decided: k.now().UTC()})
}

// Join decides that this node is a member of the cluster's existing etcd: add adds it
// (as a learner) and returns etcd's initial cluster. It fails with ErrDecided, without
// calling add, when the node's etcd was decided already. add runs while no bootstrap of
// this node can decide.
func (k *Keeper) Join(ctx context.Context, add func(context.Context) (initialCluster string, err error)) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	if cur := k.current(); cur.Role != RoleNone {
		return fmt.Errorf("%w (%s)", ErrDecided, cur.Role)
	}
	initial, err := add(ctx)
	if err != nil {
		return err
	}
	if initial == "" {
		return errors.New("join: the cluster returned no initial cluster")
	}
	return k.set(Intent{Role: RoleJoin, InitialCluster: initial, Decided: k.now().UTC()})
}

// UpdateJoin replaces the initial cluster of a join whose etcd has not started yet (the
// members changed meanwhile); it reports whether anything changed. It does nothing for
// any other role.
func (k *Keeper) UpdateJoin(initialCluster string) (bool, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.cur.Role != RoleJoin || initialCluster == "" || k.cur.InitialCluster == initialCluster {
		return false, nil
	}
	in := k.cur
	in.InitialCluster = initialCluster
	return true, k.set(in)
}

// Recover replaces this node's etcd data with a snapshot's and makes it a new one-member
// cluster. It records RoleRecovering (so that etcd stops), waits with stopped until etcd is
// down, moves the data directory aside (to the returned path; nothing is deleted), and
// calls restore to write a new data directory at dataDir. Then it records RoleBootstrap,
// and etcd starts from the restored data. If stopped or restore fails, the data and the
// role from before are put back.
//
// The lock is not held while etcd stops and the snapshot is restored (the node's
// controllers read the role meanwhile); a bootstrap or a join is refused then, and so is a
// second recovery or a rejoin.
func (k *Keeper) Recover(ctx context.Context, stopped func(context.Context) error, restore func(ctx context.Context, dataDir string) error) (string, error) {
	return k.replace(ctx, RoleRecovering, "before-recovery", stopped, restore,
		Intent{Role: RoleBootstrap, Started: true})
}

// Rejoin moves aside etcd data that belongs to no member of the cluster's etcd (the
// cluster was recovered from a snapshot elsewhere, and this node was not part of it), and
// forgets the node's role, so that it joins the cluster afresh. The caller makes sure of
// that first: the cluster's etcd answers and lists no member at this node's peer URL, and
// this node's etcd does not serve. Like Recover, it records RoleRejoining so that etcd
// stops, waits with stopped, and puts everything back if that fails. The data's new path
// is returned ("" if there was none: the data was lost).
func (k *Keeper) Rejoin(ctx context.Context, stopped func(context.Context) error) (string, error) {
	return k.replace(ctx, RoleRejoining, "before-rejoin", stopped, nil, Intent{})
}

// replace stops etcd (recording during), moves its data aside to dataDir.SUFFIX-TIME,
// lets fill write new data (if not nil), then records after (stamped now).
func (k *Keeper) replace(ctx context.Context, during Role, suffix string, stopped func(context.Context) error, fill func(ctx context.Context, dataDir string) error, after Intent) (string, error) {
	k.mu.Lock()
	if k.replacing {
		k.mu.Unlock()
		return "", errors.New("a recovery or a rejoin of this node's etcd is under way")
	}
	before := k.cur
	if before.Role == RoleRecovering || before.Role == RoleRejoining {
		before = Intent{} // cut short by a crash: the role before it is unknown
	}
	if err := k.set(Intent{Role: during, Decided: k.now().UTC()}); err != nil {
		k.mu.Unlock()
		return "", err
	}
	k.replacing = true
	k.mu.Unlock()
	defer func() {
		k.mu.Lock()
		k.replacing = false
		k.mu.Unlock()
	}()
	putBack := func(err error) (string, error) {
		k.mu.Lock()
		defer k.mu.Unlock()
		if serr := k.set(before); serr != nil {
			err = fmt.Errorf("%w; putting back the etcd intent failed too: %v", err, serr)
		}
		return "", err
	}
	if err := stopped(ctx); err != nil {
		return putBack(fmt.Errorf("etcd did not stop: %w", err))
	}
	aside := ""
	// An empty data directory (a node that lost its data makes a new one at boot) is
	// removed; one with content is moved aside.
	if err := os.Remove(k.dataDir); err != nil && !errors.Is(err, fs.ErrNotExist) {
		stamp := k.now().UTC().Format("20060102T150405Z")
		aside = fmt.Sprintf("%s.%s-%s", k.dataDir, suffix, stamp)
		for i := 2; ; i++ { // an earlier one in the same second
			if _, err := os.Lstat(aside); errors.Is(err, fs.ErrNotExist) {
				break
			}
			aside = fmt.Sprintf("%s.%s-%s-%d", k.dataDir, suffix, stamp, i)
		}
		if err := os.Rename(k.dataDir, aside); err != nil {
			return putBack(fmt.Errorf("move etcd's data aside: %w", err))
		}
	}
	if fill != nil {
		if err := fill(ctx, k.dataDir); err != nil {
			if rerr := os.RemoveAll(k.dataDir); rerr != nil {
				err = fmt.Errorf("%w; removing the half-written data failed too: %v", err, rerr)
			} else if aside != "" {
				if rerr := os.Rename(aside, k.dataDir); rerr != nil {
					err = fmt.Errorf("%w; moving the old data back from %s failed too: %v", err, aside, rerr)
				}
			}
			return putBack(err)
		}
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	if after.Role != RoleNone {
		after.Decided = k.now().UTC()
	}
	return aside, k.set(after)
}

// Left records that the node removed its own member from the cluster's etcd: etcd stays
// down, and the node does not join again, until a reset.
func (k *Keeper) Left() error {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.set(Intent{Role: RoleLeft, Decided: k.now().UTC()})
}

// Reset forgets the decision and removes etcd's data: the node may be bootstrapped or
// join afresh.
func (k *Keeper) Reset() error {
	k.mu.Lock()
	defer k.mu.Unlock()
	if err := os.RemoveAll(k.dataDir); err != nil {
		return fmt.Errorf("remove etcd's data: %w", err)
	}
	return k.set(Intent{})
}
