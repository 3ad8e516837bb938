package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"go.yaml.in/yaml/v3"

	"github.com/plinthos/plinth/internal/k8s/k8supgrade"
	"github.com/plinthos/plinth/internal/k8s/kubeclient"
	"github.com/plinthos/plinth/internal/k8s/objects"
	"github.com/plinthos/plinth/internal/resources"
	"github.com/plinthos/plinth/pkg/api/machine"
	rpb "github.com/plinthos/plinth/pkg/api/resource"
	"github.com/plinthos/plinth/pkg/client"
	"github.com/plinthos/plinth/pkg/config"
)

func newUpgradeK8sCommand(g *globalFlags) *cobra.Command {
	var (
		to            string
		dryRun        bool
		ignoreRemoved bool
		stepTimeout   time.Duration
	)
	cmd := &cobra.Command{
		Use:   "upgrade-k8s --to VERSION",
		Short: "Upgrade the cluster's Kubernetes: control plane, kube-proxy, then every kubelet",
		Long: `Upgrade-k8s moves a running cluster to another Kubernetes version (one minor version at a
time), through the nodes' machine configurations, applied without a reboot:

  1. kube-apiserver on each control plane, one node at a time; then kube-controller-manager,
     then kube-scheduler the same way. Each step waits for the node's static pod to run
     the new image and be ready.
  2. kube-proxy: cluster.proxy.image of every node; the control planes apply the DaemonSet,
     which rolls out; the step waits until every node runs it, ready.
  3. The kubelet of each node (control planes first): machine.kubelet.image; the step waits
     for the Node to report the new version and be Ready.

The nodes and their addresses come from the cluster's Node objects; a control plane of the
context gives the admin kubeconfig. Before anything changes it checks that every node is
Ready, that every node holds the images of the new version (plinthctl image list; Plinth
pulls nothing: the version's image bundle must be in the node image or imported), and that
no client used an API that the new version no longer serves (the API server's
apiserver_requested_deprecated_apis metric); --dry-run shows the plan and these checks and
changes nothing.

A step that fails is put back: the node gets its previous image again, and the command
stops with the cluster working on the old version where it was not yet upgraded. Run it
again once the cause is fixed: the steps already done are skipped.`,
		Example: `  plinthctl upgrade-k8s --to v1.37.2 --dry-run
  plinthctl upgrade-k8s --to v1.37.2`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if to == "" {
				return errors.New("--to is required: the Kubernetes version to move to, such as " + config.DefaultKubernetesVersion)
			}
			target, err := k8supgrade.ParseVersion(to)
			if err != nil {
				return fmt.Errorf("--to: %w", err)
			}
			if stepTimeout <= 0 {
				return errors.New("--timeout must be positive")
			}
			s, err := g.connect()
			if err != nil {
				return err
			}
			defer s.client.Close()
			w := cmd.OutOrStdout()
			return upgradeK8s(cmd.Context(), s, w, target, dryRun, ignoreRemoved, stepTimeout)
		},
	}
	cmd.Flags().StringVar(&to, "to", "", "the Kubernetes version to move to (vMAJOR.MINOR.PATCH)")
	cmd.Flags().BoolVar(&dryRun, "dry-run", false, "show the plan and the checks; change nothing")
	cmd.Flags().BoolVar(&ignoreRemoved, "ignore-removed-apis", false, "go on when clients used APIs the new version no longer serves")
	cmd.Flags().DurationVar(&stepTimeout, "timeout", 10*time.Minute, "how long each step may take to be healthy before it is put back (putting it back waits at least 5m)")
	return cmd
}

