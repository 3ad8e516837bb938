// Package qemu provisions local Plinth clusters whose nodes are QEMU VMs booting the OS
// image (make image-os). Each node is a VM with a qcow2 overlay over the image's shared
// disk.raw, its own UEFI variable store, its machine configuration handed over through
// fw_cfg, its serial console in a file and a QMP socket; the VMs run detached, so that
// they outlive plinthctl. They share a network that leads nowhere off the machine
// (internal/vmnet): a bridge in a network namespace of the cluster's own, which the host
// joins by a veth pair and reaches every node on its address. A JSON record in the
// cluster's directory (DIR/NAME/qemu) lets show, list, logs and destroy find it all from
// another process. It needs root, as the network does.
package qemu

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/plinthos/plinth/internal/ports"
	"github.com/plinthos/plinth/internal/provision"
	vm "github.com/plinthos/plinth/internal/qemu"
	"github.com/plinthos/plinth/internal/vmnet"
	"github.com/plinthos/plinth/pkg/config"
)

// Defaults of a node's VM: the memory of a node of an OS-only image, and of one with
// Kubernetes (containerd, kubelet, etcd and the control plane; make e2e-qemu-k8s boots a
// control plane with as much).
const (
	DefaultMemoryMB    = 1024
	DefaultK8sMemoryMB = 3072
	// DiskSize is the size of a node's disk: the overlay grows as the VM writes, and the
	// node grows its EPHEMERAL partition to the disk's end.
	DiskSize = 10 << 30
)

// cleanupTimeout bounds the removal of a half-made cluster, which runs even when the
// creating context was cancelled.
const cleanupTimeout = 2 * time.Minute

// startTimeout bounds the start of one emulator (it daemonises once the VM is set up).
const startTimeout = time.Minute

// Provisioner creates clusters of QEMU VMs.
type Provisioner struct {
	// Dir holds the clusters' directories (Dir/NAME/qemu): the directory of local
	// clusters' state, ~/.plinth/clusters.
	Dir string
	// Host makes the clusters' networks; the zero value is this machine's.
	Host vmnet.Host
	// KVM decides whether the VMs use KVM, saying why; nil means qemu.KVMUsable (a canary
	// VM).
	KVM func(ctx context.Context, kernel string) (bool, string)
	// Exec runs a command (the emulator, to the point where it detaches) with its output
	// to a file; nil means os/exec.
	Exec func(ctx context.Context, argv []string, output string) error
	// Check checks the host (root, the commands, the firmware); nil means checkHost.
	Check func() error
}

var _ provision.Provisioner = (*Provisioner)(nil)

// New returns a provisioner keeping its clusters under dir.
func New(dir string) *Provisioner { return &Provisioner{Dir: dir} }

// clusterDir is the directory of the cluster's VMs.
func (p *Provisioner) clusterDir(name string) string {
	return filepath.Join(p.Dir, name, SubDir)
}

// ConfigMode implements provision.Provisioner: the VMs run the OS as on metal.
func (p *Provisioner) ConfigMode() config.Mode { return config.ModeMetal }

// checkHost checks what the VMs and their network need from the host.
func checkHost() error {
	if os.Geteuid() != 0 {
		return errors.New("the QEMU provisioner needs root: it makes a network namespace, a bridge and a tap per VM (run plinthctl as root, such as with sudo)")
	}
	for _, c := range []struct{ cmd, pkg string }{{vm.Binary, "qemu-system-x86"}, {"qemu-img", "qemu-utils"}, {"ip", "iproute2"}} {
		if _, err := exec.LookPath(c.cmd); err != nil {
			return fmt.Errorf("%s is not installed (Debian: apt-get install %s)", c.cmd, c.pkg)
		}
	}
	if _, _, err := vm.FindOVMF(); err != nil {
		return err
	}
	return nil
}

