package cli

import (
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"slices"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/plinthos/plinth/internal/bringup"
	"github.com/plinthos/plinth/internal/localcluster"
	"github.com/plinthos/plinth/internal/provision"
	"github.com/plinthos/plinth/internal/provision/docker"
	qemuprov "github.com/plinthos/plinth/internal/provision/qemu"
	"github.com/plinthos/plinth/internal/version"
	"github.com/plinthos/plinth/pkg/config"
	"github.com/plinthos/plinth/pkg/config/patch"
)

// The provisioners `cluster` knows.
const (
	provisionerDocker = "docker"
	provisionerQEMU   = "qemu"
)

// newProvisioner returns the provisioner named by --provisioner; tests replace it.
var newProvisioner = func(name string) (provision.Provisioner, error) {
	switch name {
	case provisionerDocker:
		return docker.New(), nil
	case provisionerQEMU:
		home, err := os.UserHomeDir()
		if err != nil {
			return nil, fmt.Errorf("find the home directory, where the QEMU provisioner keeps its VMs: %w", err)
		}
		return qemuprov.New(localcluster.ClustersDir(home)), nil
	default:
		return nil, fmt.Errorf("unknown provisioner %q: use docker or qemu", name)
	}
}

// provisionerHelp is the help of --provisioner.
const provisionerHelp = "what runs the nodes: docker (containers) or qemu (VMs of the OS image; needs root)"

// defaultStateDir is ~/.plinth/clusters/NAME.
func defaultStateDir(name string) (string, error) {
	home, err := os.UserHomeDir()
	if err != nil {
		return "", fmt.Errorf("find the home directory for the state directory (pass --state-dir): %w", err)
	}
	return localcluster.DefaultStateDir(home, name), nil
}

// clusterFlags are the flags every cluster subcommand shares.
type clusterFlags struct {
	name        string
	provisioner string
	stateDir    string
}

func (f *clusterFlags) add(cmd *cobra.Command, withStateDir bool) {
	cmd.Flags().StringVar(&f.name, "name", provision.DefaultName, "the cluster's name")
	cmd.Flags().StringVar(&f.provisioner, "provisioner", provisionerDocker, provisionerHelp)
	if withStateDir {
		cmd.Flags().StringVar(&f.stateDir, "state-dir", "", "directory of the cluster's secrets, configs and plinthconfig (default ~/.plinth/clusters/NAME)")
	}
}

func (f *clusterFlags) resolveStateDir() (string, error) {
	if f.stateDir != "" {
		return f.stateDir, nil
	}
	return defaultStateDir(f.name)
}

func newClusterCommand(g *globalFlags) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "cluster",
		Short: "Create, show and destroy local clusters whose nodes are Docker containers or QEMU VMs",
		Long: `Local clusters run each node as a Docker container of the node image (--provisioner
docker, the default) or as a QEMU VM booting the OS image (--provisioner qemu), on a network
of their own (10.5.0.0/24 by default). 'cluster create' generates the cluster's secrets and
configurations into a state directory, starts the nodes, adds a context for the cluster to
the client config, and bootstraps it. Docker clusters are found again from Docker labels
(plinth.cluster=NAME), QEMU clusters from their record in ~/.plinth/clusters/NAME/qemu, so
clusters with different names live side by side. Pass the same --provisioner to every
subcommand. See docs/local-clusters.md.`,
	}
	cmd.AddCommand(newClusterCreateCommand(g), newClusterShowCommand(), newClusterDestroyCommand(g), newClusterListCommand(), newClusterLogsCommand(), newClusterLoadImageCommand(g))
	return cmd
}

type clusterCreateFlags struct {
	clusterFlags
	controlPlanes     int
	workers           int
	cpus              float64
	memoryMB          int
	image             string
	osImage           string
	kubernetesVersion string
	patches           []string
	patchesCP         []string
	patchesWorker     []string
	cidr              string
	isolated          bool
	wait              bool
	waitTimeout       time.Duration
	retain            bool
	timings           bool
}

