// Package localcluster runs the lifecycle of local clusters over any provision.Provisioner:
// Create generates a cluster's secrets and configurations into its state directory, has
// the provisioner start the nodes, merges the cluster's context into the client config,
// bootstraps it and waits until it is healthy, and removes all of that again when a step
// fails; Wait, Destroy, WriteLogs and List are the other steps as calls of their own.
// Progress goes to an io.Writer; nothing here parses flags or exits.
package localcluster

import (
	"context"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"time"

	"github.com/plinthos/plinth/internal/configgen"
	"github.com/plinthos/plinth/internal/provision"
	"github.com/plinthos/plinth/pkg/clientconfig"
	"github.com/plinthos/plinth/pkg/config/patch"
	"github.com/plinthos/plinth/pkg/role"
)

// The files of a cluster's state directory, in the order they are written.
const (
	StateSecrets      = "secrets.yaml"
	StateControlPlane = "controlplane.yaml"
	StateWorker       = "worker.yaml"
	StatePlinthconfig = "plinthconfig"
)

// StateFiles lists the files of a state directory; nothing else there is ever removed.
var StateFiles = []string{StateSecrets, StateControlPlane, StateWorker, StatePlinthconfig}

// DefaultStateDir is the state directory of the cluster name under the home directory:
// HOME/.plinth/clusters/NAME.
func DefaultStateDir(home, name string) string {
	return filepath.Join(ClustersDir(home), name)
}

// ClustersDir is the directory of the local clusters' state under the home directory,
// HOME/.plinth/clusters: the default state directories, and the QEMU provisioner's VMs.
func ClustersDir(home string) string {
	return filepath.Join(home, ".plinth", "clusters")
}

// DefaultWaitTimeout bounds each wait of Create and Wait when none is given.
const DefaultWaitTimeout = 10 * time.Minute

// LogLines is how many of each node's last log lines a failed Create prints.
const LogLines = 50

// cleanupTimeout bounds the removal of a cluster whose create failed; the removal runs on
// a context of its own, so it also runs after the caller's context ended.
const cleanupTimeout = 2 * time.Minute

// CreateOptions describe a new cluster and where its files go.
type CreateOptions struct {
	// Name names the cluster (provision.ValidateName).
	Name string
	// Image is the node image.
	Image string
	// ControlPlanes and Workers are the node counts (at least one control plane). With no
	// worker, workloads are allowed on the control planes.
	ControlPlanes, Workers int
	// CPUs and MemoryMB limit each node; zero means no limit.
	CPUs     float64
	MemoryMB int
	// CIDR is the cluster network; empty means provision.DefaultCIDR.
	CIDR string
	// Isolated asks for a network with no route off the machine (provision.Request).
	Isolated bool
	// KubernetesVersion is the version of the control-plane images; empty means the
	// configuration's default.
	KubernetesVersion string
	// Patches apply to every machine configuration, then ControlPlanePatches and
	// WorkerPatches to the one of their role.
	Patches, ControlPlanePatches, WorkerPatches []patch.Patch

	// StateDir receives the secrets bundle, the machine configurations and the cluster's
	// own client config (StateFiles); it must not hold them already.
	StateDir string
	// ClientConfigPath is the user's client config, where the cluster's context is merged
	// and made current.
	ClientConfigPath string
	// KubeconfigPath is the kubeconfig where the cluster's admin context is merged (with
	// Wait); empty means kubeconfig.DefaultPath().
	KubeconfigPath string

	// Wait, when set, waits for the first control plane's node API, bootstraps the
	// cluster there and waits until it is healthy, each wait within WaitTimeout (zero:
	// DefaultWaitTimeout). For a cluster whose image has no Kubernetes
	// (provision.Cluster.NoKubernetes), it waits until every node's API answers instead.
	Wait        bool
	WaitTimeout time.Duration
	// CheckHealth replaces the health wait; nil means DefaultHealthCheck.
	CheckHealth HealthCheck
	// Retain keeps a cluster whose wait, bootstrap or health wait failed, to be inspected,
	// instead of removing it.
	Retain bool

	// Progress receives the lines of progress; nil discards them.
	Progress io.Writer
	// OnFailure, when set, is called as soon as a step has failed after the nodes started,
	// before their logs are read and the cluster is removed (on a context of its own, as
	// the caller's has often ended): plinthctl lets a second Ctrl-C end it there.
	OnFailure func()
	// RemoveNote, when set, is printed in parentheses as the removal of a failed cluster
	// starts, such as how to finish it by hand.
	RemoveNote string
}

