// Package docker provisions local Plinth clusters whose nodes are Docker containers, driving
// the docker CLI. A cluster is a bridge network plinth-NAME and, per node, a container and
// a volume for its /var; a cluster with more than one control plane also has a load
// balancer container NAME-lb in front of their Kubernetes API. Everything is labelled
// plinth.cluster=NAME: the labels are the whole state, so Show, List and Destroy need
// nothing else.
package docker

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/plinthos/plinth/internal/provision"
	"github.com/plinthos/plinth/pkg/config"
)

// Types shared with the other provisioners.
type (
	Request  = provision.Request
	Cluster  = provision.Cluster
	Node     = provision.Node
	NodeSpec = provision.NodeSpec
)

// ErrUnreachable is returned (wrapped) when the docker CLI or the engine is missing.
var ErrUnreachable = errors.New("the Docker engine is not reachable: start it (dockerd) or install docker.io")

// LogLines is how many lines of a failed node's log an error carries.
const LogLines = 50

// cleanupTimeout bounds the removal of a half-made cluster, which runs even when the
// creating context was cancelled.
const cleanupTimeout = 2 * time.Minute

// Provisioner creates clusters with the docker CLI.
type Provisioner struct {
	// Runner runs docker commands; nil means ExecRunner{}.
	Runner Runner
	// Caps returns the host's capability set; nil means HostCaps.
	Caps func() (CapSet, error)
	// FreePort returns a free TCP port of 127.0.0.1 for the published ports; nil means
	// one the kernel picks.
	FreePort func() (int, error)
	// lookPath checks that the docker CLI exists; nil means exec.LookPath (only for
	// ExecRunner).
	lookPath func(string) (string, error)
}

// portAttempts is how often Create picks new host ports when one was taken meanwhile.
const portAttempts = 3

// kernelFreePort asks the kernel for a free port of 127.0.0.1. The published ports are
// chosen here rather than left to Docker because Docker picks new ones each time the
// container starts, which a node reboot (a restart by the restart policy) does; the
// client config's endpoint must stay valid.
func kernelFreePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("find a free port on 127.0.0.1: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// hostPorts returns n distinct free ports.
func (p *Provisioner) hostPorts(n int) ([]int, error) {
	free := p.FreePort
	if free == nil {
		free = kernelFreePort
	}
	var ports []int
	for tries := 0; len(ports) < n; tries++ {
		if tries == n+10 {
			return nil, fmt.Errorf("found only %d distinct free ports on 127.0.0.1, not %d", len(ports), n)
		}
		port, err := free()
		if err != nil {
			return nil, err
		}
		if !slices.Contains(ports, port) {
			ports = append(ports, port)
		}
	}
	return ports, nil
}

// start runs a container that publishes n host ports. build makes the commands that
// create and start it (`docker run`, or create, cp and start) for the ports chosen; when
// one of them was taken meanwhile, start removes the container and tries other ports, up
// to portAttempts times.
func (p *Provisioner) start(ctx context.Context, name string, n int, say func(string, ...any), build func(ports []int) ([]Command, error)) error {
	for attempt := 1; ; attempt++ {
		ports, err := p.hostPorts(n)
		if err != nil {
			return err
		}
		cmds, err := build(ports)
		if err != nil {
			return err
		}
		for _, c := range cmds {
			if _, err = p.runner().Run(ctx, c); err != nil {
				break
			}
		}
		if err == nil {
			return nil
		}
		if n == 0 || !isPortTaken(err) || attempt >= portAttempts {
			return err
		}
		say("a host port was taken meanwhile; trying others")
		if _, rerr := p.run(ctx, "rm", "--force", "--volumes", name); rerr != nil && !isNoSuch(rerr) {
			return rerr
		}
	}
}

// isPortTaken reports a docker run that failed because a host port was taken.
func isPortTaken(err error) bool {
	s := err.Error()
	return strings.Contains(s, "port is already allocated") || strings.Contains(s, "address already in use")
}

var _ provision.Provisioner = (*Provisioner)(nil)

// New returns a provisioner using the docker CLI from PATH and the host's capabilities.
func New() *Provisioner { return &Provisioner{} }

// Create makes a cluster with the default provisioner.
func Create(ctx context.Context, req Request) (*Cluster, error) { return New().Create(ctx, req) }

// Show returns a cluster with the default provisioner.
func Show(ctx context.Context, name string) (*Cluster, error) { return New().Show(ctx, name) }

// Destroy removes a cluster with the default provisioner.
func Destroy(ctx context.Context, name string, progress io.Writer) error {
	return New().Destroy(ctx, name, progress)
}

// List returns the clusters with the default provisioner.
func List(ctx context.Context) ([]string, error) { return New().List(ctx) }

func (p *Provisioner) run(ctx context.Context, args ...string) ([]byte, error) {
	return p.runner().Run(ctx, Command{Args: args})
}

func (p *Provisioner) runner() Runner {
	if p.Runner == nil {
		return ExecRunner{}
	}
	return p.Runner
}

// ping checks that the docker CLI and the engine answer.
func (p *Provisioner) ping(ctx context.Context) error {
	if p.Runner == nil {
		look := p.lookPath
		if look == nil {
			look = exec.LookPath
		}
		if _, err := look("docker"); err != nil {
			return fmt.Errorf("%w (the docker command is not installed)", ErrUnreachable)
		}
	}
	if _, err := p.run(ctx, "version", "--format", "{{json .Server.Version}}"); err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return fmt.Errorf("%w (%v)", ErrUnreachable, err)
	}
	return nil
}

