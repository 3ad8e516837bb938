package localcluster

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/backoff"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/plinthos/plinth/internal/health"
	"github.com/plinthos/plinth/internal/kubeconfig"
	"github.com/plinthos/plinth/internal/provision"
	"github.com/plinthos/plinth/pkg/api/machine"
	"github.com/plinthos/plinth/pkg/client"
	"github.com/plinthos/plinth/pkg/clientconfig"
)

// Pacing of the wait for the node API and the bootstrap.
var (
	waitInterval   = time.Second
	attemptTimeout = 5 * time.Second
	// dotsPerLine ends a line of progress dots with the time waited so far.
	dotsPerLine = 30
)

// HealthCheck waits until the cluster that the admin kubeconfig reaches (through server
// when set) is healthy as expect says, printing each check as it passes to w.
type HealthCheck func(ctx context.Context, kubeconfig []byte, server string, expect health.Expect, w io.Writer) error

// DefaultHealthCheck is the HealthCheck of internal/health: every check of
// health.Client.Checks, waited for with health.Wait.
func DefaultHealthCheck(ctx context.Context, kubeconfig []byte, server string, expect health.Expect, w io.Writer) error {
	c, err := health.NewClient(kubeconfig, server)
	if err != nil {
		return err
	}
	return health.Wait(ctx, c.Checks(expect), w)
}

// WaitOptions say how Wait waits.
type WaitOptions struct {
	// Timeout bounds the wait for the node API and the bootstrap, and then the health
	// wait; zero means DefaultWaitTimeout.
	Timeout time.Duration
	// KubeconfigPath is the kubeconfig where the cluster's admin context is merged; empty
	// means kubeconfig.DefaultPath().
	KubeconfigPath string
	// CheckHealth replaces the health wait; nil means DefaultHealthCheck.
	CheckHealth HealthCheck
	// Progress receives the lines of progress; nil discards them.
	Progress io.Writer
}

// Wait brings up a cluster whose nodes have started: it waits until the first control
// plane's node API answers (through its published port, with the client context cc),
// bootstraps the cluster there (a cluster bootstrapped before is no error), merges an
// admin kubeconfig whose context is named after the cluster into the user's kubeconfig,
// made current, and waits until the cluster is healthy.
func Wait(ctx context.Context, c *provision.Cluster, cc *clientconfig.Context, opts WaitOptions) error {
	var merged *kubeconfigMerge
	return wait(ctx, c, cc, opts, &merged)
}

// wait is Wait, recording the kubeconfig merge in merged so that a failed Create can undo
// it.
func wait(ctx context.Context, c *provision.Cluster, cc *clientconfig.Context, opts WaitOptions, merged **kubeconfigMerge) error {
	out := progress(opts.Progress)
	if opts.Timeout <= 0 {
		opts.Timeout = DefaultWaitTimeout
	}
	first := c.FirstControlPlane()
	if first == nil || first.APIEndpoint() == "" {
		return fmt.Errorf("cluster %q has no control plane with a published node API port", c.Name)
	}
	endpoint := first.APIEndpoint()
	if c.NoKubernetes {
		// Nothing to bootstrap and no Kubernetes to be healthy: the nodes are up once their
		// APIs answer.
		return waitNodesUp(ctx, out, c, cc, opts.Timeout)
	}
	if err := waitAndBootstrap(ctx, out, cc, endpoint, first.Name, opts.Timeout); err != nil {
		return err
	}
	return waitHealthy(ctx, out, c, cc, endpoint, opts, merged)
}

// dialNode connects to the node API at endpoint, reconnecting quickly: the node comes up
// within seconds, and gRPC's default backoff grows to two minutes.
func dialNode(cc *clientconfig.Context, endpoint string) (*client.Client, error) {
	return client.New(cc, endpoint, grpc.WithConnectParams(grpc.ConnectParams{
		Backoff:           backoff.Config{BaseDelay: 200 * time.Millisecond, Multiplier: 1.6, Jitter: 0.2, MaxDelay: 2 * time.Second},
		MinConnectTimeout: attemptTimeout,
	}))
}

// waitNodesUp waits until the node API of every node answers Version, all within
// timeout: at the node's own endpoint when the host reaches it there, else through the
// first control plane, addressed to the node.
func waitNodesUp(ctx context.Context, out io.Writer, c *provision.Cluster, cc *clientconfig.Context, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	nodes := slices.Clone(c.Nodes)
	slices.SortStableFunc(nodes, provision.SortKey)
	first := c.FirstControlPlane()
	start := time.Now()
	for _, n := range nodes {
		endpoint, target := n.APIEndpoint(), ""
		if endpoint == "" {
			endpoint, target = first.APIEndpoint(), n.IP
		}
		if err := waitVersion(ctx, out, cc, endpoint, target, n.Name, start, timeout); err != nil {
			return err
		}
	}
	return nil
}

// waitVersion waits until the node API at endpoint (forwarding to target when set) answers
// Version, printing a dot per failed try; start is when the wait began, for the message.
func waitVersion(ctx context.Context, out io.Writer, cc *clientconfig.Context, endpoint, target, node string, start time.Time, timeout time.Duration) error {
	c, err := dialNode(cc, endpoint)
	if err != nil {
		return fmt.Errorf("connect to the node API of %s: %w", node, err)
	}
	defer c.Close()
	via := endpoint
	if target != "" {
		via += " (to " + target + ")"
	}
	fmt.Fprintf(out, "waiting for the node API of %s on %s ", node, via)
	var v *machine.VersionResponse
	err = retry(ctx, out, start, func(ctx context.Context) error {
		if target != "" {
			ctx = client.WithNode(ctx, target)
		}
		var err error
		v, err = c.Machine.Version(ctx, &machine.VersionRequest{})
		return err
	}, func(error) bool { return true })
	if err != nil {
		fmt.Fprintln(out)
		if errors.Is(err, context.Canceled) {
			return fmt.Errorf("interrupted while waiting for the node API of %s: %w", node, err)
		}
		return fmt.Errorf("the node API of %s did not answer within %s: %w", node, timeout, err)
	}
	fmt.Fprintf(out, " up after %s (%s %s)\n", time.Since(start).Round(time.Second), v.Hostname, v.Tag)
	return nil
}

