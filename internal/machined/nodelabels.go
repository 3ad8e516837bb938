package machined

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/plinthos/plinth/internal/backoff"
	"github.com/plinthos/plinth/internal/k8s/kubeclient"
	"github.com/plinthos/plinth/internal/k8s/objects"
	"github.com/plinthos/plinth/internal/k8s/render"
	"github.com/plinthos/plinth/internal/resource"
	"github.com/plinthos/plinth/internal/resources"
	"github.com/plinthos/plinth/pkg/config"
)

// ownedLabelsAnnotation is the annotation on a Node that lists, sorted and comma-separated,
// the keys of the labels that the node-labels service set from machine.kubelet.nodeLabels.
// Those, and only those, are removed when the configuration no longer has them; labels
// that others set are never touched.
const ownedLabelsAnnotation = "plinth.dev/owned-labels"

// labelsChange is how a Node's labels and ownedLabelsAnnotation change to follow the
// configuration.
type labelsChange struct {
	// Set are the labels to add or to give a new value.
	Set map[string]string
	// Remove are the keys of the labels to remove, sorted.
	Remove []string
	// Owned is the new value of ownedLabelsAnnotation ("": the annotation is removed).
	Owned string
	// OwnedChanged says that the annotation changes.
	OwnedChanged bool
}

// empty says that the Node already follows the configuration.
func (c labelsChange) empty() bool {
	return len(c.Set) == 0 && len(c.Remove) == 0 && !c.OwnedChanged
}

// mergePatch returns the change as a JSON merge patch (RFC 7386) of the Node: one request,
// so the labels and the annotation that records them change together.
func (c labelsChange) mergePatch() ([]byte, error) {
	labels := map[string]*string{}
	for k, v := range c.Set {
		labels[k] = &v
	}
	for _, k := range c.Remove {
		labels[k] = nil
	}
	md := map[string]any{}
	if len(labels) > 0 {
		md["labels"] = labels
	}
	if c.OwnedChanged {
		var owned *string
		if c.Owned != "" {
			owned = &c.Owned
		}
		md["annotations"] = map[string]*string{ownedLabelsAnnotation: owned}
	}
	return json.Marshal(map[string]any{"metadata": md})
}

// String describes the change for the service's log.
func (c labelsChange) String() string {
	var parts []string
	if len(c.Set) > 0 {
		var set []string
		for _, k := range slices.Sorted(maps.Keys(c.Set)) {
			set = append(set, k+"="+c.Set[k])
		}
		parts = append(parts, "set "+strings.Join(set, ", "))
	}
	if len(c.Remove) > 0 {
		parts = append(parts, "removed "+strings.Join(c.Remove, ", "))
	}
	if len(parts) == 0 {
		parts = append(parts, "labels already as configured")
	}
	owned := c.Owned
	if owned == "" {
		owned = "none"
	}
	return strings.Join(parts, "; ") + " (labels from the configuration: " + owned + ")"
}

// planNodeLabels decides how a Node's labels follow the configuration. current and
// annotations are the Node's labels and annotations, wanted the configured labels, and
// settable says which label keys the credentials at hand may change (nil: all). A wanted
// label is added or given its value and becomes owned (even if someone else had set it: a
// key in the configuration belongs to the configuration); an owned label that is no longer
// wanted is removed; any other label is left alone. Keys that are not settable are neither
// set, removed nor owned.
func planNodeLabels(current, annotations, wanted map[string]string, settable func(string) bool) labelsChange {
	may := func(k string) bool { return settable == nil || settable(k) }
	c := labelsChange{Set: map[string]string{}}
	var owned []string
	for _, k := range slices.Sorted(maps.Keys(wanted)) {
		if !may(k) {
			continue
		}
		owned = append(owned, k)
		if v, ok := current[k]; !ok || v != wanted[k] {
			c.Set[k] = wanted[k]
		}
	}
	before, had := annotations[ownedLabelsAnnotation]
	seen := map[string]bool{}
	for _, k := range strings.Split(before, ",") {
		k = strings.TrimSpace(k)
		if k == "" || seen[k] {
			continue
		}
		seen[k] = true
		if _, still := wanted[k]; still || !may(k) {
			continue
		}
		if _, ok := current[k]; ok {
			c.Remove = append(c.Remove, k)
		}
	}
	slices.Sort(c.Remove)
	c.Owned = strings.Join(owned, ",")
	c.OwnedChanged = c.Owned != before || (had && c.Owned == "")
	return c
}

// selfSettableLabel says whether a node may set a label with key on its own Node object:
// the NodeRestriction admission plugin refuses kubelet's credentials labels in the
// kubernetes.io and k8s.io namespaces other than the few kubelet may set itself. The rule
// is render's (the one for kubelet's --node-labels), asked through APINodeLabels.
func selfSettableLabel(key string) bool {
	var cfg config.MachineConfig
	cfg.Machine.Kubelet.NodeLabels = map[string]string{key: ""}
	return len(render.APINodeLabels(&cfg, false)) == 0
}

// nodeAPI is the part of the Kubernetes API the node-labels service uses.
type nodeAPI interface {
	GetNode(ctx context.Context, name string) (*objects.Node, error)
	MergePatchNode(ctx context.Context, name string, patch []byte) error
	Close()
}

// clientAt returns a client of the API with the kubeconfig at path.
func clientAt(path string) (nodeAPI, error) {
	return kubeclient.NewFromFile(path, "")
}

