package machined

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"slices"
	"time"

	"github.com/plinthos/plinth/internal/backoff"
	"github.com/plinthos/plinth/internal/etcdgw"
	"github.com/plinthos/plinth/internal/etcdintent"
	"github.com/plinthos/plinth/internal/etcdjoin"
	"github.com/plinthos/plinth/internal/k8s/kubeclient"
	"github.com/plinthos/plinth/internal/k8s/paths"
	"github.com/plinthos/plinth/internal/ports"
	"github.com/plinthos/plinth/internal/resource"
	"github.com/plinthos/plinth/internal/resources"
)

// joinRetry is the longest wait between attempts of the join (and of the promotion, and
// of the other waits of a role); the first waits half a second, each next one twice as
// long. A learner is promoted once its etcd has caught up, a second or two after it
// starts, and the next control plane may join only then (etcd allows one learner): with
// waits of up to 5 s, each of a 3-control-plane create's joins lost a few seconds there
// (docs/performance.md).
const joinRetry = 2 * time.Second

// memberCheckPeriod is how often a voting member checks that its etcd serves.
const memberCheckPeriod = 10 * time.Second

// etcdDownGrace is how long a member's etcd may not serve before the node asks the
// cluster's etcd whether it is still a member (etcd takes a while to start and to elect).
const etcdDownGrace = 30 * time.Second

// runEtcdJoin keeps this control-plane node a member of the cluster's etcd, for as long
// as it runs:
//   - a node that was not bootstrapped finds the members through the Kubernetes API (the
//     API servers' addresses; each runs next to an etcd member), adds itself as a learner,
//     lets etcd start, and promotes itself to a voter once it caught up;
//   - it records when etcd first wrote its data, so that data lost later (a wiped disk)
//     is told from a first start: etcd then stays down instead of starting a new, empty
//     cluster, and the node joins again once another member serves;
//   - a member whose etcd does not serve, and that the cluster's etcd no longer lists (a
//     recovery from a snapshot on another node made a new cluster), moves its data aside
//     and joins again.
func (n *node) runEtcdJoin(ctx context.Context, logs io.Writer) error {
	self, err := n.etcdSelf(ctx)
	if err != nil {
		return nil // stopped before the node had a name and address
	}
	var (
		voter     bool      // this node was a voting member when last asked
		downSince time.Time // since when the node's etcd has not served
		said      string    // the key of the last message, said once
		lastRole  etcdintent.Role
		retry     = backoff.New(500*time.Millisecond, joinRetry) // the waits while not a voter
	)
	// say writes msg unless the last message had the same key (a wait that goes on, whose
	// cause may read differently each time, is said once).
	say := func(key, msg string) {
		if key != said {
			fmt.Fprintln(logs, msg)
			said = key
		}
	}
	for {
		if noted, err := n.etcd.Refresh(); err != nil {
			return err
		} else if noted {
			msg := "etcd wrote its data on this node: from now on, if the data is lost, etcd stays down until this node joins again"
			say(msg, msg)
		}
		role := n.etcd.Current().Role
		if role != lastRole {
			lastRole = role
			retry.Reset()
		}
		wait := retry.Next()
		switch role {
		case etcdintent.RoleNone:
			voter, downSince = false, time.Time{}
			joined, err := n.joinOnce(ctx, self, logs)
			if err != nil {
				return err
			}
			if joined {
				said = ""
				retry.Reset()
				continue
			}
		case etcdintent.RoleRecovering, etcdintent.RoleRejoining:
			say(string(role), fmt.Sprintf("etcd's data is being replaced (%s)", role))
		case etcdintent.RoleLeft:
			say(string(role), "this node left the cluster's etcd (plinthctl etcd leave): etcd stays down until the node is reset")
		case etcdintent.RoleLost:
			voter = false
			n.rejoinLost(ctx, self, say)
		default: // bootstrapped, joined, or a member from before
			if !voter && role != etcdintent.RoleBootstrap {
				done, err := n.promoteSelf(ctx, self)
				var notStarted *etcdjoin.NotStartedError
				switch {
				case done:
					voter = true
					say("voter", "this node is a voting etcd member")
				case errors.As(err, &notStarted):
					changed, err := n.etcd.UpdateJoin(notStarted.InitialCluster)
					if err != nil {
						return err
					}
					if changed {
						fmt.Fprintf(logs, "the etcd members changed before this node's etcd started; it starts with --initial-cluster=%s\n", notStarted.InitialCluster)
					}
					fallthrough
				case err != nil && !errors.Is(err, etcdjoin.ErrNotMember):
					say("not promoted", fmt.Sprintf("not promoted yet: %v; retrying, up to every %s", err, joinRetry))
				}
			}
			if voter || role == etcdintent.RoleBootstrap {
				wait = memberCheckPeriod
			}
			if n.etcdServes(ctx) {
				downSince = time.Time{}
				break
			}
			if downSince.IsZero() {
				downSince = time.Now()
			}
			if time.Since(downSince) < etcdDownGrace {
				break
			}
			if err := n.rejoinIfOrphaned(ctx, self, say); err != nil {
				return err
			}
		}
		if !sleep(ctx, wait) {
			return nil
		}
	}
}

