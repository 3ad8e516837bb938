// Package etcdjoin makes a control-plane node a member of the cluster's existing etcd: it
// adds the node as a learner (a non-voting member that cannot cost the cluster its quorum
// while it catches up), gives etcd the --initial-cluster to start with, and promotes the
// learner to a voter once etcd says it is in sync.
//
// The steps are safe to repeat: a node that added itself and then stopped finds its
// member again by peer URL instead of adding a second one.
package etcdjoin

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/plinthos/plinth/internal/etcdgw"
)

// Cluster is the etcd cluster being joined, reached through a member that already serves
// it; *etcdgw.Client implements it.
type Cluster interface {
	MemberList(ctx context.Context) (etcdgw.Header, []etcdgw.Member, error)
	AddLearner(ctx context.Context, peerURLs []string) (etcdgw.Member, []etcdgw.Member, error)
	RemoveMember(ctx context.Context, id uint64) ([]etcdgw.Member, error)
	PromoteMember(ctx context.Context, id uint64) ([]etcdgw.Member, error)
}

// Self is the joining member: its name (the node name) and peer URL.
type Self struct {
	Name    string
	PeerURL string
}

// find returns the member that serves at self's peer URL.
func find(ms []etcdgw.Member, self Self) (etcdgw.Member, bool) {
	for _, m := range ms {
		if slices.Contains(m.PeerURLs, self.PeerURL) {
			return m, true
		}
	}
	return etcdgw.Member{}, false
}

// AddSelf adds self to the cluster as a learner and returns the --initial-cluster its etcd
// must start with (every member, self included), with --initial-cluster-state=existing.
//
// A member already at self's peer URL that never started (it has no name yet) is an
// earlier attempt of this node: it is kept. One that did start belonged to this node
// before it lost its data (a reset, a new disk): it is removed and self added afresh, as
// etcd cannot take a member back without its data.
func AddSelf(ctx context.Context, c Cluster, self Self) (string, error) {
	_, ms, err := c.MemberList(ctx)
	if err != nil {
		return "", fmt.Errorf("list the etcd members: %w", err)
	}
	if m, ok := find(ms, self); ok {
		if m.Name == "" {
			return InitialCluster(ms, self), nil
		}
		if _, err := c.RemoveMember(ctx, m.ID); err != nil {
			return "", fmt.Errorf("remove this node's old etcd member %x (it holds no data any more): %w", m.ID, err)
		}
	}
	ms, err = addLearner(ctx, c, self, ms)
	if err != nil {
		return "", fmt.Errorf("add this node to etcd as a learner: %w", err)
	}
	return InitialCluster(ms, self), nil
}

// ErrAddDropped is returned by AddSelf when another node's learner was added while etcd
// had not answered this node's request: etcd's raft takes one membership change at a time
// and drops one proposed while another is pending, and the dropped request is never
// answered. The node may try again once that learner was promoted.
var ErrAddDropped = errors.New("another node was added to etcd at the same moment, and etcd dropped this node's request")

// dropCheck is how often addLearner looks at the member list while etcd has not answered.
var dropCheck = 250 * time.Millisecond

// addLearner adds self as a learner and returns the members after it. While etcd has not
// answered, it watches the member list: a learner that is neither self nor one of before
// means this request was dropped (ErrAddDropped), and waiting longer would not change that.
func addLearner(ctx context.Context, c Cluster, self Self, before []etcdgw.Member) ([]etcdgw.Member, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	type answer struct {
		ms  []etcdgw.Member
		err error
	}
	answered := make(chan answer, 1)
	go func() {
		_, ms, err := c.AddLearner(ctx, []string{self.PeerURL})
		answered <- answer{ms, err}
	}()
	tick := time.NewTicker(dropCheck)
	defer tick.Stop()
	for {
		select {
		case a := <-answered:
			return a.ms, a.err
		case <-tick.C:
		}
		_, ms, err := c.MemberList(ctx)
		if err != nil {
			continue // the add's own answer, or the context, ends the wait
		}
		other, ok := otherLearner(ms, before, self)
		if !ok {
			continue
		}
		cancel()
		if a := <-answered; a.err == nil {
			return a.ms, nil // it went through after all
		}
		return nil, fmt.Errorf("%w (learner %x)", ErrAddDropped, other.ID)
	}
}

// otherLearner returns a learner of ms that is neither self nor one of before.
func otherLearner(ms, before []etcdgw.Member, self Self) (etcdgw.Member, bool) {
	for _, m := range ms {
		if !m.IsLearner || slices.Contains(m.PeerURLs, self.PeerURL) ||
			slices.ContainsFunc(before, func(b etcdgw.Member) bool { return b.ID == m.ID }) {
			continue
		}
		return m, true
	}
	return etcdgw.Member{}, false
}

// InitialCluster formats etcd's --initial-cluster from the members: NAME=PEER_URL,... in
// etcd's order. Self's member is named after self; another member that has not started
// yet has no name and is listed under its id, so that the count matches the cluster's
// (etcd checks it) without a name clash.
func InitialCluster(ms []etcdgw.Member, self Self) string {
	var parts []string
	for _, m := range ms {
		name := m.Name
		if slices.Contains(m.PeerURLs, self.PeerURL) {
			name = self.Name
		} else if name == "" {
			name = fmt.Sprintf("unstarted-%x", m.ID)
		}
		for _, u := range m.PeerURLs {
			parts = append(parts, name+"="+u)
		}
	}
	return strings.Join(parts, ",")
}

// ErrNotMember is returned by Promote when the cluster has no member at self's peer URL
// (it was removed; the node must join again).
var ErrNotMember = errors.New("this node is not an etcd member")

// NotStartedError is returned by Promote while self's etcd has not reached the cluster
// yet (its member has no name). InitialCluster is the --initial-cluster it must start
// with, from the members now: if they changed since the join, etcd refuses the old one.
type NotStartedError struct {
	InitialCluster string
}

func (e *NotStartedError) Error() string {
	return "this node's etcd has not reached the cluster yet"
}

// Promote makes self a voting member. It returns true once self is a voter (promoted now
// or before), false with a *NotStartedError before self's etcd started, or with etcd's
// refusal while the learner is still catching up: call again later.
func Promote(ctx context.Context, c Cluster, self Self) (bool, error) {
	_, ms, err := c.MemberList(ctx)
	if err != nil {
		return false, fmt.Errorf("list the etcd members: %w", err)
	}
	m, ok := find(ms, self)
	if !ok {
		return false, fmt.Errorf("%w: no member serves at %s", ErrNotMember, self.PeerURL)
	}
	if m.Name == "" {
		return false, &NotStartedError{InitialCluster: InitialCluster(ms, self)}
	}
	if !m.IsLearner {
		return true, nil
	}
	if _, err := c.PromoteMember(ctx, m.ID); err != nil {
		return false, fmt.Errorf("promote learner %x: %w", m.ID, err)
	}
	return true, nil
}
