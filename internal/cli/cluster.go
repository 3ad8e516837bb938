package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/plinthos/plinth/internal/configgen"
	"github.com/plinthos/plinth/internal/health"
	"github.com/plinthos/plinth/internal/kubeconfig"
	"github.com/plinthos/plinth/internal/provision"
	"github.com/plinthos/plinth/internal/provision/docker"
	"github.com/plinthos/plinth/internal/version"
	"github.com/plinthos/plinth/pkg/api/machine"
	"github.com/plinthos/plinth/pkg/client"
	"github.com/plinthos/plinth/pkg/clientconfig"
	"github.com/plinthos/plinth/pkg/config"
	"github.com/plinthos/plinth/pkg/config/patch"
	"github.com/plinthos/plinth/pkg/role"
	"github.com/plinthos/plinth/pkg/secrets"
)

// The provisioners `cluster` knows.
const provisionerDocker = "docker"

// newProvisioner returns the provisioner named by --provisioner; tests replace it.
var newProvisioner = func(name string) (provision.Provisioner, error) {
	switch name {
	case provisionerDocker:
		return docker.New(), nil
	default:
		return nil, fmt.Errorf("unknown provisioner %q: use docker (qemu comes later)", name)
	}
}

// The files of a cluster's state directory, in the order they are written.
const (
	stateSecrets      = "secrets.yaml"
	stateControlPlane = "controlplane.yaml"
	stateWorker       = "worker.yaml"
	statePlinthconfig = "plinthconfig"
)

var stateFiles = []string{stateSecrets, stateControlPlane, stateWorker, statePlinthconfig}

// defaultStateDir is ~/.plinth/clusters/NAME.
func defaultStateDir(name string) (string, error) {
	home, err := os.UserHomeDir()
	if err != nil {
		return "", fmt.Errorf("find the home directory for the state directory (pass --state-dir): %w", err)
	}
	return filepath.Join(home, ".plinth", "clusters", name), nil
}

// clusterFlags are the flags every cluster subcommand shares.
type clusterFlags struct {
	name        string
	provisioner string
	stateDir    string
}

func (f *clusterFlags) add(cmd *cobra.Command, withStateDir bool) {
	cmd.Flags().StringVar(&f.name, "name", provision.DefaultName, "the cluster's name")
	cmd.Flags().StringVar(&f.provisioner, "provisioner", provisionerDocker, "what runs the nodes: docker")
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
		Short: "Create, show and destroy local clusters whose nodes are Docker containers",
		Long: `Local clusters run each node as a Docker container of the node image, on a network of
their own (10.5.0.0/24 by default). 'cluster create' generates the cluster's secrets and
configurations into a state directory, starts the nodes, adds a context for the cluster to
the client config, and bootstraps it. Everything is found again from Docker labels
(plinth.cluster=NAME), so clusters with different names live side by side.
See docs/local-clusters.md.`,
	}
	cmd.AddCommand(newClusterCreateCommand(g), newClusterShowCommand(), newClusterDestroyCommand(g), newClusterListCommand())
	return cmd
}

