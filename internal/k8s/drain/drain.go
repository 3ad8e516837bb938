// Package drain cordons a Kubernetes Node and evicts its pods before the node goes down
// (an upgrade), and uncordons it after, as `kubectl drain` and `kubectl uncordon` do: pods
// of DaemonSets and static (mirror) pods stay, finished pods are left, and evictions go
// through the Eviction API so that PodDisruptionBudgets are honoured.
package drain

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/plinthos/plinth/internal/k8s/kubeclient"
	"github.com/plinthos/plinth/internal/k8s/objects"
)

// API is what a drain needs of the Kubernetes API (kubeclient.Client).
type API interface {
	MergePatchNode(ctx context.Context, name string, patch []byte) error
	ListPodsOn(ctx context.Context, node string) ([]objects.RunningPod, error)
	GetPod(ctx context.Context, namespace, name string) (*objects.RunningPod, error)
	Evict(ctx context.Context, namespace, name string) error
}

// mirrorAnnotation marks the API's copy of a static pod.
const mirrorAnnotation = "kubernetes.io/config.mirror"

// retry is how often a refused eviction is tried again and a leaving pod looked at.
var retry = 2 * time.Second

// Cordon marks the Node unschedulable (or schedulable again with false).
func Cordon(ctx context.Context, api API, node string, unschedulable bool) error {
	patch := `{"spec":{"unschedulable":true}}`
	if !unschedulable {
		patch = `{"spec":{"unschedulable":null}}`
	}
	if err := api.MergePatchNode(ctx, node, []byte(patch)); err != nil {
		return fmt.Errorf("cordon %s: %w", node, err)
	}
	return nil
}

// Evictable is whether a drain evicts the pod: not a DaemonSet's (it would come back at
// once), not a static pod's mirror (the kubelet owns it), not finished, not leaving.
func Evictable(p objects.RunningPod) bool {
	if _, mirror := p.Metadata.Annotations[mirrorAnnotation]; mirror {
		return false
	}
	if slices.ContainsFunc(p.Metadata.OwnerReferences, func(o objects.OwnerReference) bool { return o.Kind == "DaemonSet" }) {
		return false
	}
	if p.Status.Phase == "Succeeded" || p.Status.Phase == "Failed" {
		return false
	}
	return p.Metadata.DeletionTimestamp == ""
}

// Drain cordons the Node and evicts its evictable pods, waiting until they are gone or ctx
// ends. say reports progress. It returns the names (namespace/name) evicted.
func Drain(ctx context.Context, api API, node string, say func(string, ...any)) ([]string, error) {
	if err := Cordon(ctx, api, node, true); err != nil {
		return nil, err
	}
	pods, err := api.ListPodsOn(ctx, node)
	if err != nil {
		return nil, fmt.Errorf("drain %s: list its pods: %w", node, err)
	}
	var evicted []string
	var waiting []objects.RunningPod
	for _, p := range pods {
		if !Evictable(p) {
			continue
		}
		name := p.Metadata.Namespace + "/" + p.Metadata.Name
		for {
			err := api.Evict(ctx, p.Metadata.Namespace, p.Metadata.Name)
			if err == nil || kubeclient.IsNotFound(err) {
				break
			}
			if !kubeclient.IsTooManyRequests(err) {
				return evicted, fmt.Errorf("drain %s: evict %s: %w", node, name, err)
			}
			say("the disruption budget of %s does not allow its eviction yet; trying again", name)
			if err := sleep(ctx); err != nil {
				return evicted, fmt.Errorf("drain %s: %s not evicted: %w", node, name, err)
			}
		}
		if len(p.Metadata.OwnerReferences) == 0 {
			say("%s has no controller: it is evicted and will not come back", name)
		}
		evicted = append(evicted, name)
		waiting = append(waiting, p)
	}
	if len(evicted) > 0 {
		say("evicting %s", strings.Join(evicted, ", "))
	}
	for _, p := range waiting {
		for {
			cur, err := api.GetPod(ctx, p.Metadata.Namespace, p.Metadata.Name)
			if kubeclient.IsNotFound(err) || (err == nil && cur.Metadata.UID != p.Metadata.UID) {
				break
			}
			if err := sleep(ctx); err != nil {
				return evicted, fmt.Errorf("drain %s: %s/%s did not leave: %w", node, p.Metadata.Namespace, p.Metadata.Name, err)
			}
		}
	}
	return evicted, nil
}

func sleep(ctx context.Context) error {
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(retry):
		return nil
	}
}