// Preflight implements provision.Provisioner.
func (p *Provisioner) Preflight(ctx context.Context, req Request) error {
	_, err := p.preflight(ctx, req)
	return err
}

func (p *Provisioner) preflight(ctx context.Context, req Request) (*provision.Plan, error) {
	plan, err := provision.NewPlan(req.Name, req.ControlPlanes, req.Workers, req.CIDR)
	if err != nil {
		return nil, err
	}
	if req.Image == "" {
		return nil, errors.New("no node image given")
	}
	if req.Configs == nil {
		return nil, errors.New("no machine configurations given (Request.Configs is nil)")
	}
	if err := p.ping(ctx); err != nil {
		return nil, err
	}
	if _, err := p.run(ctx, "image", "inspect", "--format", "{{json .Id}}", req.Image); err != nil {
		if isNoSuch(err) {
			return nil, fmt.Errorf("the node image %s is not in the Docker engine (nothing is pulled from registries): build and load it with `make image-docker`, or name another with --image", req.Image)
		}
		return nil, err
	}
	if err := p.checkFree(ctx, req.Name, plan); err != nil {
		return nil, err
	}
	if err := p.checkSubnet(ctx, plan.CIDR); err != nil {
		return nil, err
	}
	return plan, nil
}

// checkSubnet refuses a network that overlaps one Docker has already.
func (p *Provisioner) checkSubnet(ctx context.Context, cidr string) error {
	out, err := p.run(ctx, "network", "ls", "--quiet")
	if err != nil {
		return err
	}
	ids := lines(out)
	if len(ids) == 0 {
		return nil
	}
	out, err = p.run(ctx, append([]string{"network", "inspect", "--format", "{{json .}}"}, ids...)...)
	if err != nil {
		return err
	}
	nets, err := parseJSONLines[networkJSON](out)
	if err != nil {
		return err
	}
	for _, n := range nets {
		for _, c := range n.IPAM.Config {
			if provision.Overlaps(c.Subnet, cidr) {
				return fmt.Errorf("the network %s overlaps the Docker network %s (%s): pick another --cidr", cidr, n.Name, c.Subnet)
			}
		}
	}
	return nil
}