// Preflight implements provision.Provisioner.
func (p *Provisioner) Preflight(ctx context.Context, req provision.Request) error {
	_, _, err := p.preflight(ctx, req)
	return err
}

func (p *Provisioner) preflight(ctx context.Context, req provision.Request) (*provision.Plan, image, error) {
	plan, err := provision.NewPlan(req.Name, req.ControlPlanes, req.Workers, req.CIDR)
	if err != nil {
		return nil, image{}, err
	}
	if plan.LoadBalancer != nil {
		return nil, image{}, errors.New("the QEMU provisioner runs one control plane for now: several need the Kubernetes API load balancer, which it does not run yet (use --controlplanes 1, or the Docker provisioner)")
	}
	if req.Configs == nil {
		return nil, image{}, errors.New("no machine configurations given (Request.Configs is nil)")
	}
	if p.Dir == "" {
		return nil, image{}, errors.New("the QEMU provisioner has no directory for its clusters")
	}
	check := p.Check
	if check == nil {
		check = checkHost
	}
	if err := check(); err != nil {
		return nil, image{}, err
	}
	img, err := loadImage(req.Image)
	if err != nil {
		return nil, image{}, err
	}
	clash := func(what string) error {
		return fmt.Errorf("a cluster named %q exists already (%s): destroy it with `plinthctl cluster destroy --provisioner qemu --name %s`, or pick another --name", req.Name, what, req.Name)
	}
	dir := p.clusterDir(req.Name)
	if _, err := os.Stat(dir); err == nil {
		return nil, image{}, clash("directory " + dir)
	} else if !errors.Is(err, fs.ErrNotExist) {
		return nil, image{}, fmt.Errorf("check %s: %w", dir, err)
	}
	ns := vmnet.NamespaceName(req.Name)
	if ok, err := p.Host.Exists(ns); err != nil {
		return nil, image{}, err
	} else if ok {
		return nil, image{}, clash("network namespace " + ns)
	}
	link := vmnet.HostLinkName(req.Name)
	if ok, err := p.Host.LinkExists(link); err != nil {
		return nil, image{}, err
	} else if ok {
		return nil, image{}, clash("link " + link)
	}
	prefix := netip.MustParsePrefix(plan.CIDR) // NewPlan normalised it
	if err := p.Host.CheckFree(ctx, prefix); err != nil {
		return nil, image{}, err
	}
	rec, err := newRecord(req.Name, plan, img.Dir, img.Profile, 1, DefaultMemoryMB)
	if err != nil {
		return nil, image{}, err
	}
	if err := rec.checkPaths(dir); err != nil {
		return nil, image{}, err
	}
	return plan, img, nil
}

// vcpus is the VM's vCPU count for a --cpus value: whole CPUs, rounded up, one by default.
func vcpus(cpus float64) int {
	if cpus <= 0 {
		return 1
	}
	return int(math.Ceil(cpus))
}

