package machined

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"slices"
	"time"

	"github.com/plinthos/plinth/internal/etcdgw"
	"github.com/plinthos/plinth/internal/etcdintent"
	"github.com/plinthos/plinth/internal/etcdjoin"
	"github.com/plinthos/plinth/internal/k8s/kubeclient"
	"github.com/plinthos/plinth/internal/k8s/paths"
	"github.com/plinthos/plinth/internal/ports"
	"github.com/plinthos/plinth/internal/resource"
	"github.com/plinthos/plinth/internal/resources"
)

// joinRetry is how long the join waits between attempts.
const joinRetry = 5 * time.Second

// runEtcdJoin makes a control-plane node that was not bootstrapped a member of the
// cluster's etcd: it finds the members through the Kubernetes API (the API servers'
// addresses; each runs next to an etcd member), adds this node as a learner, lets etcd
// start, and promotes it to a voter once it caught up. It returns when the node is a
// voting member, or at once on the bootstrapped node.
func (n *node) runEtcdJoin(ctx context.Context, logs io.Writer) error {
	self, err := n.etcdSelf(ctx)
	if err != nil {
		return nil // stopped before the node had a name and address
	}
	for {
		role := n.etcd.Current().Role
		if role == etcdintent.RoleBootstrap {
			fmt.Fprintln(logs, "this node was bootstrapped: it started the etcd cluster, nothing to join")
			return nil
		}
		if role != etcdintent.RoleNone {
			// Joined, or a member from before whose record was lost (etcd runs from its
			// data): make sure it is a voter.
			break
		}
		joined, err := n.joinOnce(ctx, self, logs)
		if err != nil {
			return err
		}
		if joined {
			break
		}
		if !sleep(ctx, joinRetry) {
			return nil
		}
	}
	for {
		done, err := n.promoteSelf(ctx, self)
		if done {
			fmt.Fprintln(logs, "this node is a voting etcd member")
			return nil
		}
		if errors.Is(err, etcdjoin.ErrNotMember) {
			return fmt.Errorf("%w; the member was removed: reset this node (plinthctl reset --reboot) to join again", err)
		}
		var notStarted *etcdjoin.NotStartedError
		if errors.As(err, &notStarted) {
			changed, err := n.etcd.UpdateJoin(notStarted.InitialCluster)
			if err != nil {
				return err
			}
			if changed {
				fmt.Fprintf(logs, "the etcd members changed before this node's etcd started; it starts with --initial-cluster=%s\n", notStarted.InitialCluster)
			}
		}
		fmt.Fprintf(logs, "not promoted yet: %v; retrying in %s\n", err, joinRetry)
		if !sleep(ctx, joinRetry) {
			return nil
		}
	}
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
		fmt.Fprintf(logs, "%v; retrying in %s\n", err, joinRetry)
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
		fmt.Fprintf(logs, "%v; retrying in %s\n", addErr, joinRetry)
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

// callPeers runs fn against the etcd members in turn until one answers.
func callPeers(ctx context.Context, peers []*etcdgw.Client, fn func(context.Context, etcdjoin.Cluster) error) error {
	var errs []error
	for _, p := range peers {
		cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		err := fn(cctx, p)
		cancel()
		if err == nil {
			return nil
		}
		errs = append(errs, fmt.Errorf("%s: %w", p.Endpoint, err))
		var notStarted *etcdjoin.NotStartedError
		if errors.Is(err, etcdjoin.ErrNotMember) || errors.As(err, &notStarted) {
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