func newClusterCreateCommand(g *globalFlags) *cobra.Command {
	f := &clusterCreateFlags{}
	cmd := &cobra.Command{
		Use:   "create",
		Short: "Create a local cluster, add its context to the client config and bootstrap it",
		Long: `Create a local cluster: generate a secrets bundle and the machine configurations (written
to the state directory with the cluster's plinthconfig), create the network plinth-NAME and
one container per node (NAME-controlplane-N, NAME-worker-N, addresses in order from .2),
then merge a context named after the cluster into the client config and make it current.

Every control plane publishes its node API (50000) on a random port of 127.0.0.1; the
context lists these endpoints, the first control plane's first. With one control plane,
it also publishes the Kubernetes API (6443), which is the cluster's endpoint. With more,
a load balancer container NAME-lb takes the address after the gateway (so the nodes start
at .3), forwards 6443 to every control plane whose API server answers, and publishes it on
127.0.0.1; the cluster's endpoint is https://LB:6443, so the API stays reachable when a
control plane stops.

With --isolated, the network is a Docker internal network: whatever a node (or a pod) sends
to an address outside it dies on this machine, with no NAT and no route out, so the cluster
pulls nothing and reaches nothing beyond the machine. Nothing is published on 127.0.0.1
then: the host reaches the nodes at their own addresses, which the context and the
kubeconfig name (the host is on the network, at its gateway). The e2e tests and
conformance always use it. QEMU clusters are always isolated.

With --wait (the default) it then waits until the first control plane's node API answers
and bootstraps the cluster (etcd and the Kubernetes control plane start there), then
waits until the cluster is healthy.

The node image is not pulled: build and load it with 'make image-docker', or name another
with --image.

With --provisioner qemu, each node is a VM booting the OS image of --os-image (make
image-os) from a copy-on-write overlay of its disk, with its machine configuration handed
over through the firmware (fw_cfg) and a static address on the cluster network. The VMs
share a bridge in a network namespace of the cluster's own, which the host joins at the
network's first address and reaches every node on its own (node API on port 50000);
nothing routes from there off the machine. This needs root. The VMs run detached and stay
up after plinthctl exits; 'cluster logs' shows their consoles. One control plane only, for
now. The image of 'make image-os' carries no Kubernetes (its profile is os): --wait then
waits until every node's API answers, and there is nothing to bootstrap. With an image of
'make image-os-k8s' (--os-image _out/os-k8s), create bootstraps and waits for health as
with Docker.

If a step fails, or Ctrl-C interrupts it, everything created so far is removed again. After
the nodes have started (the wait, the bootstrap, the health wait), the last log lines of
every node are printed first; then the containers, volumes and network go, with the state
directory's files, the context merged into the client config (the context current before
is current again) and the one merged into the kubeconfig (the entries it replaced come
back). With --retain, a cluster whose wait, bootstrap or health wait failed is kept to be
inspected; remove it with 'plinthctl cluster destroy'.

With --timings, once the cluster is healthy, it prints when each phase of every node's
bring-up began and ended, in seconds from the start of the command: machined up, containerd
ready, the image bundle imported, kubelet registered, etcd, the API server and the static
pods ready, kube-proxy's pod (and flannel's, with that CNI) ready, the node Ready. The first phases come
from the node's events, the others from the Kubernetes API, which keeps its times to the
second.`,
		Example: `  plinthctl cluster create
  plinthctl cluster create --name demo --workers 2 --cpus 2 --memory 4096
  plinthctl cluster create --controlplanes 3 --workers 0 --cidr 10.6.0.0/24 --wait=false
  plinthctl cluster create --retain --wait-timeout 5m
  plinthctl cluster create --isolated --name offline --cidr 10.7.0.0/24
  plinthctl cluster create --timings
  sudo plinthctl cluster create --provisioner qemu --os-image _out/os --name vms --cidr 10.6.0.0/24
  plinthctl cluster create --config-patch-worker '{"machine": {"kubelet": {"nodeLabels": {"pool": "blue"}}}}'`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return runClusterCreate(cmd, g, f) },
	}
	fl := cmd.Flags()
	f.add(cmd, true)
	fl.IntVar(&f.controlPlanes, "controlplanes", 1, "number of control-plane nodes (more than one adds the load balancer NAME-lb)")
	fl.IntVar(&f.workers, "workers", 1, "number of worker nodes; with 0, workloads run on the control planes")
	fl.Float64Var(&f.cpus, "cpus", 0, "CPUs per node, such as 1.5 (default: no limit)")
	fl.IntVar(&f.memoryMB, "memory", 0, "memory per node in MiB (default: no limit)")
	fl.StringVar(&f.image, "image", "plinth/node:"+version.Tag, "node image of the Docker provisioner (build it with make image-docker)")
	fl.StringVar(&f.osImage, "os-image", qemuprov.DefaultImage, "OS image directory of the QEMU provisioner (build it with make image-os)")
	fl.StringVar(&f.kubernetesVersion, "kubernetes-version", config.DefaultKubernetesVersion, "Kubernetes version of the control-plane images")
	fl.StringArrayVar(&f.patches, "config-patch", nil, "patch applied to every machine config (inline or @FILE; repeatable)")
	fl.StringArrayVar(&f.patchesCP, "config-patch-control-plane", nil, "patch applied to the control-plane config (inline or @FILE; repeatable)")
	fl.StringArrayVar(&f.patchesWorker, "config-patch-worker", nil, "patch applied to the worker config (inline or @FILE; repeatable)")
	fl.StringVar(&f.cidr, "cidr", provision.DefaultCIDR, "the cluster network; the gateway is its first address, the nodes follow")
	fl.BoolVar(&f.isolated, "isolated", false, "a network with no route off this machine (Docker internal network; the host reaches the nodes at their addresses)")
	fl.BoolVar(&f.wait, "wait", true, "wait for the first control plane's node API, then bootstrap the cluster")
	fl.DurationVar(&f.waitTimeout, "wait-timeout", 10*time.Minute, "how long --wait waits")
	fl.BoolVar(&f.timings, "timings", false, "once the cluster is healthy, print when each phase of every node's bring-up began and ended")
	fl.BoolVar(&f.retain, "retain", false, "keep the cluster when the wait, the bootstrap or the health wait fails, to inspect it; remove it with cluster destroy")
	return cmd
}