// Result is a cluster that Create made.
type Result struct {
	Cluster *provision.Cluster
	// Context is the name of the cluster's context in the client config: the cluster's
	// name, or another when a context of that name existed already.
	Context string
	// ClientConfigPath is the client config the context was merged into.
	ClientConfigPath string
	// Bootstrapped is set when Create waited, bootstrapped the cluster and found it
	// healthy (CreateOptions.Wait).
	Bootstrapped bool
	// NodesUp is set instead when Create waited for a cluster without Kubernetes
	// (provision.Cluster.NoKubernetes) and every node's API answered.
	NodesUp bool
	// Started is when Create began.
	Started time.Time

	// client is the cluster's client context, for Timings.
	client *clientconfig.Context
}

// CreateError is the error of a Create that failed after the nodes started: the failed
// step's error, and what became of the cluster. The nodes' last log lines were printed to
// the progress writer first.
type CreateError struct {
	Err error
	// Retained is set when the cluster was kept (CreateOptions.Retain).
	Retained bool
	// RemoveErr is why removing the cluster failed; part of it may be left.
	RemoveErr error
}

func (e *CreateError) Error() string {
	switch {
	case e.Retained:
		return e.Err.Error() + "\nthe cluster is kept to be inspected"
	case e.RemoveErr != nil:
		return fmt.Sprintf("%v\nremoving the cluster failed: %v", e.Err, e.RemoveErr)
	}
	return e.Err.Error() + "\nthe cluster is removed"
}

func (e *CreateError) Unwrap() error { return e.Err }

// Create makes a local cluster with prov: it generates the secrets and machine
// configurations into opts.StateDir, checks that prov can create the cluster, has it start
// the nodes, writes the cluster's client config and merges its context into the user's
// (made current), and with opts.Wait bootstraps the cluster and waits until it is healthy
// (merging its admin kubeconfig into the user's on the way).
//
// When a step fails, or ctx ends, everything made so far is removed again: the state files
// only, before the nodes start; after, the nodes' last log lines are printed, then the
// nodes, the merged contexts (the earlier current ones current again) and the state files
// go, unless opts.Retain. The error is then a *CreateError.
func Create(ctx context.Context, prov provision.Provisioner, opts CreateOptions) (*Result, error) {
	out := progress(opts.Progress)
	if opts.CPUs < 0 || opts.MemoryMB < 0 {
		return nil, errors.New("the CPUs and memory of a node cannot be negative")
	}
	if opts.StateDir == "" || opts.ClientConfigPath == "" {
		return nil, errors.New("create a local cluster: the state directory and the client config path are required")
	}
	plan, err := provision.NewPlan(opts.Name, opts.ControlPlanes, opts.Workers, opts.CIDR)
	if err != nil {
		return nil, err
	}
	now := time.Now()
	cfgs, err := generateConfigs(opts, plan, prov.ConfigMode(), now)
	if err != nil {
		return nil, err
	}
	req := provision.Request{
		Name: opts.Name, Image: opts.Image, ControlPlanes: opts.ControlPlanes, Workers: opts.Workers,
		CPUs: opts.CPUs, MemoryMB: opts.MemoryMB, CIDR: plan.CIDR, Isolated: opts.Isolated, Progress: out,
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
		return nil, err
	}
	if err := checkStateDirFree(opts.StateDir, opts.Name); err != nil {
		return nil, err
	}
	secretsData, err := cfgs.bundle.Marshal()
	if err != nil {
		return nil, fmt.Errorf("encode the secrets bundle: %w", err)
	}
	if err := writeStateFiles(opts.StateDir, out, []stateFile{
		{StateSecrets, secretsData}, {StateControlPlane, cfgs.controlPlane}, {StateWorker, cfgs.worker},
	}); err != nil {
		return nil, err
	}
	cluster, err := prov.Create(ctx, req)
	if err != nil {
		if rerr := removeStateFiles(opts.StateDir, out); rerr != nil {
			err = fmt.Errorf("%w\n(and removing the state files failed: %v)", err, rerr)
		}
		return nil, err
	}
	made := &created{name: opts.Name, stateDir: opts.StateDir, clientConfig: opts.ClientConfigPath, cluster: cluster}
	res, err := finish(ctx, opts, cfgs, now, made)
	if err != nil {
		if opts.OnFailure != nil {
			opts.OnFailure()
		}
		return nil, failed(ctx, out, prov, opts, made, err)
	}
	return res, nil
}