// etcdServes reports whether the node's etcd serves the cluster: it answers a
// linearizable read, which takes a quorum.
func (n *node) etcdServes(ctx context.Context) bool {
	sctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	_, _, err := etcdClient().MemberList(sctx)
	return err == nil
}

// rejoinLost makes a node whose etcd data was lost join again, once another member
// serves the cluster's etcd; until then it waits, and says how to recover.
func (n *node) rejoinLost(ctx context.Context, self etcdjoin.Self, say func(key, msg string)) {
	const wait = "this node's etcd data is gone (it was an etcd member): etcd stays down until another control-plane node serves the cluster's etcd, then this node joins again; if none does, recover etcd from a snapshot on one of them (plinthctl bootstrap --recover-from SNAPSHOT)"
	peers, err := n.etcdPeers(ctx, self)
	if err != nil {
		say(wait, fmt.Sprintf("%s (%v)", wait, err))
		return
	}
	if err := callPeers(ctx, peers, func(ctx context.Context, c etcdjoin.Cluster) error {
		_, _, err := c.MemberList(ctx)
		return err
	}); err != nil {
		say(wait, fmt.Sprintf("%s (%v)", wait, err))
		return
	}
	msg := "this node's etcd data is gone, and the cluster's etcd serves: joining it again"
	say(msg, msg)
	if _, err := n.etcd.Rejoin(ctx, etcdStopped); err != nil {
		msg := fmt.Sprintf("joining again failed: %v", err)
		say(msg, msg)
	}
}

// rejoinIfOrphaned moves aside the data of a member whose etcd does not serve, when the
// cluster's etcd (found through the Kubernetes API) answers and has no member at this
// node's peer URL: the data belongs to a cluster that no longer exists (etcd was
// recovered from a snapshot on another node) or to a member that was removed. The node
// then joins afresh.
func (n *node) rejoinIfOrphaned(ctx context.Context, self etcdjoin.Self, say func(key, msg string)) error {
	_, err := n.promoteSelf(ctx, self)
	if !errors.Is(err, etcdjoin.ErrNotMember) {
		return nil // a member (etcd may be slow or broken; the node's services say why), or no answer
	}
	say("orphaned", fmt.Sprintf("this node's etcd has not served for %s, and the cluster's etcd has no member at %s (etcd was recovered from a snapshot on another node, or this member was removed): moving this node's etcd data aside and joining again", etcdDownGrace, self.PeerURL))
	aside, err := n.etcd.Rejoin(ctx, etcdStopped)
	if err != nil {
		msg := fmt.Sprintf("moving the data aside failed: %v", err)
		say(msg, msg)
		return nil
	}
	if aside != "" {
		say("aside", "the old etcd data is kept in "+aside)
	}
	return nil
}

// joinOnce makes one attempt to add this node to the cluster's etcd. The node's etcd
// keeper holds the decision, so a bootstrap of this node and a join never both win: a
// bootstrap that got there first stops the join with an error (the next run of the
// service sees it).
func (n *node) joinOnce(ctx context.Context, self etcdjoin.Self, logs io.Writer) (bool, error) {
	// Finding the members needs the cluster's API: before any bootstrap it fails here,
	// before the keeper is asked.
	peers, err := n.etcdPeers(ctx, self)
	if err != nil {
		fmt.Fprintf(logs, "%v; retrying, up to every %s\n", err, joinRetry)
		return false, nil
	}
	var addErr error
	err = n.etcd.Join(ctx, func(ctx context.Context) (string, error) {
		var initial string
		addErr = callPeers(ctx, peers, func(ctx context.Context, c etcdjoin.Cluster) error {
			var err error
			initial, err = etcdjoin.AddSelf(ctx, c, self)
			return err
		})
		return initial, addErr
	})
	switch {
	case addErr != nil:
		fmt.Fprintf(logs, "%v; retrying, up to every %s\n", addErr, joinRetry)
		return false, nil
	case err != nil:
		return false, err
	}
	fmt.Fprintf(logs, "added to the cluster's etcd as a learner; etcd starts with --initial-cluster=%s\n", n.etcd.Current().InitialCluster)
	return true, nil
}