func runClusterCreate(cmd *cobra.Command, g *globalFlags, f *clusterCreateFlags) error {
	out := cmd.OutOrStdout()
	// Ctrl-C (or SIGTERM) cancels the step under way instead of killing plinthctl, so that
	// what was made is removed again.
	ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if f.cpus < 0 || f.memoryMB < 0 {
		return errors.New("--cpus and --memory cannot be negative")
	}
	if f.timings && !f.wait {
		return errors.New("--timings needs --wait: the phases are read once the cluster is healthy")
	}
	stateDir, err := f.resolveStateDir()
	if err != nil {
		return err
	}
	image, err := f.nodeImage(cmd)
	if err != nil {
		return err
	}
	prov, err := newProvisioner(f.provisioner)
	if err != nil {
		return err
	}
	configPath, err := g.configPath()
	if err != nil {
		return err
	}
	opts := localcluster.CreateOptions{
		Name: f.name, Image: image, ControlPlanes: f.controlPlanes, Workers: f.workers,
		CPUs: f.cpus, MemoryMB: f.memoryMB, CIDR: f.cidr, Isolated: f.isolated, KubernetesVersion: f.kubernetesVersion,
		StateDir: stateDir, ClientConfigPath: configPath,
		Wait: f.wait, WaitTimeout: f.waitTimeout, Retain: f.retain,
		CheckHealth: checkHealth, // the one `plinthctl health` runs
		Progress:    out,
		// A second Ctrl-C now kills plinthctl, in the middle of the removal.
		OnFailure:  stop,
		RemoveNote: "Ctrl-C again stops the removal; finish it then with `" + f.destroyCommand() + "`",
	}
	for _, p := range []struct {
		flag []string
		to   *[]patch.Patch
	}{{f.patches, &opts.Patches}, {f.patchesCP, &opts.ControlPlanePatches}, {f.patchesWorker, &opts.WorkerPatches}} {
		if *p.to, err = patch.LoadAll(p.flag); err != nil {
			return err
		}
	}
	res, err := localcluster.Create(ctx, prov, opts)
	if err != nil {
		return f.createFailure(err)
	}
	first := res.Cluster.FirstControlPlane()
	if res.Cluster.NoKubernetes {
		printNodesUsage(out, f, res)
		return nil
	}
	if !res.Bootstrapped {
		fmt.Fprintf(out, "cluster %q is created; with --wait=false it is not bootstrapped: run\n  plinthctl%s -n %s bootstrap\nonce its node API answers (plinthctl%s -n %s version).\n",
			f.name, contextFlag(res.Context, f.name), first.IP, contextFlag(res.Context, f.name), first.IP)
		return nil
	}
	printClusterUsage(out, f.name, res.Context, res.ClientConfigPath, res.Cluster)
	if f.timings {
		nodes, err := localcluster.Timings(ctx, res)
		if err != nil {
			return fmt.Errorf("the cluster is up, but its timings could not be read: %w", err)
		}
		fmt.Fprintln(out, "\ntimings, in seconds from the start of cluster create:")
		return bringup.Write(out, res.Started, nodes)
	}
	return nil
}