// finish does the steps after the provisioner started the nodes: the client context, then
// with opts.Wait the bootstrap and the wait until the cluster is healthy. It records in
// made what it changed, for failed.
func finish(ctx context.Context, opts CreateOptions, cfgs *configs, now time.Time, made *created) (*Result, error) {
	out := progress(opts.Progress)
	cluster := made.cluster
	first := cluster.FirstControlPlane()
	if first == nil || first.APIEndpoint() == "" {
		return nil, fmt.Errorf("cluster %q has no control plane with a published node API port", opts.Name)
	}
	// The context reaches the nodes through every control plane's published node API, the
	// first control plane's first; bootstrap goes to that one.
	var apiEndpoints []string
	for _, cp := range cluster.ControlPlanes() {
		if ep := cp.APIEndpoint(); ep != "" {
			apiEndpoints = append(apiEndpoints, ep)
		}
	}
	cc, err := configgen.ClientConfig(cfgs.bundle, opts.Name, cfgs.endpoint, apiEndpoints, []string{role.Admin}, now)
	if err != nil {
		return nil, fmt.Errorf("generate the client config: %w", err)
	}
	cc.Contexts[opts.Name].Nodes = cluster.IPs()
	ccData, err := cc.Encode()
	if err != nil {
		return nil, fmt.Errorf("encode the client config: %w", err)
	}
	if err := writeStateFiles(made.stateDir, out, []stateFile{{StatePlinthconfig, ccData}}); err != nil {
		return nil, err
	}
	contextName, previous, err := mergeContext(opts.ClientConfigPath, cc, out)
	if err != nil {
		return nil, err
	}
	made.contextMerged, made.previousContext = true, previous
	fmt.Fprintln(out)
	if err := WriteTable(out, cluster); err != nil {
		return nil, err
	}
	fmt.Fprintln(out)
	res := &Result{Cluster: cluster, Context: contextName, ClientConfigPath: opts.ClientConfigPath, Started: now, client: cc.Contexts[opts.Name]}
	if !opts.Wait {
		return res, nil
	}
	w := WaitOptions{Timeout: opts.WaitTimeout, KubeconfigPath: opts.KubeconfigPath, CheckHealth: opts.CheckHealth, Progress: out}
	if err := wait(ctx, cluster, cc.Contexts[opts.Name], w, &made.kubeconfig); err != nil {
		return nil, err
	}
	if cluster.NoKubernetes {
		res.NodesUp = true
	} else {
		res.Bootstrapped = true
	}
	return res, nil
}

// created is what Create made once the provisioner had started the nodes, for failed.
type created struct {
	name         string
	stateDir     string
	clientConfig string
	cluster      *provision.Cluster
	// contextMerged is set once the cluster's context is in the client config, with the
	// context that was current before.
	contextMerged   bool
	previousContext string
	// kubeconfig is set once the admin kubeconfig is merged into the user's.
	kubeconfig *kubeconfigMerge
}

// failed ends a Create that failed with err after the provisioner started the nodes: it
// prints each node's last log lines, then removes everything the create made unless
// opts.Retain, and returns err with what became of the cluster.
func failed(ctx context.Context, out io.Writer, prov provision.Provisioner, opts CreateOptions, made *created, err error) error {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cleanupTimeout)
	defer cancel()
	WriteLogs(ctx, out, prov, made.cluster, LogLines)
	if opts.Retain {
		return &CreateError{Err: err, Retained: true}
	}
	note := ""
	if opts.RemoveNote != "" {
		note = " (" + opts.RemoveNote + ")"
	}
	fmt.Fprintf(out, "\nremoving cluster %q%s\n", made.name, note)
	if rerr := made.remove(ctx, out, prov); rerr != nil {
		return &CreateError{Err: err, RemoveErr: rerr}
	}
	return &CreateError{Err: err}
}

// remove removes what the create made, as Destroy does: the nodes, the contexts merged
// into the kubeconfig and the client config (the context current before is current
// again), and the state files. The state files stay when the client config cannot be
// cleaned, so that Destroy still finds the context.
func (c *created) remove(ctx context.Context, out io.Writer, prov provision.Provisioner) error {
	var errs []error
	if err := prov.Destroy(ctx, c.name, out); err != nil {
		errs = append(errs, fmt.Errorf("remove the nodes: %w", err))
	}
	if c.kubeconfig != nil {
		if err := c.kubeconfig.undo(out); err != nil {
			errs = append(errs, fmt.Errorf("remove the kubeconfig context from %s: %w", c.kubeconfig.path, err))
		}
	}
	if c.contextMerged {
		if err := removeContexts(c.clientConfig, c.stateDir, c.previousContext, out); err != nil {
			return errors.Join(append(errs, fmt.Errorf("remove the context from the client config: %w", err))...)
		}
	}
	if err := removeStateFiles(c.stateDir, out); err != nil {
		errs = append(errs, fmt.Errorf("remove the state files: %w", err))
	}
	return errors.Join(errs...)
}

// progress is w, or io.Discard when w is nil.
func progress(w io.Writer) io.Writer {
	if w == nil {
		return io.Discard
	}
	return w
}

// LoadClientContext returns the cluster's own context from the client config in its
// state directory, for Wait.
func LoadClientContext(stateDir, name string) (*clientconfig.Context, error) {
	path := filepath.Join(stateDir, StatePlinthconfig)
	cfg, err := clientconfig.Load(path)
	if err != nil {
		return nil, err
	}
	c, ok := cfg.Contexts[name]
	if !ok {
		return nil, fmt.Errorf("%s has no context %q", path, name)
	}
	return c, nil
}