// checkFree refuses a name whose cluster, network, containers or volumes exist.
func (p *Provisioner) checkFree(ctx context.Context, name string, plan *provision.Plan) error {
	clash := func(what string) error {
		return fmt.Errorf("a cluster named %q exists already (%s): destroy it with `plinthctl cluster destroy --name %s`, or pick another --name", name, what, name)
	}
	names, err := p.List(ctx)
	if err != nil {
		return err
	}
	if slices.Contains(names, name) {
		return clash("labelled " + LabelCluster + "=" + name)
	}
	if _, err := p.run(ctx, "network", "inspect", "--format", "{{json .Name}}", NetworkName(name)); err == nil {
		return clash("network " + NetworkName(name))
	} else if !isNoSuch(err) {
		return err
	}
	out, err := p.run(ctx, "ps", "--all", "--format", "{{.Names}}")
	if err != nil {
		return err
	}
	containers := lines(out)
	out, err = p.run(ctx, "volume", "ls", "--format", "{{.Name}}")
	if err != nil {
		return err
	}
	volumes := lines(out)
	if lb := plan.LoadBalancer; lb != nil && slices.Contains(containers, lb.Name) {
		return clash("container " + lb.Name)
	}
	for _, n := range plan.Nodes {
		if slices.Contains(containers, n.Name) {
			return clash("container " + n.Name)
		}
		if slices.Contains(volumes, VolumeName(n.Name)) {
			return clash("volume " + VolumeName(n.Name))
		}
	}
	return nil
}

func lines(out []byte) []string {
	var l []string
	for _, s := range strings.Split(string(out), "\n") {
		if s = strings.TrimSpace(s); s != "" {
			l = append(l, s)
		}
	}
	return l
}

// created records what Create made, for its cleanup.
type created struct {
	network    string
	volumes    []string
	containers []string
}

