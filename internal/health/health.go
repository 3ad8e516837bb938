// Package health checks that a Kubernetes cluster of Plinth nodes is healthy, from the
// outside, with an admin kubeconfig: etcd and the API server ready, every node Ready, the
// control-plane static pods running, and the cluster's add-ons (kube-proxy, the CNI,
// CoreDNS) ready. Each check can be waited for, reporting progress.
package health

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/plinthos/plinth/internal/k8s/kubeclient"
	"github.com/plinthos/plinth/internal/k8s/objects"
	"github.com/plinthos/plinth/internal/k8s/render"
)

// Client talks to the Kubernetes API with a kubeconfig's current context.
type Client struct {
	kube *kubeclient.Client
}

// NewClient builds a client from kubeconfig bytes; server, when set, replaces the
// kubeconfig's server URL.
func NewClient(kubeconfig []byte, server string) (*Client, error) {
	kube, err := kubeclient.New(kubeconfig, server)
	if err != nil {
		return nil, err
	}
	return &Client{kube: kube}, nil
}

// Check is one named condition.
type Check struct {
	Name string
	Run  func(ctx context.Context) error
}

// Expect describes the cluster being checked.
type Expect struct {
	// Nodes is how many nodes must be Ready (0: all registered ones).
	Nodes int
	// ControlPlanes is how many control-plane nodes run static pods (0: at least one).
	ControlPlanes int
	// SkipAddons leaves out kube-proxy, the CNI and CoreDNS.
	SkipAddons bool
	// EtcdMembers lists etcd's members (through the node API); nil leaves the check out.
	EtcdMembers func(ctx context.Context) ([]EtcdMember, error)
}

// EtcdMember is an etcd member as the health check sees it.
type EtcdMember struct {
	Name      string
	IsLearner bool
}

// Checks returns the cluster's checks, in the order they become true on a new cluster.
func (c *Client) Checks(e Expect) []Check {
	checks := []Check{
		{"etcd is healthy", func(ctx context.Context) error { return c.kube.Get(ctx, "/readyz/etcd", nil) }},
		{"the API server is ready", c.kube.Readyz},
	}
	if e.EtcdMembers != nil {
		checks = append(checks, Check{"etcd members are the control-plane nodes, all voting", c.etcdMembers(e.EtcdMembers, e.ControlPlanes)})
	}
	checks = append(checks, []Check{
		{"control-plane static pods are running", c.staticPods(e.ControlPlanes)},
		{"all nodes are Ready", c.nodesReady(e.Nodes)},
	}...)
	if !e.SkipAddons {
		checks = append(checks,
			Check{"kube-proxy is ready", c.daemonSetReady("kube-system", "kube-proxy")},
			Check{"the CNI is ready", c.cniReady},
			Check{"CoreDNS is ready", c.deploymentReady("kube-system", "coredns")},
		)
	}
	return checks
}

func (c *Client) nodesReady(want int) func(ctx context.Context) error {
	return func(ctx context.Context) error {
		nodes, err := c.kube.ListNodes(ctx, "")
		if err != nil {
			return err
		}
		var notReady []string
		for _, n := range nodes {
			if !objects.Ready(n.Status.Conditions) {
				notReady = append(notReady, n.Metadata.Name)
			}
		}
		switch {
		case len(notReady) > 0:
			return fmt.Errorf("not Ready: %s", strings.Join(notReady, ", "))
		case want > 0 && len(nodes) < want:
			return fmt.Errorf("%d of %d nodes registered", len(nodes), want)
		case len(nodes) == 0:
			return errors.New("no node registered yet")
		}
		return nil
	}
}

// etcdMembers checks that etcd has no learner left and that its members are the
// control-plane nodes registered in Kubernetes (wantCP of them when it is set).
func (c *Client) etcdMembers(list func(ctx context.Context) ([]EtcdMember, error), wantCP int) func(ctx context.Context) error {
	return func(ctx context.Context) error {
		members, err := list(ctx)
		if err != nil {
			return err
		}
		nodes, err := c.kube.ListNodes(ctx, render.ControlPlaneRoleLabel)
		if err != nil {
			return err
		}
		cps := map[string]bool{}
		for _, n := range nodes {
			cps[n.Metadata.Name] = true
		}
		var learners, strangers, missing []string
		voters := map[string]bool{}
		for _, m := range members {
			switch {
			case m.IsLearner:
				learners = append(learners, cmp.Or(m.Name, "(not started)"))
			case !cps[m.Name]:
				strangers = append(strangers, m.Name)
			default:
				voters[m.Name] = true
			}
		}
		for name := range cps {
			if !voters[name] {
				missing = append(missing, name)
			}
		}
		slices.Sort(missing)
		switch {
		case len(learners) > 0:
			return fmt.Errorf("learners not promoted yet: %s", strings.Join(learners, ", "))
		case len(strangers) > 0:
			return fmt.Errorf("members that are not control-plane nodes of this cluster: %s", strings.Join(strangers, ", "))
		case len(missing) > 0:
			return fmt.Errorf("control-plane nodes that are not voting etcd members: %s", strings.Join(missing, ", "))
		case wantCP > 0 && len(members) < wantCP:
			return fmt.Errorf("%d of %d control planes are etcd members", len(members), wantCP)
		case len(members) == 0:
			return errors.New("etcd lists no member")
		}
		return nil
	}
}