// upgradeK8s gathers the cluster's nodes and their configurations, plans, checks, and runs.
func upgradeK8s(ctx context.Context, s *session, w io.Writer, target k8supgrade.Version, dryRun, ignoreRemoved bool, stepTimeout time.Duration) error {
	_, _, kc, err := controlPlaneKubeconfig(ctx, s)
	if err != nil {
		return err
	}
	api, err := kubeclient.New(kc, "")
	if err != nil {
		return err
	}
	defer api.Close()
	fmt.Fprintf(w, "reading the cluster's nodes and their configurations through %s\n", api.Server())
	nodes, notReady, err := clusterNodes(ctx, s, api)
	if err != nil {
		return err
	}
	if running, err := apiVersion(ctx, api); err == nil {
		fmt.Fprintf(w, "the API server runs %s; upgrading to %s\n", running, target)
	}
	steps, err := k8supgrade.Plan(nodes, target.String())
	if err != nil {
		return err
	}
	todo := 0
	fmt.Fprintln(w, "plan:")
	for i, st := range steps {
		fmt.Fprintf(w, "  %2d. %s\n", i+1, st)
		if !st.Done() {
			todo++
		}
	}
	fmt.Fprintln(w, "checks:")
	problems := notReady
	if len(notReady) == 0 {
		fmt.Fprintf(w, "  every node is Ready (%d)\n", len(nodes))
	}
	missing, err := missingImages(ctx, s, nodes, steps)
	if err != nil {
		return err
	}
	if len(missing) == 0 {
		fmt.Fprintln(w, "  every node holds the images it needs")
	}
	problems = append(problems, missing...)
	used, err := deprecatedInUse(ctx, api)
	switch {
	case err != nil:
		fmt.Fprintf(w, "  deprecated APIs: not checked: %v\n", err)
	case len(used) == 0:
		fmt.Fprintln(w, "  no client used a deprecated API since the API servers started")
	default:
		removed := k8supgrade.RemovedBy(used, target)
		for _, d := range used {
			if !slices.Contains(removed, d) {
				fmt.Fprintf(w, "  deprecated API in use, still served by %s: %s\n", target, d)
			}
		}
		for _, d := range removed {
			msg := fmt.Sprintf("clients used %s, which %s no longer serves: move them to its replacement", d, target)
			if ignoreRemoved {
				fmt.Fprintf(w, "  %s (ignored: --ignore-removed-apis)\n", msg)
				continue
			}
			problems = append(problems, msg+" (or go on with --ignore-removed-apis)")
		}
	}
	if len(problems) > 0 {
		return fmt.Errorf("not upgraded; nothing was changed:\n  %s", strings.Join(problems, "\n  "))
	}
	if todo == 0 {
		fmt.Fprintf(w, "every component runs %s already: nothing to do\n", target)
		return nil
	}
	if dryRun {
		fmt.Fprintf(w, "dry run: %d steps to do; nothing was changed\n", todo)
		return nil
	}
	start := time.Now()
	run := k8supgrade.Run{
		Cluster:     &liveCluster{s: s, api: api, w: w},
		Nodes:       nodes,
		StepTimeout: stepTimeout,
		// Putting a step back waits at least 5 minutes: a short --timeout is for the new
		// version, not for the old one to come back.
		RevertTimeout: max(stepTimeout, 5*time.Minute),
		Say:           func(format string, a ...any) { fmt.Fprintf(w, format+"\n", a...) },
	}
	if err := run.Do(ctx, steps); err != nil {
		return err
	}
	fmt.Fprintf(w, "the cluster runs Kubernetes %s (%d steps in %s)\n", target, todo, time.Since(start).Round(time.Second))
	return nil
}

func apiVersion(ctx context.Context, api *kubeclient.Client) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	return api.Version(ctx)
}