type clusterCreateFlags struct {
	clusterFlags
	controlPlanes     int
	workers           int
	cpus              float64
	memoryMB          int
	image             string
	kubernetesVersion string
	patches           []string
	patchesCP         []string
	patchesWorker     []string
	cidr              string
	wait              bool
	waitTimeout       time.Duration
	retain            bool
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

With --wait (the default) it then waits until the first control plane's node API answers
and bootstraps the cluster (etcd and the Kubernetes control plane start there), then
waits until the cluster is healthy.

The node image is not pulled: build and load it with 'make image-docker', or name another
with --image.

If a step fails, or Ctrl-C interrupts it, everything created so far is removed again. After
the nodes have started (the wait, the bootstrap, the health wait), the last log lines of
every node are printed first; then the containers, volumes and network go, with the state
directory's files, the context merged into the client config (the context current before
is current again) and the one merged into the kubeconfig (the entries it replaced come
back). With --retain, a cluster whose wait, bootstrap or health wait failed is kept to be
inspected; remove it with 'plinthctl cluster destroy'.`,
		Example: `  plinthctl cluster create
  plinthctl cluster create --name demo --workers 2 --cpus 2 --memory 4096
  plinthctl cluster create --controlplanes 3 --workers 0 --cidr 10.6.0.0/24 --wait=false
  plinthctl cluster create --retain --wait-timeout 5m
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
	fl.StringVar(&f.image, "image", "plinth/node:"+version.Tag, "node image (build it with make image-docker)")
	fl.StringVar(&f.kubernetesVersion, "kubernetes-version", config.DefaultKubernetesVersion, "Kubernetes version of the control-plane images")
	fl.StringArrayVar(&f.patches, "config-patch", nil, "patch applied to every machine config (inline or @FILE; repeatable)")
	fl.StringArrayVar(&f.patchesCP, "config-patch-control-plane", nil, "patch applied to the control-plane config (inline or @FILE; repeatable)")
	fl.StringArrayVar(&f.patchesWorker, "config-patch-worker", nil, "patch applied to the worker config (inline or @FILE; repeatable)")
	fl.StringVar(&f.cidr, "cidr", provision.DefaultCIDR, "the cluster network; the gateway is its first address, the nodes follow")
	fl.BoolVar(&f.wait, "wait", true, "wait for the first control plane's node API, then bootstrap the cluster")
	fl.DurationVar(&f.waitTimeout, "wait-timeout", 10*time.Minute, "how long --wait waits")
	fl.BoolVar(&f.retain, "retain", false, "keep the cluster when the wait, the bootstrap or the health wait fails, to inspect it; remove it with cluster destroy")
	return cmd
}

// clusterConfigs are a new cluster's generated secrets and configurations.
type clusterConfigs struct {
	bundle       *secrets.Bundle
	endpoint     string
	controlPlane []byte
	worker       []byte
}