func (c *Client) staticPods(wantCP int) func(ctx context.Context) error {
	return func(ctx context.Context) error {
		var list struct {
			Items []struct {
				Metadata objects.ObjectMeta `json:"metadata"`
				Status   struct {
					Phase      string                  `json:"phase"`
					Conditions []objects.NodeCondition `json:"conditions"`
				} `json:"status"`
			} `json:"items"`
		}
		if err := c.kube.Get(ctx, "/api/v1/namespaces/kube-system/pods?labelSelector=tier%3Dcontrol-plane", &list); err != nil {
			return err
		}
		counts := map[string]int{}
		var waiting []string
		for _, p := range list.Items {
			if p.Status.Phase != "Running" || !objects.Ready(p.Status.Conditions) {
				waiting = append(waiting, p.Metadata.Name)
				continue
			}
			counts[p.Metadata.Labels["component"]]++
		}
		if len(waiting) > 0 {
			return fmt.Errorf("not ready: %s", strings.Join(waiting, ", "))
		}
		want := max(wantCP, 1)
		for _, comp := range []string{"etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler"} {
			if counts[comp] < want {
				return fmt.Errorf("%s: %d of %d running", comp, counts[comp], want)
			}
		}
		return nil
	}
}

// cniReady checks flannel's DaemonSet, when the cluster has it. Without it the CNI is the
// built-in one (machined on each node, no pod) or one installed by the user: every node
// Ready, checked before, says its configuration is there.
func (c *Client) cniReady(ctx context.Context) error {
	err := c.daemonSetReady("kube-system", "kube-flannel")(ctx)
	if kubeclient.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("flannel: %w", err)
	}
	return nil
}

func (c *Client) daemonSetReady(ns, name string) func(ctx context.Context) error {
	return func(ctx context.Context) error {
		var ds struct {
			Status struct {
				Desired int `json:"desiredNumberScheduled"`
				Ready   int `json:"numberReady"`
			} `json:"status"`
		}
		if err := c.kube.Get(ctx, "/apis/apps/v1/namespaces/"+ns+"/daemonsets/"+name, &ds); err != nil {
			return err
		}
		if ds.Status.Desired == 0 || ds.Status.Ready < ds.Status.Desired {
			return fmt.Errorf("%d of %d ready", ds.Status.Ready, ds.Status.Desired)
		}
		return nil
	}
}

func (c *Client) deploymentReady(ns, name string) func(ctx context.Context) error {
	return func(ctx context.Context) error {
		var d struct {
			Spec struct {
				Replicas int `json:"replicas"`
			} `json:"spec"`
			Status struct {
				Available int `json:"availableReplicas"`
			} `json:"status"`
		}
		if err := c.kube.Get(ctx, "/apis/apps/v1/namespaces/"+ns+"/deployments/"+name, &d); err != nil {
			return err
		}
		if d.Status.Available < max(d.Spec.Replicas, 1) {
			return fmt.Errorf("%d of %d available", d.Status.Available, d.Spec.Replicas)
		}
		return nil
	}
}

// Wait runs the checks in order, waiting for each to pass (polling every second) until ctx
// ends; progress reports each check as it starts waiting and when it passes, with the time.
func Wait(ctx context.Context, checks []Check, progress io.Writer) error {
	start := time.Now()
	for _, ch := range checks {
		fmt.Fprintf(progress, "waiting for: %s\n", ch.Name)
		var last error
		for {
			cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
			last = ch.Run(cctx)
			cancel()
			if last == nil {
				fmt.Fprintf(progress, "OK: %s (%s)\n", ch.Name, time.Since(start).Round(100*time.Millisecond))
				break
			}
			select {
			case <-ctx.Done():
				return fmt.Errorf("%s: %v", ch.Name, last)
			case <-time.After(time.Second):
			}
		}
	}
	return nil
}