// waitAndBootstrap waits until the node API at endpoint answers Version, then calls
// Bootstrap there, retrying while the node is unreachable, all within timeout.
func waitAndBootstrap(ctx context.Context, out io.Writer, cc *clientconfig.Context, endpoint, node string, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	start := time.Now()
	if err := waitVersion(ctx, out, cc, endpoint, "", node, start, timeout); err != nil {
		return err
	}
	c, err := dialNode(cc, endpoint)
	if err != nil {
		return fmt.Errorf("connect to the node API of %s: %w", node, err)
	}
	defer c.Close()

	fmt.Fprintf(out, "bootstrapping the cluster on %s ", node)
	var resp *machine.BootstrapResponse
	err = retry(ctx, out, start, func(ctx context.Context) error {
		var err error
		resp, err = c.Machine.Bootstrap(ctx, &machine.BootstrapRequest{})
		return err
	}, func(err error) bool {
		code := status.Code(err)
		return code == codes.Unavailable || code == codes.DeadlineExceeded
	})
	switch {
	case status.Code(err) == codes.AlreadyExists:
		// A retry after a lost answer, or a node that was bootstrapped before.
		fmt.Fprintf(out, "\n%s: %s\n", node, status.Convert(err).Message())
		return nil
	case err != nil:
		fmt.Fprintln(out)
		return fmt.Errorf("bootstrap %s: %w", node, client.Describe(err))
	}
	fmt.Fprintf(out, "\n%s: %s\n", node, resp.Message)
	return nil
}

// retry calls fn every waitInterval, each call bounded by attemptTimeout, until it
// succeeds, fails with an error that again refuses, or ctx ends (the last error is
// returned). It prints a dot per failed attempt.
func retry(ctx context.Context, out io.Writer, start time.Time, fn func(context.Context) error, again func(error) bool) error {
	dots := 0
	for {
		actx, cancel := context.WithTimeout(ctx, attemptTimeout)
		err := fn(actx)
		cancel()
		if err == nil || !again(err) {
			return err
		}
		fmt.Fprint(out, ".")
		if dots++; dots%dotsPerLine == 0 {
			fmt.Fprintf(out, " %s\n", time.Since(start).Round(time.Second))
		}
		t := time.NewTimer(waitInterval)
		select {
		case <-ctx.Done():
			t.Stop()
			if errors.Is(ctx.Err(), context.Canceled) {
				return ctx.Err()
			}
			return client.Describe(err)
		case <-t.C:
		}
	}
}

// waitHealthy merges an admin kubeconfig for the cluster (server: the Kubernetes API's
// published port) into the user's kubeconfig, recorded in merged, and waits until the
// cluster is healthy.
func waitHealthy(ctx context.Context, out io.Writer, cluster *provision.Cluster, cc *clientconfig.Context, endpoint string, opts WaitOptions, merged **kubeconfigMerge) error {
	c, err := client.New(cc, endpoint)
	if err != nil {
		return fmt.Errorf("connect to the node API on %s: %w", endpoint, err)
	}
	defer c.Close()
	resp, err := c.Machine.Kubeconfig(ctx, &machine.KubeconfigRequest{})
	if err != nil {
		return client.Describe(err)
	}
	kube := cluster.KubeEndpoint()
	if kube == "" {
		return errors.New("the cluster publishes no Kubernetes API port (see plinthctl cluster show)")
	}
	server := "https://" + kube
	data, err := kubeconfig.Rename(resp.Kubeconfig, cluster.Name, server)
	if err != nil {
		return err
	}
	path, err := kubeconfigPath(opts.KubeconfigPath)
	if err != nil {
		return err
	}
	if *merged, err = mergeKubeconfig(path, data); err != nil {
		return err
	}
	fmt.Fprintf(out, "merged kubeconfig context %q into %s\n", cluster.Name, path)
	ctx, cancel := context.WithTimeout(ctx, opts.Timeout)
	defer cancel()
	check := opts.CheckHealth
	if check == nil {
		check = DefaultHealthCheck
	}
	expect := health.Expect{Nodes: len(cluster.Nodes), ControlPlanes: len(cluster.ControlPlanes()), EtcdMembers: etcdMembersOf(c)}
	return check(ctx, data, server, expect, out)
}

// etcdMembersOf lists etcd's members through the node API, for the health check.
func etcdMembersOf(c *client.Client) func(ctx context.Context) ([]health.EtcdMember, error) {
	return func(ctx context.Context) ([]health.EtcdMember, error) {
		resp, err := c.Machine.EtcdMembers(ctx, &machine.EtcdMembersRequest{})
		if err != nil {
			return nil, client.Describe(err)
		}
		var members []health.EtcdMember
		for _, m := range resp.GetMembers() {
			members = append(members, health.EtcdMember{Name: m.GetName(), IsLearner: m.GetIsLearner()})
		}
		return members, nil
	}
}
