package localcluster

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/plinthos/plinth/internal/bringup"
	"github.com/plinthos/plinth/internal/k8s/kubeclient"
	"github.com/plinthos/plinth/internal/kubeconfig"
	"github.com/plinthos/plinth/pkg/api/machine"
	"github.com/plinthos/plinth/pkg/client"
)

// Timings reads when each phase of every node's bring-up began and ended, from the nodes'
// events (through the first control plane's node API) and from the Kubernetes API, for a
// cluster that Create bootstrapped.
func Timings(ctx context.Context, res *Result) ([]bringup.Node, error) {
	if !res.Bootstrapped || res.client == nil {
		return nil, errors.New("timings are read from a cluster that cluster create waited for and bootstrapped")
	}
	first := res.Cluster.FirstControlPlane()
	c, err := client.New(res.client, first.APIEndpoint())
	if err != nil {
		return nil, fmt.Errorf("connect to the node API on %s: %w", first.APIEndpoint(), err)
	}
	defer c.Close()
	resp, err := c.Machine.Kubeconfig(ctx, &machine.KubeconfigRequest{})
	if err != nil {
		return nil, client.Describe(err)
	}
	data, err := kubeconfig.Rename(resp.Kubeconfig, res.Cluster.Name, "https://"+res.Cluster.KubeEndpoint())
	if err != nil {
		return nil, err
	}
	kube, err := kubeclient.New(data, "")
	if err != nil {
		return nil, err
	}
	defer kube.Close()
	var nodes []bringup.Node
	for _, n := range res.Cluster.Nodes {
		events, err := nodeEvents(client.WithNode(ctx, n.IP), c)
		if err != nil {
			return nil, fmt.Errorf("the events of %s: %w", n.Name, err)
		}
		phases := bringup.FromEvents(res.Started, events)
		node, err := kube.GetNode(ctx, n.Name)
		if err != nil {
			return nil, fmt.Errorf("the Node %s: %w", n.Name, err)
		}
		pods, err := kube.ListPodsOn(ctx, n.Name)
		if err != nil {
			return nil, fmt.Errorf("the pods on %s: %w", n.Name, err)
		}
		nodes = append(nodes, bringup.Node{Name: n.Name, Phases: bringup.FromKubernetes(phases, *node, pods)})
	}
	return nodes, nil
}

// nodeEvents reads every event the node keeps.
func nodeEvents(ctx context.Context, c *client.Client) ([]bringup.Event, error) {
	stream, err := c.Machine.Events(ctx, &machine.EventsRequest{TailEvents: -1})
	if err != nil {
		return nil, client.Describe(err)
	}
	var events []bringup.Event
	for {
		ev, err := stream.Recv()
		if err == io.EOF {
			return events, nil
		}
		if err != nil {
			return nil, client.Describe(err)
		}
		events = append(events, bringup.Event{Time: ev.GetTime().AsTime(), Type: ev.GetType(), Message: ev.GetMessage(), Data: ev.GetData()})
	}
}