// Create implements provision.Provisioner.
func (p *Provisioner) Create(ctx context.Context, req Request) (*Cluster, error) {
	progress := req.Progress
	if progress == nil {
		progress = io.Discard
	}
	say := func(format string, args ...any) { fmt.Fprintf(progress, format+"\n", args...) }
	plan, err := p.preflight(ctx, req)
	if err != nil {
		return nil, err
	}
	capsFn := p.Caps
	if capsFn == nil {
		capsFn = HostCaps
	}
	caps, err := capsFn()
	if err != nil {
		return nil, err
	}
	if missing := caps.Missing(); len(missing) > 0 {
		say("the host lacks %s: the nodes get every other capability", strings.Join(missing, ", "))
	}
	configs := make([][]byte, len(plan.Nodes))
	for i, n := range plan.Nodes {
		if configs[i], err = req.Configs(n); err != nil {
			return nil, fmt.Errorf("machine configuration of %s: %w", n.Name, err)
		}
	}

	var made created
	fail := func(err error, node string) (*Cluster, error) {
		if node != "" {
			if logs := p.lastLogs(ctx, node); logs != "" {
				err = fmt.Errorf("%w\nlast %d log lines of %s:\n%s", err, LogLines, node, logs)
			}
		}
		say("removing what was created")
		if cerr := p.cleanup(ctx, made, progress); cerr != nil {
			err = fmt.Errorf("%w\ncleanup incomplete: %v (finish it with `plinthctl cluster destroy --name %s`)", err, cerr, req.Name)
		}
		return nil, err
	}

	network := NetworkName(req.Name)
	netArgs := []string{"network", "create", "--driver", "bridge",
		"--subnet", plan.CIDR, "--gateway", plan.Gateway,
		"--label", LabelCluster + "=" + req.Name}
	if req.Isolated {
		// An internal network: Docker drops on the host whatever its nodes send beyond it,
		// and sets no NAT; it publishes no port either.
		say("creating network %s (%s, isolated: no route off this machine)", network, plan.CIDR)
		netArgs = append(netArgs, "--internal")
	} else {
		say("creating network %s (%s)", network, plan.CIDR)
	}
	if _, err := p.run(ctx, append(netArgs, network)...); err != nil {
		if strings.Contains(err.Error(), "overlaps") {
			err = fmt.Errorf("%w: another Docker network uses addresses of %s; pick another --cidr", err, plan.CIDR)
		}
		return fail(err, "")
	}
	made.network = network

	var cpIPs []string
	for _, n := range plan.Nodes {
		if n.Role == provision.RoleControlPlane {
			cpIPs = append(cpIPs, n.IP)
		}
	}
	var nodeArgs []string
	if lb := plan.LoadBalancer; lb != nil {
		say("starting %s (%s, %s)", lb.Name, lb.Role, lb.IP)
		lc := LoadBalancerContainer{Cluster: req.Name, LB: *lb, Image: req.Image, Network: network, ControlPlanes: cpIPs, Unpublished: req.Isolated}
		made.containers = append(made.containers, lb.Name)
		nports := 1
		if req.Isolated {
			nports = 0
		}
		if err := p.start(ctx, lb.Name, nports, say, func(ports []int) ([]Command, error) {
			if !lc.Unpublished {
				lc.KubeHostPort = ports[0]
			}
			return []Command{LoadBalancerRunCommand(lc)}, nil
		}); err != nil {
			return fail(fmt.Errorf("start load balancer %s: %w", lb.Name, err), lb.Name)
		}
		// Workers ask trustd for their node API certificate at the control-plane endpoint's
		// host by default, which is now the load balancer. It forwards only the Kubernetes
		// API, and trustd signs only the address a request comes from, so workers ask the
		// control planes directly, each in turn until one answers.
		var trustds []string
		for _, ip := range cpIPs {
			trustds = append(trustds, net.JoinHostPort(ip, strconv.Itoa(TrustdPort)))
		}
		nodeArgs = []string{"--trustd-endpoint", strings.Join(trustds, ",")}
	}

	for i, n := range plan.Nodes {
		vol := VolumeName(n.Name)
		if _, err := p.run(ctx, "volume", "create",
			"--label", LabelCluster+"="+req.Name, "--label", LabelNode+"="+n.Name, vol); err != nil {
			return fail(err, "")
		}
		made.volumes = append(made.volumes, vol)
		say("starting %s (%s, %s)", n.Name, n.Role, n.IP)
		// Every control plane publishes its node API; the Kubernetes API is published by the
		// load balancer, or by the only control plane.
		nc := NodeContainer{
			Cluster: req.Name, Node: n, Image: req.Image, Network: network, Volume: vol,
			Config: configs[i], Caps: caps, CPUs: req.CPUs, MemoryMB: req.MemoryMB,
			PublishAPI:  n.Role == provision.RoleControlPlane && !req.Isolated,
			PublishKube: plan.LoadBalancer == nil && i == 0 && !req.Isolated,
		}
		if n.Role == provision.RoleWorker {
			nc.Args = nodeArgs
		}
		nports := 0
		for _, pub := range []bool{nc.PublishAPI, nc.PublishKube} {
			if pub {
				nports++
			}
		}
		// A failed `docker run` may leave the container created but not started.
		made.containers = append(made.containers, n.Name)
		if err := p.start(ctx, n.Name, nports, say, func(ports []int) ([]Command, error) {
			if nc.PublishAPI {
				nc.APIHostPort, ports = ports[0], ports[1:]
			}
			if nc.PublishKube {
				nc.KubeHostPort = ports[0]
			}
			return NodeCommands(nc)
		}); err != nil {
			return fail(fmt.Errorf("start node %s: %w", n.Name, err), n.Name)
		}
	}

	cluster, err := p.Show(ctx, req.Name)
	if err != nil {
		return fail(err, "")
	}
	started := slices.Clone(cluster.Nodes)
	if cluster.LoadBalancer != nil {
		started = append(started, *cluster.LoadBalancer)
	}
	for _, n := range started {
		if n.State != "running" {
			return fail(fmt.Errorf("%s is %s right after its start (see its log below)", n.Name, n.State), n.Name)
		}
	}
	for _, n := range cluster.ControlPlanes() {
		if n.APIPort == 0 {
			return fail(fmt.Errorf("the control plane %s has no published node API port", n.Name), n.Name)
		}
	}
	if plan.LoadBalancer != nil && cluster.LoadBalancer == nil {
		return fail(fmt.Errorf("the load balancer %s is missing right after its start", plan.LoadBalancer.Name), "")
	}
	if cluster.KubeHostPort() == 0 {
		return fail(errors.New("no published port of the Kubernetes API"), "")
	}
	return cluster, nil
}

// lastLogs returns a container's last log lines, or "" when there are none.
func (p *Provisioner) lastLogs(ctx context.Context, container string) string {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	out, err := p.Logs(ctx, container, LogLines)
	if err != nil {
		return ""
	}
	return strings.TrimRight(out, "\n")
}

// ConfigMode implements provision.Provisioner: node containers take configurations valid
// for Docker.
func (p *Provisioner) ConfigMode() config.Mode { return config.ModeDocker }