// Create implements provision.Provisioner: the directory and record, the network, then
// per node its configuration, disk and VM. On failure what was made is removed.
func (p *Provisioner) Create(ctx context.Context, req provision.Request) (*provision.Cluster, error) {
	progress := req.Progress
	if progress == nil {
		progress = io.Discard
	}
	say := func(format string, args ...any) { fmt.Fprintf(progress, format+"\n", args...) }
	plan, img, err := p.preflight(ctx, req)
	if err != nil {
		return nil, err
	}
	memory := req.MemoryMB
	switch {
	case memory > 0:
	case img.kubernetes():
		memory = DefaultK8sMemoryMB
	default:
		memory = DefaultMemoryMB
	}
	rec, err := newRecord(req.Name, plan, img.Dir, img.Profile, vcpus(req.CPUs), memory)
	if err != nil {
		return nil, err
	}
	prefix := netip.MustParsePrefix(plan.CIDR)
	configs := make([][]byte, len(plan.Nodes))
	for i, n := range plan.Nodes {
		data, err := req.Configs(n)
		if err != nil {
			return nil, fmt.Errorf("machine configuration of %s: %w", n.Name, err)
		}
		if configs[i], err = nodeConfig(data, n, prefix); err != nil {
			return nil, err
		}
	}

	dir := p.clusterDir(req.Name)
	if err := os.MkdirAll(filepath.Dir(dir), 0o755); err != nil {
		return nil, fmt.Errorf("create the cluster's directory: %w", err)
	}
	if err := os.Mkdir(dir, 0o700); err != nil {
		return nil, fmt.Errorf("create the cluster's directory: %w", err)
	}
	fail := func(err error, node *VMRecord) (*provision.Cluster, error) {
		if node != nil {
			if logs := lastLines(filepath.Join(dir, node.Console), LogLines); logs != "" {
				err = fmt.Errorf("%w\nlast %d console lines of %s:\n%s", err, LogLines, node.Name, logs)
			}
		}
		say("removing what was created")
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cleanupTimeout)
		defer cancel()
		if cerr := p.Destroy(cctx, req.Name, progress); cerr != nil {
			err = fmt.Errorf("%w\ncleanup incomplete: %v (finish it with `plinthctl cluster destroy --provisioner qemu --name %s`)", err, cerr, req.Name)
		}
		return nil, err
	}
	if err := saveRecord(dir, rec); err != nil {
		return fail(err, nil)
	}

	say("creating network namespace %s: bridge %s, host link %s (%s), no route off the machine", rec.Namespace, vmnet.Bridge, rec.HostLink, rec.Gateway)
	gw := netip.MustParsePrefix(rec.Gateway)
	if err := p.Host.Create(ctx, vmnet.Network{Namespace: rec.Namespace, HostLink: rec.HostLink, Gateway: gw, Taps: rec.Taps()}); err != nil {
		return fail(err, nil)
	}

	kvm := p.KVM
	if kvm == nil {
		kvm = vm.KVMUsable
	}
	useKVM, why := kvm(ctx, img.kernel())
	rec.Accel = "tcg"
	if useKVM {
		rec.Accel = "kvm"
		say("VMs use KVM: %s", why)
	} else {
		say("VMs use TCG (software emulation, slow): %s", why)
	}
	if err := saveRecord(dir, rec); err != nil {
		return fail(err, nil)
	}

	for i := range rec.Nodes {
		n := &rec.Nodes[i]
		say("starting %s (%s, %s, %d vCPU, %d MiB)", n.Name, n.Role, n.IP, n.CPUs, n.MemoryMB)
		if err := p.startVM(ctx, dir, rec, n, img, configs[i]); err != nil {
			return fail(fmt.Errorf("start node %s: %w", n.Name, err), n)
		}
		if err := saveRecord(dir, rec); err != nil {
			return fail(err, nil)
		}
	}

	cluster, err := p.Show(ctx, req.Name)
	if err != nil {
		return fail(err, nil)
	}
	for i, n := range cluster.Nodes {
		if n.State != "running" {
			return fail(fmt.Errorf("%s is %s right after its start (see its console below)", n.Name, n.State), &rec.Nodes[i])
		}
	}
	return cluster, nil
}

// vmOptions are the VM of node n of the cluster in dir.
func vmOptions(dir string, rec *Record, n *VMRecord, img image) vm.Options {
	abs := func(f string) string { return filepath.Join(dir, f) }
	return vm.Options{
		Disk: img.disk(), Overlay: abs(n.Disk), OverlaySize: DiskSize, Vars: abs(n.Vars),
		AllowReboot: true, MemoryMB: n.MemoryMB, CPUs: n.CPUs, KVM: rec.Accel == "kvm",
		FirmwareFiles: map[string]string{"opt/plinth/config": abs(n.Config)},
		Tap:           n.Tap, MAC: n.MAC,
		ConsoleLog: abs(n.Console), QMP: abs(n.QMP), PIDFile: abs(n.PIDFile),
	}
}