// nodeLabeler keeps the labels of this node's Node object those of
// machine.kubelet.nodeLabels in the active configuration. kubelet applies --node-labels
// only when it registers the Node, so without it a configuration applied without a reboot
// would change kubelet's arguments and leave the Node's labels as they were.
type nodeLabeler struct {
	// store holds the MachineConfig resource.
	store *resource.Store
	// nodeName returns the name kubelet registers the node under.
	nodeName func() string
	// client returns a client of the API with the kubeconfig at a path.
	client func(kubeconfig string) (nodeAPI, error)
	// retry is how long to wait after failures in a row (the node not registered yet, the
	// API down; the first waits a tenth of it, each next one twice as long as the one
	// before) or, when the resource cannot be watched, between two passes.
	retry time.Duration
	// resync is how long to wait, after a pass that left the Node as configured, for
	// another pass without a configuration change (to repair what someone else changed).
	resync time.Duration
}

// runNodeLabels is the node-labels service.
func (n *node) runNodeLabels(ctx context.Context, logs io.Writer) error {
	return nodeLabeler{
		store:    n.store,
		nodeName: n.nodeName,
		client:   clientAt,
		retry:    10 * time.Second,
		resync:   5 * time.Minute,
	}.Run(ctx, logs)
}

// Run makes the Node follow the configuration once kubelet has registered it, and again at
// every change of the MachineConfig resource, until ctx is cancelled. Failures are logged
// (once while they repeat) and retried.
func (l nodeLabeler) Run(ctx context.Context, logs io.Writer) error {
	var events <-chan resource.Event
	watchErr := ""
	watch := func() {
		ch, err := l.store.WatchID(ctx, resources.NamespaceConfig, resources.MachineConfigType, resources.ActiveID)
		if err != nil {
			if msg := err.Error(); msg != watchErr {
				fmt.Fprintf(logs, "watch the machine configuration: %v; looking every %s instead\n", err, l.retry)
				watchErr = msg
			}
			events = nil
			return
		}
		events, watchErr = ch, ""
	}
	watch()
	// A watch starts with the resource as it is, if it exists: that event starts the
	// first pass.
	dirty := events == nil
	lastErr, lastNote := "", ""
	failWait := backoff.New(l.retry/10, l.retry)
	for {
		wait := l.resync
		if dirty {
			did, note, err := l.once(ctx)
			if ctx.Err() != nil {
				return nil
			}
			if err != nil {
				if msg := err.Error(); msg != lastErr {
					fmt.Fprintf(logs, "%s; retrying, up to every %s\n", msg, l.retry)
					lastErr = msg
				}
				wait = failWait.Next()
			} else {
				failWait.Reset()
				lastErr, dirty = "", false
				if did != "" {
					fmt.Fprintln(logs, did)
				}
				if note != "" && note != lastNote {
					fmt.Fprintln(logs, note)
				}
				lastNote = note
			}
		}
		if !dirty && events == nil {
			wait = l.retry
		}
		timer := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			timer.Stop()
			return nil
		case ev, ok := <-events:
			switch {
			case !ok:
				watch() // overflowed: watch again, and look again
				dirty = true
			case ev.Type == resource.Created || ev.Type == resource.Updated:
				dirty = true
			}
		case <-timer.C:
			if events == nil {
				watch()
			}
			dirty = true
		}
		timer.Stop()
	}
}

// once makes the Node's labels follow the active configuration. It returns what it changed
// ("" for nothing) and a note on the configured labels it may not set ("" for none).
func (l nodeLabeler) once(ctx context.Context) (did, note string, err error) {
	r, err := l.store.Get(resources.NamespaceConfig, resources.MachineConfigType, resources.ActiveID)
	if err != nil {
		return "", "", fmt.Errorf("no machine configuration yet: %w", err)
	}
	typed, ok := r.(*resource.Typed[resources.MachineConfigSpec])
	if !ok || typed.TypedSpec().Config == nil {
		return "", "", fmt.Errorf("unexpected machine configuration resource %T", r)
	}
	cfg := typed.TypedSpec().Config
	wanted := cfg.Machine.Kubelet.NodeLabels
	// A control plane has the admin kubeconfig and may set any label; a worker has only
	// kubelet's credentials (written after its TLS bootstrap), with which NodeRestriction
	// lets it change only some labels of its own Node.
	kubeconfig, settable := nodeKubeconfig(cfg), func(string) bool { return true }
	if cfg.Machine.Type != config.TypeControlPlane {
		settable = selfSettableLabel
	}
	var refused []string
	for _, k := range slices.Sorted(maps.Keys(wanted)) {
		if !settable(k) {
			refused = append(refused, k)
		}
	}
	if len(refused) > 0 {
		note = fmt.Sprintf("machine.kubelet.nodeLabels %s: left alone: with its own credentials a worker may not set labels in the kubernetes.io and k8s.io namespaces on its Node (NodeRestriction), except the few kubelet sets itself; set them with kubectl", strings.Join(refused, ", "))
	}
	name := l.nodeName()
	api, err := l.client(kubeconfig)
	if err != nil {
		return "", "", fmt.Errorf("node %s: %w", name, err)
	}
	defer api.Close()
	obj, err := api.GetNode(ctx, name)
	if err != nil {
		if kubeclient.IsNotFound(err) {
			return "", "", fmt.Errorf("node %s: kubelet has not registered it yet", name)
		}
		return "", "", fmt.Errorf("node %s: %w", name, err)
	}
	change := planNodeLabels(obj.Metadata.Labels, obj.Metadata.Annotations, wanted, settable)
	if change.empty() {
		return "", note, nil
	}
	patch, err := change.mergePatch()
	if err != nil {
		return "", "", err
	}
	if err := api.MergePatchNode(ctx, name, patch); err != nil {
		return "", "", fmt.Errorf("node %s: %w", name, err)
	}
	return fmt.Sprintf("node %s: %s", name, change), note, nil
}