// Logs implements provision.Provisioner: the container's last output lines, both streams.
func (p *Provisioner) Logs(ctx context.Context, node string, lines int) (string, error) {
	out, err := p.runner().Run(ctx, Command{Args: []string{"logs", "--tail", fmt.Sprint(lines), node}, Combined: true})
	return string(out), err
}

// cleanup removes what Create made, in reverse order, even when ctx was cancelled.
func (p *Provisioner) cleanup(ctx context.Context, made created, progress io.Writer) error {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cleanupTimeout)
	defer cancel()
	var errs []error
	if len(made.containers) > 0 {
		args := append([]string{"rm", "--force", "--volumes"}, made.containers...)
		if _, err := p.run(ctx, args...); err != nil && !isNoSuch(err) {
			errs = append(errs, err)
		}
	}
	if len(made.volumes) > 0 {
		args := append([]string{"volume", "rm", "--force"}, made.volumes...)
		if _, err := p.run(ctx, args...); err != nil && !isNoSuch(err) {
			errs = append(errs, err)
		}
	}
	if made.network != "" {
		if _, err := p.run(ctx, "network", "rm", made.network); err != nil && !isNoSuch(err) {
			errs = append(errs, err)
		}
	}
	if len(errs) == 0 {
		fmt.Fprintln(progress, "removed")
	}
	return errors.Join(errs...)
}

// Destroy implements provision.Provisioner: containers (forced), their volumes, then the
// network, everything found by the cluster label.
func (p *Provisioner) Destroy(ctx context.Context, name string, progress io.Writer) error {
	if progress == nil {
		progress = io.Discard
	}
	if err := provision.ValidateName(name); err != nil {
		return err
	}
	if err := p.ping(ctx); err != nil {
		return err
	}
	filter := "label=" + LabelCluster + "=" + name
	found := false
	out, err := p.run(ctx, "ps", "--all", "--filter", filter, "--format", "{{.Names}}")
	if err != nil {
		return err
	}
	if containers := lines(out); len(containers) > 0 {
		found = true
		fmt.Fprintf(progress, "removing containers %s\n", strings.Join(containers, ", "))
		if _, err := p.run(ctx, append([]string{"rm", "--force", "--volumes"}, containers...)...); err != nil && !isNoSuch(err) {
			return err
		}
	}
	if out, err = p.run(ctx, "volume", "ls", "--filter", filter, "--format", "{{.Name}}"); err != nil {
		return err
	}
	if volumes := lines(out); len(volumes) > 0 {
		found = true
		fmt.Fprintf(progress, "removing volumes %s\n", strings.Join(volumes, ", "))
		if _, err := p.run(ctx, append([]string{"volume", "rm", "--force"}, volumes...)...); err != nil && !isNoSuch(err) {
			return err
		}
	}
	if out, err = p.run(ctx, "network", "ls", "--filter", filter, "--format", "{{.Name}}"); err != nil {
		return err
	}
	for _, n := range lines(out) {
		found = true
		fmt.Fprintf(progress, "removing network %s\n", n)
		if _, err := p.run(ctx, "network", "rm", n); err != nil && !isNoSuch(err) {
			return err
		}
	}
	if !found {
		fmt.Fprintf(progress, "nothing of cluster %q is left in Docker\n", name)
	}
	return nil
}

// List implements provision.Provisioner: the names on any labelled container, volume or
// network, so that half-removed clusters show too.
func (p *Provisioner) List(ctx context.Context) ([]string, error) {
	if err := p.ping(ctx); err != nil {
		return nil, err
	}
	label := `{{.Label "` + LabelCluster + `"}}`
	var names []string
	for _, args := range [][]string{
		{"ps", "--all", "--filter", "label=" + LabelCluster, "--format", label},
		{"volume", "ls", "--filter", "label=" + LabelCluster, "--format", label},
		{"network", "ls", "--filter", "label=" + LabelCluster, "--format", label},
	} {
		out, err := p.run(ctx, args...)
		if err != nil {
			return nil, err
		}
		names = append(names, lines(out)...)
	}
	slices.Sort(names)
	return slices.Compact(names), nil
}