// generateClusterConfigs builds the cluster's secrets and machine configurations: the
// endpoint is the load balancer's address, or the first control plane's when there is no
// load balancer (one control plane); 127.0.0.1 is added to the certificates
// (the published ports are reached there), patches are applied and the results validated
// for Docker.
func generateClusterConfigs(f *clusterCreateFlags, plan *provision.Plan, now time.Time) (*clusterConfigs, error) {
	common, err := patch.LoadAll(f.patches)
	if err != nil {
		return nil, err
	}
	cpPatches, err := patch.LoadAll(f.patchesCP)
	if err != nil {
		return nil, err
	}
	workerPatches, err := patch.LoadAll(f.patchesWorker)
	if err != nil {
		return nil, err
	}
	bundle, err := secrets.Generate(now)
	if err != nil {
		return nil, err
	}
	endpointHost := plan.Nodes[0].IP
	if plan.LoadBalancer != nil {
		endpointHost = plan.LoadBalancer.IP
	}
	endpoint := "https://" + net.JoinHostPort(endpointHost, strconv.Itoa(docker.KubePort))
	configs, err := configgen.Generate(bundle, configgen.Options{
		ClusterName:       f.name,
		Endpoint:          endpoint,
		KubernetesVersion: f.kubernetesVersion,
		AdditionalSANs:    []string{"127.0.0.1"},
	})
	if err != nil {
		return nil, err
	}
	if f.workers == 0 {
		// With no worker, workloads (CoreDNS among them) must run on the control planes;
		// a patch may still say otherwise.
		configs.ControlPlane.Cluster.AllowSchedulingOnControlPlanes = true
		configs.Worker.Cluster.AllowSchedulingOnControlPlanes = true
	}
	out := &clusterConfigs{bundle: bundle, endpoint: endpoint}
	for _, m := range []struct {
		file    string
		cfg     *config.MachineConfig
		patches []patch.Patch
		data    *[]byte
	}{
		{stateControlPlane, configs.ControlPlane, append(slices.Clone(common), cpPatches...), &out.controlPlane},
		{stateWorker, configs.Worker, append(slices.Clone(common), workerPatches...), &out.worker},
	} {
		cfg, err := config.ApplyPatches(m.cfg, m.patches, m.file)
		if err != nil {
			return nil, err
		}
		if ps := config.Validate(cfg, config.ModeDocker); len(ps) > 0 {
			return nil, fmt.Errorf("the generated %s is not valid for Docker (check the flags and patches):\n%w", m.file, ps)
		}
		if *m.data, err = config.Marshal(cfg, true); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// checkStateDirFree refuses a state directory that holds a cluster's files already.
func checkStateDirFree(dir, name string) error {
	var existing []string
	for _, file := range stateFiles {
		p := filepath.Join(dir, file)
		if _, err := os.Stat(p); err == nil {
			existing = append(existing, p)
		} else if !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("check %s: %w", p, err)
		}
	}
	if len(existing) > 0 {
		return fmt.Errorf("the state directory %s holds files of an earlier cluster (%s): remove them with `plinthctl cluster destroy --name %s`, or pass another --state-dir",
			dir, strings.Join(existing, ", "), name)
	}
	return nil
}

// removeStateFiles removes the state files and then the directory if it is empty; it
// never removes anything else. It reports what it removed.
func removeStateFiles(dir string, out io.Writer) error {
	var errs []error
	removed := 0
	for _, file := range stateFiles {
		err := os.Remove(filepath.Join(dir, file))
		switch {
		case err == nil:
			removed++
		case !errors.Is(err, fs.ErrNotExist):
			errs = append(errs, err)
		}
	}
	if err := os.Remove(dir); err == nil {
		fmt.Fprintf(out, "removed the state directory %s\n", dir)
	} else if removed > 0 && !errors.Is(err, fs.ErrNotExist) {
		fmt.Fprintf(out, "removed the cluster's files from %s (other files are left there)\n", dir)
	}
	return errors.Join(errs...)
}

func runClusterCreate(cmd *cobra.Command, g *globalFlags, f *clusterCreateFlags) error {
	out := cmd.OutOrStdout()
	// Ctrl-C (or SIGTERM) cancels the step under way instead of killing plinthctl, so that
	// what was made is removed again.
	ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	plan, err := provision.NewPlan(f.name, f.controlPlanes, f.workers, f.cidr)
	if err != nil {
		return err
	}
	if f.cpus < 0 || f.memoryMB < 0 {
		return errors.New("--cpus and --memory cannot be negative")
	}
	stateDir, err := f.resolveStateDir()
	if err != nil {
		return err
	}
	prov, err := newProvisioner(f.provisioner)
	if err != nil {
		return err
	}
	now := time.Now()
	cfgs, err := generateClusterConfigs(f, plan, now)
	if err != nil {
		return err
	}
	req := provision.Request{
		Name: f.name, Image: f.image, ControlPlanes: f.controlPlanes, Workers: f.workers,
		CPUs: f.cpus, MemoryMB: f.memoryMB, CIDR: plan.CIDR, Progress: out,
		Configs: func(n provision.NodeSpec) ([]byte, error) {
			if n.Role == provision.RoleControlPlane {
				return cfgs.controlPlane, nil
			}
			return cfgs.worker, nil
		},
	}
	// Check before writing anything, so that a clash never touches an existing cluster's
	// state directory.
	if err := prov.Preflight(ctx, req); err != nil {
		return err
	}
	if err := checkStateDirFree(stateDir, f.name); err != nil {
		return err
	}
	secretsData, err := cfgs.bundle.Marshal()
	if err != nil {
		return err
	}
	files := []outputFile{
		{filepath.Join(stateDir, stateSecrets), secretsData, 0o600},
		{filepath.Join(stateDir, stateControlPlane), cfgs.controlPlane, 0o600},
		{filepath.Join(stateDir, stateWorker), cfgs.worker, 0o600},
	}
	if err := writeOutputs(files, false, reportCreated(cmd)); err != nil {
		return err
	}
	cluster, err := prov.Create(ctx, req)
	if err != nil {
		if rerr := removeStateFiles(stateDir, out); rerr != nil {
			err = fmt.Errorf("%w\n(and removing the state files failed: %v)", err, rerr)
		}
		return err
	}
	made := &createdCluster{name: f.name, stateDir: stateDir, cluster: cluster}
	if err := finishClusterCreate(ctx, cmd, g, f, cfgs, now, made); err != nil {
		// A second Ctrl-C now kills plinthctl, in the middle of the removal.
		stop()
		return failedClusterCreate(ctx, out, g, f, prov, made, err)
	}
	return nil
}

// finishClusterCreate does the steps after the provisioner started the nodes: the client
// context, then with --wait the bootstrap and the wait until the cluster is healthy. It
// records in made what it changed, for failedClusterCreate.
func finishClusterCreate(ctx context.Context, cmd *cobra.Command, g *globalFlags, f *clusterCreateFlags, cfgs *clusterConfigs, now time.Time, made *createdCluster) error {
	out := cmd.OutOrStdout()
	cluster := made.cluster
	first := cluster.FirstControlPlane()
	if first == nil || first.APIPort == 0 {
		return fmt.Errorf("cluster %q has no control plane with a published node API port", f.name)
	}
	// The context reaches the nodes through every control plane's published node API, the
	// first control plane's first; bootstrap goes to that one.
	apiEndpoint := "127.0.0.1:" + strconv.Itoa(first.APIPort)
	var apiEndpoints []string
	for _, cp := range cluster.ControlPlanes() {
		if cp.APIPort != 0 {
			apiEndpoints = append(apiEndpoints, "127.0.0.1:"+strconv.Itoa(cp.APIPort))
		}
	}
	cc, err := configgen.ClientConfig(cfgs.bundle, f.name, cfgs.endpoint, apiEndpoints, []string{role.Admin}, now)
	if err != nil {
		return err
	}
	cc.Contexts[f.name].Nodes = cluster.IPs()
	ccData, err := cc.Encode()
	if err != nil {
		return err
	}
	if err := writeOutputs([]outputFile{{filepath.Join(made.stateDir, statePlinthconfig), ccData, 0o600}}, false, reportCreated(cmd)); err != nil {
		return err
	}
	contextName, configPath, previous, err := mergeClusterContext(g, cc, out)
	if err != nil {
		return err
	}
	made.contextMerged, made.previousContext = true, previous
	fmt.Fprintln(out)
	if err := printClusterTable(out, cluster); err != nil {
		return err
	}
	fmt.Fprintln(out)
	if !f.wait {
		fmt.Fprintf(out, "cluster %q is created; with --wait=false it is not bootstrapped: run\n  plinthctl%s -n %s bootstrap\nonce its node API answers (plinthctl%s -n %s version).\n",
			f.name, contextFlag(contextName, f.name), first.IP, contextFlag(contextName, f.name), first.IP)
		return nil
	}
	cctx := cc.Contexts[f.name]
	if err := waitAndBootstrap(ctx, out, cctx, apiEndpoint, first.Name, f.waitTimeout); err != nil {
		return err
	}
	if err := waitHealthy(ctx, out, cctx, apiEndpoint, cluster.KubeHostPort(), f, made); err != nil {
		return err
	}
	printClusterUsage(out, f.name, contextName, configPath, cluster)
	return nil
}

// waitHealthy merges an admin kubeconfig for the cluster (server: the Kubernetes API's
// published port, kubePort) into the user's kubeconfig, recorded in made, and waits until
// the cluster is healthy.
func waitHealthy(ctx context.Context, out io.Writer, cc *clientconfig.Context, endpoint string, kubePort int, f *clusterCreateFlags, made *createdCluster) error {
	c, err := client.New(cc, endpoint)
	if err != nil {
		return err
	}
	defer c.Close()
	resp, err := c.Machine.Kubeconfig(ctx, &machine.KubeconfigRequest{})
	if err != nil {
		return describe(err)
	}
	if kubePort == 0 {
		return errors.New("the cluster publishes no Kubernetes API port (see plinthctl cluster show)")
	}
	server := fmt.Sprintf("https://127.0.0.1:%d", kubePort)
	data, err := kubeconfig.Rename(resp.Kubeconfig, f.name, server)
	if err != nil {
		return err
	}
	path, err := kubeconfig.DefaultPath()
	if err != nil {
		return err
	}
	if made.kubeconfig, err = mergeKubeconfig(path, data); err != nil {
		return err
	}
	fmt.Fprintf(out, "merged kubeconfig context %q into %s\n", f.name, path)
	ctx, cancel := context.WithTimeout(ctx, f.waitTimeout)
	defer cancel()
	return checkHealth(ctx, data, server, health.Expect{Nodes: f.controlPlanes + f.workers, ControlPlanes: f.controlPlanes, EtcdMembers: etcdMembersOf(c)}, out)
}

// contextFlag is " --context NAME" when the cluster's context was renamed on merge.
func contextFlag(contextName, cluster string) string {
	if contextName == cluster {
		return ""
	}
	return " --context " + contextName
}

// mergeClusterContext adds the cluster's context to the user's client config and makes it
// current; it returns the context's name there (renamed on a clash), the config's path and
// the context that was current before.
func mergeClusterContext(g *globalFlags, cc *clientconfig.Config, out io.Writer) (name, path, previous string, err error) {
	path, cfg, err := g.loadConfigFile()
	if err != nil {
		return "", "", "", err
	}
	previous = cfg.Context
	renamed := cfg.Merge(cc)
	if err := cfg.Save(path); err != nil {
		return "", "", "", err
	}
	name = cc.Context
	if n, ok := renamed[name]; ok {
		fmt.Fprintf(out, "context %q already existed in %s: added this cluster's as %q\n", name, path, n)
		name = n
	} else {
		fmt.Fprintf(out, "added context %q to %s\n", name, path)
	}
	fmt.Fprintf(out, "current context is %q\n", cfg.Context)
	return name, path, previous, nil
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
  plinthctl cluster show --name demo`,
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
			return printClusterTable(out, c)
		},
	}
	f.add(cmd, false)
	return cmd
}

// printClusterTable prints NODE, ROLE, IP, STATE, PORTS: the load balancer first (if any),
// then the nodes.
func printClusterTable(out io.Writer, c *provision.Cluster) error {
	w := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "NODE\tROLE\tIP\tSTATE\tPORTS")
	rows := c.Nodes
	if c.LoadBalancer != nil {
		rows = append([]provision.Node{*c.LoadBalancer}, c.Nodes...)
	}
	for _, n := range rows {
		var ports []string
		if n.APIPort != 0 {
			ports = append(ports, fmt.Sprintf("127.0.0.1:%d->%d", n.APIPort, docker.APIPort))
		}
		if n.KubePort != 0 {
			ports = append(ports, fmt.Sprintf("127.0.0.1:%d->%d", n.KubePort, docker.KubePort))
		}
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\n", n.Name, orDash(n.Role), orDash(n.IP), orDash(n.State), orDash(strings.Join(ports, ", ")))
	}
	if len(c.Nodes) == 0 {
		fmt.Fprintln(w, "(no nodes)\t\t\t\t")
	}
	return w.Flush()
}

func newClusterDestroyCommand(g *globalFlags) *cobra.Command {
	f := &clusterFlags{}
	cmd := &cobra.Command{
		Use:   "destroy",
		Short: "Remove a local cluster: its containers, volumes, network, contexts and state directory",
		Long: `Remove every container, volume and network labelled with the cluster's name, what
cluster create merged into the kubeconfig (~/.kube/config, or the first file of
$KUBECONFIG): the context and cluster NAME and the user admin@NAME (the cluster and user
stay while another context refers to them), the cluster's context from the client config
(found by the cluster's CA), and the cluster's files in its state directory. Where a
removed context was current, no context is current afterwards. Destroying a cluster that
is already gone succeeds.`,
		Example: `  plinthctl cluster destroy
  plinthctl cluster destroy --name demo`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			out := cmd.OutOrStdout()
			stateDir, err := f.resolveStateDir()
			if err != nil {
				return err
			}
			prov, err := newProvisioner(f.provisioner)
			if err != nil {
				return err
			}
			if err := prov.Destroy(cmd.Context(), f.name, out); err != nil {
				return err
			}
			if err := removeClusterKubeconfig(f.name, out); err != nil {
				return fmt.Errorf("remove the cluster's entries from the kubeconfig: %w", err)
			}
			if err := removeClusterContexts(g, stateDir, "", out); err != nil {
				return err
			}
			return removeStateFiles(stateDir, out)
		},
	}
	f.add(cmd, true)
	return cmd
}

// removeClusterContexts removes from the user's client config every context that trusts the
// CA of the cluster's own plinthconfig (in the state directory): that finds the context
// even when it was renamed on merge, and never touches another cluster's. When the current
// context is removed, restore becomes current if it is still there, else none is.
func removeClusterContexts(g *globalFlags, stateDir, restore string, out io.Writer) error {
	own, err := clientconfig.Load(filepath.Join(stateDir, statePlinthconfig))
	if err != nil {
		return err
	}
	var cas [][]byte
	for _, c := range own.Contexts {
		cas = append(cas, c.CA)
	}
	if len(cas) == 0 {
		if _, err := os.Stat(stateDir); err == nil {
			fmt.Fprintf(out, "no plinthconfig in %s: the client config is left as it is\n", stateDir)
		}
		return nil
	}
	path, cfg, err := g.loadConfigFile()
	if err != nil {
		return err
	}
	changed := false
	for _, name := range cfg.Names() {
		ca := cfg.Contexts[name].CA
		if !slices.ContainsFunc(cas, func(c []byte) bool { return string(c) == string(ca) }) {
			continue
		}
		delete(cfg.Contexts, name)
		changed = true
		fmt.Fprintf(out, "removed context %q from %s\n", name, path)
		if cfg.Context == name {
			cfg.Context = ""
			if _, ok := cfg.Contexts[restore]; ok && restore != name {
				cfg.Context = restore
				fmt.Fprintf(out, "it was the current context: %q is current again\n", restore)
			} else {
				fmt.Fprintln(out, "it was the current context: none is current now (pick one with `plinthctl config context NAME`)")
			}
		}
	}
	if !changed {
		return nil
	}
	return cfg.Save(path)
}

func newClusterListCommand() *cobra.Command {
	f := &clusterFlags{}
	cmd := &cobra.Command{
		Use:     "list",
		Short:   "List the local clusters",
		Example: `  plinthctl cluster list`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			prov, err := newProvisioner(f.provisioner)
			if err != nil {
				return err
			}
			names, err := prov.List(cmd.Context())
			if err != nil {
				return err
			}
			w := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
			fmt.Fprintln(w, "NAME\tNETWORK\tNODES\tRUNNING")
			for _, name := range names {
				c, err := prov.Show(cmd.Context(), name)
				if errors.Is(err, provision.ErrNotFound) {
					continue
				}
				if err != nil {
					return err
				}
				running := 0
				for _, n := range c.Nodes {
					if n.State == "running" {
						running++
					}
				}
				fmt.Fprintf(w, "%s\t%s\t%d\t%d\n", c.Name, orDash(c.CIDR), len(c.Nodes), running)
			}
			return w.Flush()
		},
	}
	cmd.Flags().StringVar(&f.provisioner, "provisioner", provisionerDocker, "what runs the nodes: docker")
	return cmd
}
