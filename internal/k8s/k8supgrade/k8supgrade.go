// Package k8supgrade upgrades a running cluster's Kubernetes: the plan (which component of
// which node goes from which image to which, in the order the version skew policy allows),
// the pre-checks, and the run that carries the plan out one step at a time through the nodes'
// machine configurations, waiting for each step to be healthy and putting a failed step back
// as it was.
//
// The order: kube-apiserver on every control plane, one node at a time; then
// kube-controller-manager and kube-scheduler the same way (they must not be newer than the
// API servers they talk to); then kube-proxy (the DaemonSet the control planes render from
// cluster.proxy.image); then each node's kubelet, control planes first.
package k8supgrade

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/plinthos/plinth/pkg/config"
)

// Component is a Kubernetes component the upgrade moves.
type Component string

const (
	APIServer         Component = "kube-apiserver"
	ControllerManager Component = "kube-controller-manager"
	Scheduler         Component = "kube-scheduler"
	Proxy             Component = "kube-proxy"
	Kubelet           Component = "kubelet"
)

// staticPods are the control plane's static pods, in the order they are upgraded.
var staticPods = []Component{APIServer, ControllerManager, Scheduler}

// Field returns the configuration field that holds c's image, and its path for messages.
func Field(cfg *config.MachineConfig, c Component) (*string, string) {
	switch c {
	case APIServer:
		return &cfg.Cluster.APIServer.Image, "cluster.apiServer.image"
	case ControllerManager:
		return &cfg.Cluster.ControllerManager.Image, "cluster.controllerManager.image"
	case Scheduler:
		return &cfg.Cluster.Scheduler.Image, "cluster.scheduler.image"
	case Proxy:
		return &cfg.Cluster.Proxy.Image, "cluster.proxy.image"
	case Kubelet:
		return &cfg.Machine.Kubelet.Image, "machine.kubelet.image"
	}
	panic("k8supgrade: unknown component " + string(c))
}

// Node is a node of the cluster: its Kubernetes name, the address its node API answers at,
// and its machine configuration (which a run changes as it applies steps).
type Node struct {
	Name         string
	Address      string
	ControlPlane bool
	Config       *config.MachineConfig
}

// Step moves one component: of one node, or for kube-proxy of every node at once (Node "").
type Step struct {
	Component Component
	Node      string
	From, To  string
}

// Done says the step has nothing to do: the component runs the image already.
func (s Step) Done() bool { return s.From == s.To }

func (s Step) String() string {
	where := s.Node
	if where == "" {
		where = "every node"
	}
	if s.Done() {
		return fmt.Sprintf("%s on %s: %s (already)", s.Component, where, s.To)
	}
	return fmt.Sprintf("%s on %s: %s -> %s", s.Component, where, s.From, s.To)
}

// Version is a Kubernetes version, vMAJOR.MINOR.PATCH.
type Version struct{ Major, Minor, Patch int }

// ParseVersion reads v1.37.2 (or 1.37.2).
func ParseVersion(s string) (Version, error) {
	parts := strings.Split(strings.TrimPrefix(s, "v"), ".")
	var v Version
	if len(parts) != 3 {
		return v, fmt.Errorf("%q is not a Kubernetes version vMAJOR.MINOR.PATCH", s)
	}
	nums := []*int{&v.Major, &v.Minor, &v.Patch}
	for i, p := range parts {
		n, err := strconv.Atoi(p)
		if err != nil || n < 0 || strings.Trim(p, "0123456789") != "" {
			return Version{}, fmt.Errorf("%q is not a Kubernetes version vMAJOR.MINOR.PATCH", s)
		}
		*nums[i] = n
	}
	return v, nil
}

func (v Version) String() string { return fmt.Sprintf("v%d.%d.%d", v.Major, v.Minor, v.Patch) }

// Less orders versions.
func (v Version) Less(o Version) bool {
	return v.Major < o.Major || v.Major == o.Major && (v.Minor < o.Minor || v.Minor == o.Minor && v.Patch < o.Patch)
}

// splitTag splits an image reference into its name and tag; tag is "" when it has none or
// is pinned by digest.
func splitTag(image string) (name, tag string) {
	if strings.Contains(image, "@") {
		return image, ""
	}
	i := strings.LastIndexByte(image, ':')
	if i < 0 || strings.Contains(image[i:], "/") {
		return image, ""
	}
	return image[:i], image[i+1:]
}

// Retag returns image with its tag set to version.
func Retag(image, version string) (string, error) {
	name, tag := splitTag(image)
	if tag == "" {
		return "", fmt.Errorf("image %s has no version tag to move (pinned by digest, or untagged): set it by hand", image)
	}
	return name + ":" + version, nil
}