// clusterNodes lists the Kubernetes Nodes and reads each one's machine configuration through
// the node API at its internal address; notReady lists the nodes that are not Ready.
func clusterNodes(ctx context.Context, s *session, api *kubeclient.Client) (nodes []k8supgrade.Node, notReady []string, err error) {
	lctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	list, err := api.ListNodes(lctx, "")
	cancel()
	if err != nil {
		return nil, nil, fmt.Errorf("list the cluster's nodes: %w", err)
	}
	if len(list) == 0 {
		return nil, nil, errors.New("the cluster has no nodes")
	}
	for _, kn := range list {
		addr := nodeAddress(kn)
		if addr == "" {
			return nil, nil, fmt.Errorf("node %s has no InternalIP: its node API cannot be reached", kn.Metadata.Name)
		}
		if !objects.Ready(kn.Status.Conditions) {
			notReady = append(notReady, fmt.Sprintf("node %s is not Ready: bring it back or remove it first", kn.Metadata.Name))
		}
		cfg, err := nodeConfig(ctx, s, addr)
		if err != nil {
			return nil, nil, fmt.Errorf("node %s (%s): read its machine configuration: %w", kn.Metadata.Name, addr, err)
		}
		nodes = append(nodes, k8supgrade.Node{Name: kn.Metadata.Name, Address: addr,
			ControlPlane: cfg.Machine.Type == config.TypeControlPlane, Config: cfg})
	}
	return nodes, notReady, nil
}

func nodeAddress(n objects.Node) string {
	for _, a := range n.Status.Addresses {
		if a.Type == "InternalIP" {
			return a.Address
		}
	}
	return ""
}

// nodeConfig reads the node's active machine configuration (a sensitive resource: os:admin).
func nodeConfig(ctx context.Context, s *session, addr string) (*config.MachineConfig, error) {
	ctx, cancel := context.WithTimeout(client.WithNode(ctx, addr), nodeAskTimeout)
	defer cancel()
	return activeConfig(ctx, s)
}

// activeConfig reads the active machine configuration of the node ctx is directed at.
func activeConfig(ctx context.Context, s *session) (*config.MachineConfig, error) {
	resp, err := s.client.Resource.Get(ctx, &rpb.GetRequest{Namespace: resources.NamespaceConfig, Type: resources.MachineConfigType, Id: resources.ActiveID})
	if err != nil {
		return nil, client.Describe(err)
	}
	var spec resources.MachineConfigSpec
	if err := yaml.Unmarshal(resp.GetResource().GetSpec(), &spec); err != nil {
		return nil, err
	}
	if spec.Config == nil {
		return nil, errors.New("the node has no configuration")
	}
	return spec.Config, nil
}

// missingImages says which nodes lack images the plan needs.
func missingImages(ctx context.Context, s *session, nodes []k8supgrade.Node, steps []k8supgrade.Step) ([]string, error) {
	var problems []string
	for _, n := range nodes {
		need := k8supgrade.NeededImages(steps, n.Name)
		if len(need) == 0 {
			continue
		}
		lctx, cancel := context.WithTimeout(client.WithNode(ctx, n.Address), nodeAskTimeout)
		resp, err := s.client.Machine.ImageList(lctx, &machine.ImageListRequest{})
		cancel()
		if err != nil {
			return nil, fmt.Errorf("node %s: list its images: %w", n.Name, client.Describe(err))
		}
		have := map[string]bool{}
		for _, im := range resp.Images {
			have[im.Name] = true
		}
		var lack []string
		for _, im := range need {
			if !have[im] {
				lack = append(lack, im)
			}
		}
		if len(lack) > 0 {
			problems = append(problems, fmt.Sprintf("node %s does not hold %s: Plinth pulls nothing; the version's image bundle must be in the node image or imported",
				n.Name, strings.Join(lack, ", ")))
		}
	}
	return problems, nil
}

// deprecatedInUse reads the deprecated APIs clients used from the API server's metrics.
func deprecatedInUse(ctx context.Context, api *kubeclient.Client) ([]k8supgrade.DeprecatedAPI, error) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	lines, err := api.MetricLines(ctx, k8supgrade.DeprecatedMetric+"{")
	if err != nil {
		return nil, err
	}
	return k8supgrade.ParseDeprecated(lines), nil
}

// liveCluster is the cluster the upgrade acts on: configurations through the node API,
// health through the Kubernetes API.
type liveCluster struct {
	s   *session
	api *kubeclient.Client
	w   io.Writer
}