// nodeImage is the image the provisioner boots: --image for Docker, --os-image for QEMU;
// the other's flag is refused.
func (f *clusterCreateFlags) nodeImage(cmd *cobra.Command) (string, error) {
	switch {
	case f.provisioner == provisionerQEMU && cmd.Flags().Changed("image"):
		return "", errors.New("--image is the Docker provisioner's node image: the QEMU provisioner boots the OS image of --os-image")
	case f.provisioner != provisionerQEMU && cmd.Flags().Changed("os-image"):
		return "", errors.New("--os-image is for --provisioner qemu: the Docker provisioner runs the node image of --image")
	case f.provisioner == provisionerQEMU:
		return f.osImage, nil
	}
	return f.image, nil
}

// provisionerFlag is " --provisioner NAME" for any provisioner but the default.
func (f *clusterFlags) provisionerFlag() string {
	if f.provisioner == provisionerDocker {
		return ""
	}
	return " --provisioner " + f.provisioner
}

// printNodesUsage says what a cluster without Kubernetes is, once created.
func printNodesUsage(out io.Writer, f *clusterCreateFlags, res *localcluster.Result) {
	ctxFlag := contextFlag(res.Context, f.name)
	first := res.Cluster.FirstControlPlane()
	if res.NodesUp {
		fmt.Fprintf(out, "\ncluster %q is up: every node's API answers. Talk to it with plinthctl (context %q in %s):\n", f.name, res.Context, res.ClientConfigPath)
	} else {
		fmt.Fprintf(out, "\ncluster %q is created; with --wait=false nobody waited for its nodes. Talk to it with plinthctl (context %q in %s) once they answer:\n", f.name, res.Context, res.ClientConfigPath)
	}
	fmt.Fprintf(out, "  plinthctl%s version                      # every node, through %s\n", ctxFlag, first.Name)
	fmt.Fprintf(out, "  plinthctl%s -n %s services\n", ctxFlag, first.IP)
	fmt.Fprintf(out, "  plinthctl cluster show%s --name %s\n", f.provisionerFlag(), f.name)
	fmt.Fprintf(out, "  plinthctl cluster logs%s --name %s         # the nodes' consoles\n", f.provisionerFlag(), f.name)
	fmt.Fprintf(out, "  %s\n", f.destroyCommand())
	fmt.Fprintln(out, "The nodes' OS image has no Kubernetes: nothing was bootstrapped, and there is no kubeconfig (make image-os-k8s builds an image with Kubernetes: pass it with --os-image).")
}

// destroyCommand is the command that removes the cluster being created.
func (f *clusterCreateFlags) destroyCommand() string {
	destroy := "plinthctl cluster destroy" + f.provisionerFlag() + " --name " + f.name
	if f.stateDir != "" {
		destroy += " --state-dir " + f.stateDir
	}
	return destroy
}