// Plan returns the steps that bring every node's components to version to, in order, with
// the steps already done among them. It refuses a downgrade, a move of more than one minor
// version (the skew policy: upgrade one minor at a time), and images it cannot retag.
func Plan(nodes []Node, to string) ([]Step, error) {
	target, err := ParseVersion(to)
	if err != nil {
		return nil, err
	}
	to = target.String()
	var cps, workers []Node
	for _, n := range nodes {
		if n.Config == nil {
			return nil, fmt.Errorf("node %s: no machine configuration", n.Name)
		}
		if n.ControlPlane {
			cps = append(cps, n)
		} else {
			workers = append(workers, n)
		}
	}
	if len(cps) == 0 {
		return nil, errors.New("no control-plane node: the control plane is upgraded first, through its nodes' configurations")
	}
	byName := func(a, b Node) int { return strings.Compare(a.Name, b.Name) }
	slices.SortFunc(cps, byName)
	slices.SortFunc(workers, byName)
	var steps []Step
	var problems []string
	add := func(n Node, c Component, node string) {
		f, path := Field(n.Config, c)
		next, err := Retag(*f, to)
		if err != nil {
			problems = append(problems, fmt.Sprintf("node %s: %s: %v", n.Name, path, err))
			return
		}
		if why := skew(*f, target); why != "" {
			problems = append(problems, fmt.Sprintf("node %s: %s: %s", n.Name, path, why))
			return
		}
		steps = append(steps, Step{Component: c, Node: node, From: *f, To: next})
	}
	for _, c := range staticPods {
		for _, n := range cps {
			add(n, c, n.Name)
		}
	}
	// kube-proxy is one DaemonSet, rendered by the control planes: one step, whose image is
	// the first control plane's; every node's configuration gets the new one.
	add(cps[0], Proxy, "")
	for _, n := range append(slices.Clone(cps), workers...) {
		add(n, Kubelet, n.Name)
	}
	if len(problems) > 0 {
		return nil, fmt.Errorf("cannot upgrade to %s:\n  %s", to, strings.Join(problems, "\n  "))
	}
	return steps, nil
}

// skew says why moving image's version to target is not allowed, or "".
func skew(image string, target Version) string {
	_, tag := splitTag(image)
	from, err := ParseVersion(tag)
	if err != nil {
		return fmt.Sprintf("image %s: its tag is not a Kubernetes version, so the move cannot be checked: set it by hand", image)
	}
	switch {
	case target.Less(from):
		return fmt.Sprintf("runs %s: a downgrade to %s is not supported", from, target)
	case target.Major != from.Major || target.Minor > from.Minor+1:
		return fmt.Sprintf("runs %s: upgrade one minor version at a time (to v%d.%d.x first)", from, from.Major, from.Minor+1)
	}
	return ""
}

// NeededImages returns the images the node named node must hold for the steps to come (not
// the ones done): its own components' and kube-proxy's.
func NeededImages(steps []Step, node string) []string {
	var images []string
	for _, s := range steps {
		if s.Done() || s.Node != node && s.Node != "" {
			continue
		}
		if !slices.Contains(images, s.To) {
			images = append(images, s.To)
		}
	}
	return images
}

// Cluster is what a run acts on: the nodes' configurations and the Kubernetes API.
type Cluster interface {
	// Apply applies cfg to node, without a reboot.
	Apply(ctx context.Context, node Node, cfg *config.MachineConfig) error
	// WaitStaticPod waits until node's static pod of c runs image and is ready.
	WaitStaticPod(ctx context.Context, node string, c Component, image string) error
	// WaitProxy waits until the kube-proxy DaemonSet runs image on every node, ready.
	WaitProxy(ctx context.Context, image string) error
	// WaitKubelet waits until node's kubelet reports version and the node is Ready.
	WaitKubelet(ctx context.Context, node, version string) error
}

// Run carries out the steps on the nodes, in order, one at a time. A step that fails is put
// back: the nodes it changed get their previous image again, and Run waits for them to be
// healthy on it, then stops with an error that says what failed and where the cluster is.
type Run struct {
	Cluster Cluster
	Nodes   []Node
	// StepTimeout bounds each step's wait; RevertTimeout the wait after putting a step back
	// (StepTimeout when not set).
	StepTimeout, RevertTimeout time.Duration
	// Say reports progress.
	Say func(format string, a ...any)
}