func (c *liveCluster) Apply(ctx context.Context, n k8supgrade.Node, cfg *config.MachineConfig) error {
	data, err := config.Marshal(cfg, false)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(client.WithNode(ctx, n.Address), time.Minute)
	defer cancel()
	if _, err := c.s.client.Machine.ApplyConfiguration(ctx, &machine.ApplyConfigurationRequest{Data: data, Mode: "no-reboot"}); err != nil {
		return fmt.Errorf("apply the configuration to %s: %w", n.Name, client.Describe(err))
	}
	return nil
}

// poll calls check every 2 s until it says done, showing each new state, until ctx ends;
// the error then says the last state seen.
func (c *liveCluster) poll(ctx context.Context, what string, check func(ctx context.Context) (done bool, state string)) error {
	shown := ""
	for {
		cctx, cancel := context.WithTimeout(ctx, 15*time.Second)
		done, state := check(cctx)
		cancel()
		if done {
			return nil
		}
		if state != shown {
			fmt.Fprintf(c.w, "  %s: %s\n", what, state)
			shown = state
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s: %s: %w", what, shown, ctx.Err())
		case <-time.After(2 * time.Second):
		}
	}
}

func (c *liveCluster) WaitStaticPod(ctx context.Context, node string, comp k8supgrade.Component, image string) error {
	name := string(comp) + "-" + node
	return c.poll(ctx, "pod kube-system/"+name, func(ctx context.Context) (bool, string) {
		p, err := c.api.GetPod(ctx, "kube-system", name)
		if err != nil {
			return false, "not readable yet: " + firstLine(err.Error())
		}
		return podOn(p, image)
	})
}

// podOn says whether the pod runs image in every container and is ready, or what it waits for.
func podOn(p *objects.RunningPod, image string) (bool, string) {
	for _, ct := range p.Spec.Containers {
		if ct.Image != image {
			return false, "runs " + ct.Image
		}
	}
	if len(p.Status.ContainerStatuses) < len(p.Spec.Containers) {
		return false, image + ": starting"
	}
	for _, cs := range p.Status.ContainerStatuses {
		if cs.State.Running == nil || !cs.Ready {
			return false, fmt.Sprintf("%s: container %s not ready (restarts %d)", image, cs.Name, cs.RestartCount)
		}
	}
	if objects.Ready(p.Status.Conditions) {
		return true, ""
	}
	return false, image + ": pod not ready"
}

func (c *liveCluster) WaitProxy(ctx context.Context, image string) error {
	return c.poll(ctx, "daemonset kube-system/kube-proxy", func(ctx context.Context) (bool, string) {
		ds, err := c.api.GetDaemonSet(ctx, "kube-system", "kube-proxy")
		if err != nil {
			return false, "not readable yet: " + firstLine(err.Error())
		}
		for _, ct := range ds.Spec.Template.Spec.Containers {
			if ct.Image != image {
				return false, "template runs " + ct.Image
			}
		}
		st := ds.Status
		state := fmt.Sprintf("%s: %d of %d updated, %d available", image, st.UpdatedNumberScheduled, st.DesiredNumberScheduled, st.NumberAvailable)
		done := st.ObservedGeneration >= ds.Metadata.Generation && st.DesiredNumberScheduled > 0 &&
			st.UpdatedNumberScheduled == st.DesiredNumberScheduled && st.NumberAvailable == st.DesiredNumberScheduled &&
			st.NumberReady == st.DesiredNumberScheduled
		return done, state
	})
}

func (c *liveCluster) WaitKubelet(ctx context.Context, node, version string) error {
	return c.poll(ctx, "node "+node, func(ctx context.Context) (bool, string) {
		n, err := c.api.GetNode(ctx, node)
		if err != nil {
			return false, "not readable yet: " + firstLine(err.Error())
		}
		ready := objects.Ready(n.Status.Conditions)
		state := fmt.Sprintf("kubelet %s, ready %v", n.Status.NodeInfo.KubeletVersion, ready)
		return n.Status.NodeInfo.KubeletVersion == version && ready, state
	})
}