// etcdSelf waits for the node's name and address and returns its etcd member.
func (n *node) etcdSelf(ctx context.Context) (etcdjoin.Self, error) {
	for {
		host, herr := n.store.Get(resources.NamespaceNetwork, resources.HostnameType, resources.HostnameID)
		addrs, aerr := n.store.Get(resources.NamespaceNetwork, resources.NodeAddressType, resources.DefaultID)
		if herr == nil && aerr == nil {
			name := host.(*resource.Typed[resources.HostnameSpec]).TypedSpec().Hostname
			ips := addrs.(*resource.Typed[resources.NodeAddressSpec]).TypedSpec().Addresses
			if name != "" && len(ips) > 0 {
				return etcdjoin.Self{Name: name, PeerURL: ports.EtcdPeerURL(ips[0])}, nil
			}
		}
		if !sleep(ctx, time.Second) {
			return etcdjoin.Self{}, ctx.Err()
		}
	}
}

// etcdPeers returns clients of the etcd members this node can reach, found through the
// Kubernetes API at the cluster's endpoint.
func (n *node) etcdPeers(ctx context.Context, self etcdjoin.Self) ([]*etcdgw.Client, error) {
	cfg, _ := n.cfg.Current()
	endpoint := cfg.Cluster.ControlPlane.Endpoint
	actx, cancel := context.WithTimeout(ctx, 10*time.Second)
	addrs, err := kubeclient.APIServerAddresses(actx, paths.PKIFile(paths.AdminKubeconfig), endpoint)
	cancel()
	if err != nil {
		return nil, fmt.Errorf("find the etcd members through the Kubernetes API at %s (it answers once a control-plane node was bootstrapped): %w", endpoint, err)
	}
	selfHost := ""
	if h, _, err := net.SplitHostPort(self.PeerURL[len("https://"):]); err == nil {
		selfHost = h
	}
	if len(addrs) == 0 {
		// The first API server writes its address a moment after it serves.
		return nil, fmt.Errorf("the Kubernetes API at %s lists no API server yet", endpoint)
	}
	addrs = slices.DeleteFunc(addrs, func(a string) bool { return a == selfHost })
	if len(addrs) == 0 {
		return nil, fmt.Errorf("the Kubernetes API at %s lists no API server but this node's", endpoint)
	}
	var clients []*etcdgw.Client
	for _, a := range addrs {
		clients = append(clients, etcdClientAt(a))
	}
	return clients, nil
}

// peerCallTimeout bounds one call to an etcd member. A membership change that etcd's raft
// drops never answers: raft takes one change at a time and ignores one proposed before
// the last is applied, as when two control planes ask to be added at the same moment
// (etcdjoin.AddSelf sees that from the member list and gives up at once; this bound is
// for the calls that have no such sign).
const peerCallTimeout = 10 * time.Second

// callPeers runs fn against the etcd members in turn until one answers.
func callPeers(ctx context.Context, peers []*etcdgw.Client, fn func(context.Context, etcdjoin.Cluster) error) error {
	var errs []error
	for _, p := range peers {
		cctx, cancel := context.WithTimeout(ctx, peerCallTimeout)
		err := fn(cctx, p)
		cancel()
		if err == nil {
			return nil
		}
		errs = append(errs, fmt.Errorf("%s: %w", p.Endpoint, err))
		var notStarted *etcdjoin.NotStartedError
		if errors.Is(err, etcdjoin.ErrNotMember) || errors.Is(err, etcdjoin.ErrAddDropped) || errors.As(err, &notStarted) {
			// The cluster's membership answered: another member would say the same.
			break
		}
	}
	return errors.Join(errs...)
}

func (n *node) promoteSelf(ctx context.Context, self etcdjoin.Self) (bool, error) {
	peers, err := n.etcdPeers(ctx, self)
	if err != nil {
		return false, err
	}
	done := false
	err = callPeers(ctx, peers, func(ctx context.Context, c etcdjoin.Cluster) error {
		var err error
		done, err = etcdjoin.Promote(ctx, c, self)
		return err
	})
	if errors.Is(err, etcdjoin.ErrNotMember) {
		return false, etcdjoin.ErrNotMember
	}
	return done, err
}

// sleep waits d or until ctx ends; it reports whether the wait ran its course.
func sleep(ctx context.Context, d time.Duration) bool {
	select {
	case <-ctx.Done():
		return false
	case <-time.After(d):
		return true
	}
}