// Do runs the steps.
func (r Run) Do(ctx context.Context, steps []Step) error {
	byName := map[string]Node{}
	for _, n := range r.Nodes {
		byName[n.Name] = n
	}
	for i, s := range steps {
		if s.Done() {
			continue
		}
		start := time.Now()
		r.Say("[%d/%d] %s", i+1, len(steps), s)
		var err error
		switch s.Component {
		case Proxy:
			err = r.proxy(ctx, s)
		default:
			n, ok := byName[s.Node]
			if !ok {
				return fmt.Errorf("step %s: no node %s", s, s.Node)
			}
			err = r.nodeStep(ctx, n, s)
		}
		if err != nil {
			return err
		}
		r.Say("[%d/%d] %s: done in %s", i+1, len(steps), s.Component, time.Since(start).Round(time.Second))
	}
	return nil
}

// wait runs one of the Cluster's waits within timeout.
func (r Run) wait(ctx context.Context, timeout time.Duration, f func(ctx context.Context) error) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	return f(ctx)
}

func (r Run) revertTimeout() time.Duration {
	if r.RevertTimeout > 0 {
		return r.RevertTimeout
	}
	return r.StepTimeout
}

func (r Run) waitFor(ctx context.Context, timeout time.Duration, n Node, s Step, image string) error {
	return r.wait(ctx, timeout, func(ctx context.Context) error {
		if s.Component == Kubelet {
			_, tag := splitTag(image)
			return r.Cluster.WaitKubelet(ctx, n.Name, tag)
		}
		return r.Cluster.WaitStaticPod(ctx, n.Name, s.Component, image)
	})
}

// nodeStep moves one component of one node.
func (r Run) nodeStep(ctx context.Context, n Node, s Step) error {
	f, path := Field(n.Config, s.Component)
	old := *f
	*f = s.To
	err := r.Cluster.Apply(ctx, n, n.Config)
	if err == nil {
		err = r.waitFor(ctx, r.StepTimeout, n, s, s.To)
		if err == nil {
			return nil
		}
	}
	// Put it back, even when ctx is done (the user interrupted the wait).
	bctx := context.WithoutCancel(ctx)
	r.Say("%s on %s failed: %v; putting %s back to %s", s.Component, n.Name, err, path, old)
	*f = old
	if berr := r.Cluster.Apply(bctx, n, n.Config); berr != nil {
		return fmt.Errorf("%s on %s failed (%v), and %s could not be put back to %s: %w", s.Component, n.Name, err, path, old, berr)
	}
	if werr := r.waitFor(bctx, r.revertTimeout(), n, s, old); werr != nil {
		return fmt.Errorf("%s on %s failed (%v); %s is back to %s but it is not healthy yet: %w", s.Component, n.Name, err, path, old, werr)
	}
	return fmt.Errorf("%s on %s failed: %w; it runs %s again, and the steps after it were not started", s.Component, n.Name, err, old)
}

// proxy moves kube-proxy: every node's cluster.proxy.image, control planes first (they
// render the DaemonSet).
func (r Run) proxy(ctx context.Context, s Step) error {
	ordered := slices.Clone(r.Nodes)
	slices.SortFunc(ordered, func(a, b Node) int {
		switch {
		case a.ControlPlane == b.ControlPlane:
			return strings.Compare(a.Name, b.Name)
		case a.ControlPlane:
			return -1
		}
		return 1
	})
	olds := map[string]string{}
	var applied []Node
	var err error
	for _, n := range ordered {
		f, _ := Field(n.Config, Proxy)
		olds[n.Name] = *f
		*f = s.To
		if err = r.Cluster.Apply(ctx, n, n.Config); err != nil {
			err = fmt.Errorf("node %s: %w", n.Name, err)
			*f = olds[n.Name]
			break
		}
		applied = append(applied, n)
	}
	if err == nil {
		if err = r.wait(ctx, r.StepTimeout, func(ctx context.Context) error { return r.Cluster.WaitProxy(ctx, s.To) }); err == nil {
			return nil
		}
	}
	bctx := context.WithoutCancel(ctx)
	r.Say("kube-proxy failed: %v; putting cluster.proxy.image back to %s", err, s.From)
	var berrs []error
	for _, n := range applied {
		f, _ := Field(n.Config, Proxy)
		*f = olds[n.Name]
		if berr := r.Cluster.Apply(bctx, n, n.Config); berr != nil {
			berrs = append(berrs, fmt.Errorf("node %s: %w", n.Name, berr))
		}
	}
	if len(berrs) > 0 {
		return fmt.Errorf("kube-proxy failed (%v), and cluster.proxy.image could not be put back everywhere: %w", err, errors.Join(berrs...))
	}
	if werr := r.wait(bctx, r.revertTimeout(), func(ctx context.Context) error { return r.Cluster.WaitProxy(ctx, s.From) }); werr != nil {
		return fmt.Errorf("kube-proxy failed (%v); it is back to %s but not healthy yet: %w", err, s.From, werr)
	}
	return fmt.Errorf("kube-proxy failed: %w; it runs %s again, and the steps after it were not started", err, s.From)
}