// createFailure says what became of a cluster whose create failed after its nodes
// started, and what to do with it.
func (f *clusterCreateFlags) createFailure(err error) error {
	var ce *localcluster.CreateError
	if !errors.As(err, &ce) {
		return err
	}
	switch {
	case ce.Retained:
		return fmt.Errorf("%w\nthe nodes' last log lines are above; the cluster is kept (--retain): inspect it with `plinthctl cluster show%s --name %s`, remove it with `%s`",
			ce.Err, f.provisionerFlag(), f.name, f.destroyCommand())
	case ce.RemoveErr != nil:
		return fmt.Errorf("%w\nthe nodes' last log lines are above; removing the cluster failed: %v\nfinish the removal with `%s`", ce.Err, ce.RemoveErr, f.destroyCommand())
	}
	return fmt.Errorf("%w\nthe nodes' last log lines are above; the cluster is removed (create it with --retain to keep a failed cluster for inspection)", ce.Err)
}

// contextFlag is " --context NAME" when the cluster's context was renamed on merge.
func contextFlag(contextName, cluster string) string {
	if contextName == cluster {
		return ""
	}
	return " --context " + contextName
}

func printClusterUsage(out io.Writer, name, contextName, configPath string, c *provision.Cluster) {
	ctxFlag := contextFlag(contextName, name)
	first := c.FirstControlPlane()
	fmt.Fprintf(out, "\ncluster %q is up and bootstrapped. Talk to it with plinthctl (context %q in %s):\n", name, contextName, configPath)
	through := first.Name
	if cps := c.ControlPlanes(); len(cps) > 1 {
		through = fmt.Sprintf("%s (or another control plane)", first.Name)
	}
	fmt.Fprintf(out, "  plinthctl%s version                      # every node, through %s\n", ctxFlag, through)
	fmt.Fprintf(out, "  plinthctl%s -n %s services\n", ctxFlag, first.IP)
	fmt.Fprintf(out, "  plinthctl%s -n %s logs kubelet -f\n", ctxFlag, first.IP)
	fmt.Fprintf(out, "  plinthctl cluster show --name %s\n", name)
	fmt.Fprintf(out, "  plinthctl cluster destroy --name %s\n", name)
	fmt.Fprintf(out, "Kubernetes is healthy; kubectl uses context %q (merged into your kubeconfig):\n  kubectl get nodes\n  plinthctl health\n", name)
	if c.LoadBalancer != nil {
		fmt.Fprintf(out, "kubectl reaches the API servers through the load balancer %s (127.0.0.1:%d); it skips a control plane that stops.\n", c.LoadBalancer.Name, c.LoadBalancer.KubePort)
	}
}

func newClusterShowCommand() *cobra.Command {
	f := &clusterFlags{}
	cmd := &cobra.Command{
		Use:   "show",
		Short: "Show a local cluster's nodes and load balancer: role, address, state, published ports",
		Example: `  plinthctl cluster show
  plinthctl cluster show --name demo
  plinthctl cluster show --provisioner qemu --name vms`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			prov, err := newProvisioner(f.provisioner)
			if err != nil {
				return err
			}
			c, err := prov.Show(cmd.Context(), f.name)
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			fmt.Fprintf(out, "cluster %s: network %s (%s)\n\n", c.Name, c.Network, orDash(c.CIDR))
			if err := localcluster.WriteTable(out, c); err != nil {
				return err
			}
			if c.NoKubernetes {
				fmt.Fprintln(out, "\nthe nodes' image has no Kubernetes: they run the OS alone")
			}
			return nil
		},
	}
	f.add(cmd, false)
	return cmd
}