// startVM writes the node's configuration, makes its disk and variable store and starts
// its emulator, detached, in the cluster's network namespace; it records the process id.
func (p *Provisioner) startVM(ctx context.Context, dir string, rec *Record, n *VMRecord, img image, cfg []byte) error {
	if err := os.WriteFile(filepath.Join(dir, n.Config), cfg, 0o600); err != nil {
		return fmt.Errorf("write the machine configuration: %w", err)
	}
	o := vmOptions(dir, rec, n, img)
	args, err := o.Args()
	if err != nil {
		return err
	}
	if err := o.Prepare(ctx); err != nil {
		return err
	}
	argv := append(append(vmnet.ExecPrefix(rec.Namespace), vm.Binary), args...)
	run := p.Exec
	if run == nil {
		run = execDetached
	}
	sctx, cancel := context.WithTimeout(ctx, startTimeout)
	defer cancel()
	output := filepath.Join(dir, n.Output)
	if err := run(sctx, argv, output); err != nil {
		if msg := strings.TrimSpace(readFile(output)); msg != "" {
			err = fmt.Errorf("%w: %s", err, msg)
		}
		return err
	}
	pid, err := readPIDFile(o.PIDFile)
	if err != nil {
		return fmt.Errorf("the emulator started but: %w", err)
	}
	n.PID = pid
	return nil
}

// execDetached runs argv with its output to the file output and returns when it ends: for
// the emulator, once it has set the VM up and detached.
func execDetached(ctx context.Context, argv []string, output string) error {
	f, err := os.OpenFile(output, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o600)
	if err != nil {
		return fmt.Errorf("the emulator's output: %w", err)
	}
	defer f.Close()
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.Stdout, cmd.Stderr = f, f
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("%s: %w", vm.Binary, err)
	}
	return nil
}

func readFile(path string) string {
	data, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	return string(data)
}

// Show implements provision.Provisioner: the record, with each VM's state from its
// process.
func (p *Provisioner) Show(_ context.Context, name string) (*provision.Cluster, error) {
	if err := provision.ValidateName(name); err != nil {
		return nil, err
	}
	dir := p.clusterDir(name)
	rec, err := loadRecord(dir)
	if errors.Is(err, errNoRecord) {
		if st, serr := os.Stat(dir); serr == nil && st.IsDir() {
			// What a create that failed early, or a destroy that failed half-way, left:
			// nothing to show but its name, so that list shows it and destroy removes it.
			return &provision.Cluster{Name: name, Network: vmnet.NamespaceName(name), NoKubernetes: true}, nil
		}
		return nil, provision.NotFound("no QEMU cluster named %q (list them with `plinthctl cluster list --provisioner qemu`)", name)
	}
	if err != nil {
		return nil, err
	}
	return clusterOf(dir, rec), nil
}

// clusterOf is the cluster a record describes, as it is now.
func clusterOf(dir string, rec *Record) *provision.Cluster {
	c := &provision.Cluster{Name: rec.Name, Network: rec.Namespace, CIDR: rec.CIDR, NoKubernetes: rec.Profile != profileK8s,
		// Its network has no route off the machine (internal/vmnet): no NAT, no default route.
		Isolated: true}
	for _, n := range rec.Nodes {
		node := provision.Node{Name: n.Name, Role: n.Role, IP: n.IP, Host: n.IP, APIPort: ports.NodeAPI}
		switch {
		case n.PID == 0:
			node.State = "created"
		case isEmulator(n.PID, filepath.Join(dir, n.Disk)):
			node.State, node.Container = "running", "pid "+strconv.Itoa(n.PID)
		default:
			node.State = "exited"
		}
		c.Nodes = append(c.Nodes, node)
	}
	slices.SortFunc(c.Nodes, provision.SortKey)
	if first := c.FirstControlPlane(); first != nil && !c.NoKubernetes {
		first.KubePort = ports.KubeAPI
	}
	return c
}