func newClusterDestroyCommand(g *globalFlags) *cobra.Command {
	f := &clusterFlags{}
	cmd := &cobra.Command{
		Use:   "destroy",
		Short: "Remove a local cluster: its containers or VMs, volumes, network, contexts and state directory",
		Long: `Remove every container, volume and network labelled with the cluster's name (with
--provisioner qemu: stop the VMs, remove the cluster's network namespace and host link, and
its directory of disks, consoles and record in ~/.plinth/clusters/NAME/qemu), what
cluster create merged into the kubeconfig (~/.kube/config, or the first file of
$KUBECONFIG): the context and cluster NAME and the user admin@NAME (the cluster and user
stay while another context refers to them), the cluster's context from the client config
(found by the cluster's CA), and the cluster's files in its state directory. Where a
removed context was current, no context is current afterwards. Destroying a cluster that
is already gone succeeds.`,
		Example: `  plinthctl cluster destroy
  plinthctl cluster destroy --name demo
  sudo plinthctl cluster destroy --provisioner qemu --name vms`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			stateDir, err := f.resolveStateDir()
			if err != nil {
				return err
			}
			prov, err := newProvisioner(f.provisioner)
			if err != nil {
				return err
			}
			configPath, err := g.configPath()
			if err != nil {
				return err
			}
			return localcluster.Destroy(cmd.Context(), prov, f.name, localcluster.DestroyOptions{
				StateDir: stateDir, ClientConfigPath: configPath, Progress: cmd.OutOrStdout(),
			})
		},
	}
	f.add(cmd, true)
	return cmd
}

func newClusterListCommand() *cobra.Command {
	f := &clusterFlags{}
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List the local clusters",
		Example: `  plinthctl cluster list
  plinthctl cluster list --provisioner qemu`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			prov, err := newProvisioner(f.provisioner)
			if err != nil {
				return err
			}
			clusters, err := localcluster.List(cmd.Context(), prov)
			if err != nil {
				return err
			}
			w := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
			fmt.Fprintln(w, "NAME\tNETWORK\tNODES\tRUNNING")
			for _, c := range clusters {
				fmt.Fprintf(w, "%s\t%s\t%d\t%d\n", c.Name, orDash(c.CIDR), c.Nodes, c.Running)
			}
			return w.Flush()
		},
	}
	cmd.Flags().StringVar(&f.provisioner, "provisioner", provisionerDocker, provisionerHelp)
	return cmd
}

func newClusterLogsCommand() *cobra.Command {
	f := &clusterFlags{}
	lines := 0
	cmd := &cobra.Command{
		Use:   "logs [NODE...]",
		Short: "Print the last lines of a local cluster's node logs: containers' output, or VMs' serial consoles",
		Long: `Print the last lines of every node's log (or of the nodes named), and of the load
balancer's: the container's output for Docker nodes, the serial console (firmware, kernel,
machined) for QEMU VMs. The node API's logs (plinthctl logs SERVICE) need the node to be up;
these do not.`,
		Example: `  plinthctl cluster logs
  plinthctl cluster logs --lines 200 plinth-worker-1
  plinthctl cluster logs --provisioner qemu --name vms`,
		RunE: func(cmd *cobra.Command, args []string) error {
			if lines <= 0 {
				return errors.New("--lines must be positive")
			}
			prov, err := newProvisioner(f.provisioner)
			if err != nil {
				return err
			}
			c, err := prov.Show(cmd.Context(), f.name)
			if err != nil {
				return err
			}
			if len(args) > 0 {
				picked, err := pickNodes(c, args)
				if err != nil {
					return err
				}
				c = picked
			}
			localcluster.WriteLogs(cmd.Context(), cmd.OutOrStdout(), prov, c, lines)
			return nil
		},
	}
	f.add(cmd, false)
	cmd.Flags().IntVar(&lines, "lines", localcluster.LogLines, "how many of each log's last lines")
	return cmd
}

// pickNodes is the cluster with only the nodes (or load balancer) named.
func pickNodes(c *provision.Cluster, names []string) (*provision.Cluster, error) {
	picked := &provision.Cluster{Name: c.Name, Network: c.Network, CIDR: c.CIDR}
	all := slices.Clone(c.Nodes)
	if c.LoadBalancer != nil {
		all = append(all, *c.LoadBalancer)
	}
	for _, name := range names {
		i := slices.IndexFunc(all, func(n provision.Node) bool { return n.Name == name })
		if i < 0 {
			var known []string
			for _, n := range all {
				known = append(known, n.Name)
			}
			return nil, fmt.Errorf("cluster %s has no node %q (it has %s)", c.Name, name, strings.Join(known, ", "))
		}
		picked.Nodes = append(picked.Nodes, all[i])
	}
	return picked, nil
}