// Destroy implements provision.Provisioner: the VMs (their emulators end), the network,
// the directory. It finds what to remove by the cluster's name, even without a record
// (a create that failed early, or a record removed by hand).
func (p *Provisioner) Destroy(ctx context.Context, name string, progress io.Writer) error {
	if progress == nil {
		progress = io.Discard
	}
	if err := provision.ValidateName(name); err != nil {
		return err
	}
	dir := p.clusterDir(name)
	found := false
	var errs []error
	rec, err := loadRecord(dir)
	if err != nil && !errors.Is(err, errNoRecord) {
		errs = append(errs, err)
	}
	if rec != nil {
		found = true
		for _, n := range rec.Nodes {
			pid := n.PID
			if pid == 0 {
				// Started, but killed before the record was written.
				pid, _ = readPIDFile(filepath.Join(dir, n.PIDFile))
			}
			stopped, err := stopEmulator(ctx, pid, filepath.Join(dir, n.Disk))
			if err != nil {
				errs = append(errs, err)
			} else if stopped {
				fmt.Fprintf(progress, "stopped VM %s (pid %d)\n", n.Name, pid)
			}
		}
	}
	// The namespace outlives processes that are still in it: remove it only once they ended.
	if len(errs) == 0 {
		removed, err := p.Host.Delete(ctx, vmnet.NamespaceName(name), vmnet.HostLinkName(name))
		if err != nil {
			errs = append(errs, err)
		}
		if removed {
			found = true
			fmt.Fprintf(progress, "removed network namespace %s and link %s\n", vmnet.NamespaceName(name), vmnet.HostLinkName(name))
		}
	}
	if len(errs) == 0 {
		if _, err := os.Stat(dir); err == nil {
			found = true
			if err := os.RemoveAll(dir); err != nil {
				errs = append(errs, fmt.Errorf("remove the cluster's directory: %w", err))
			} else {
				fmt.Fprintf(progress, "removed %s\n", dir)
			}
		}
		// The cluster's directory goes too when nothing else is left in it (plinthctl
		// cluster keeps its state files there by default, and removes them afterwards).
		_ = os.Remove(filepath.Dir(dir))
	}
	if err := errors.Join(errs...); err != nil {
		return err
	}
	if !found {
		fmt.Fprintf(progress, "nothing of QEMU cluster %q is left\n", name)
	}
	return nil
}

// List implements provision.Provisioner: every cluster with a directory of VMs, record or
// not, so that half-removed clusters show too.
func (p *Provisioner) List(context.Context) ([]string, error) {
	entries, err := os.ReadDir(p.Dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("list the clusters: %w", err)
	}
	var names []string
	for _, e := range entries {
		if !e.IsDir() || provision.ValidateName(e.Name()) != nil {
			continue
		}
		if st, err := os.Stat(p.clusterDir(e.Name())); err == nil && st.IsDir() {
			names = append(names, e.Name())
		}
	}
	return names, nil // ReadDir sorts by name
}

// LogLines is how many console lines of a failed node an error carries.
const LogLines = 50

// Logs implements provision.Provisioner: the last lines of the node's serial console.
func (p *Provisioner) Logs(ctx context.Context, node string, lines int) (string, error) {
	names, err := p.List(ctx)
	if err != nil {
		return "", err
	}
	for _, name := range names {
		dir := p.clusterDir(name)
		rec, err := loadRecord(dir)
		if err != nil {
			continue
		}
		if n := rec.Node(node); n != nil {
			path := filepath.Join(dir, n.Console)
			if _, err := os.Stat(path); err != nil {
				return "", fmt.Errorf("the console of %s: %w", node, err)
			}
			return lastLines(path, lines), nil
		}
	}
	return "", provision.NotFound("no node named %q in a QEMU cluster", node)
}
