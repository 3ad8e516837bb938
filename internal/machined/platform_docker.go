package machined

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/plinthos/plinth/internal/controller"
	"github.com/plinthos/plinth/internal/controllers"
	"github.com/plinthos/plinth/internal/fileapi"
	"github.com/plinthos/plinth/internal/k8s/paths"
	"github.com/plinthos/plinth/internal/machineapi"
	"github.com/plinthos/plinth/internal/maintenance"
	"github.com/plinthos/plinth/pkg/config"
)

// ModeDocker runs machined as PID 1 of a node container (Docker): it prepares the
// container's mounts and devices, runs containerd and kubelet, and on control planes the
// Kubernetes control plane as static pods. Reboot ends the container with RebootExitCode
// (its restart policy brings it back); shutdown ends it with 0.
const ModeDocker = string(config.ModeDocker)

// ContainerConfigPath is where a node container finds its configuration at first boot
// (the provisioner copies it there, root-only, before the container starts). Nothing
// reads a configuration from the environment.
const ContainerConfigPath = "/etc/plinth/config.yaml"

// RebootExitCode is machined's exit code for a reboot in a container.
const RebootExitCode = 81

// dockerPlatform is machined as PID 1 of a node container.
type dockerPlatform struct{}

func (dockerPlatform) Name() string { return ModeDocker }

// ConfigMode implements Platform.
func (dockerPlatform) ConfigMode() config.Mode { return config.ModeDocker }

func (dockerPlatform) Prepare() error { return prepareContainer() }

func (dockerPlatform) Defaults(o *Options) error {
	if o.StateDir == "" {
		o.StateDir = "/var/lib/plinth"
	}
	if o.EphemeralDir == "" {
		o.EphemeralDir = "/var" // the node's volume
	}
	if o.ConfigPath == "" {
		o.ConfigPath = ContainerConfigPath
	}
	if o.Address == "" {
		addr, err := primaryAddress()
		if err != nil {
			return err
		}
		o.Address = addr
	}
	if o.Hostname == "" {
		h, err := os.Hostname()
		if err != nil {
			return err
		}
		o.Hostname = h
	}
	return nil
}

// System implements Platform: callers without os:admin read only the logs, pods' included
// (/var/log/containers/* are links into /var/log/pods), and the files of /etc that say
// what the node is; /proc, /sys, kubelet's, containerd's and etcd's state, the node's
// secrets and configuration are for admins only.
func (dockerPlatform) System(Options) machineapi.System {
	allowed := []string{"/var/log", "/etc/os-release", "/etc/hostname", "/etc/hosts", "/etc/resolv.conf"}
	return machineapi.System{ProcRoot: "/proc", KmsgPath: "/dev/kmsg", Files: fileapi.FS{Root: "/", Allowed: allowed}}
}

// Controllers implements Platform: machine.sysctls (the namespaced ones; validation refuses
// the others); the links and disks are the host's, not the node's.
func (dockerPlatform) Controllers() []controller.Controller {
	return []controller.Controller{&controllers.Sysctls{ProcSys: "/proc/sys"}}
}

func (dockerPlatform) Kubernetes() bool { return true }

// Unconfigured implements Platform: a configuration is required.
func (dockerPlatform) Unconfigured(*Options) (maintenance.Trust, error) {
	return maintenance.Trust{}, ErrNeedsConfig
}

// Watch implements Platform: the machine's controls are the host's.
func (dockerPlatform) Watch(context.Context, func()) {}

func (dockerPlatform) Network(*config.MachineConfig, *Options) error { return nil }

// Halt implements Platform: the container ends, with RebootExitCode for a reboot (its
// restart policy starts it again) and 0 for a shutdown (it stays stopped).
func (dockerPlatform) Halt(reboot bool) error {
	if reboot {
		os.Exit(RebootExitCode)
	}
	os.Exit(0)
	return nil
}

// prepareContainer sets up what a node container needs and Docker does not give:
// shared mount propagation for kubelet, tmpfs for /run, /tmp and /system, and /dev/kmsg.
func prepareContainer() error {
	if err := isolateCgroups("/proc/self/cgroup", "/sys/fs/cgroup"); err != nil {
		return fmt.Errorf("isolate cgroups: %w", err)
	}
	// Volumes that kubelet mounts for pods must propagate between its namespaces.
	if err := unix.Mount("", "/", "", unix.MS_REC|unix.MS_SHARED, ""); err != nil {
		return fmt.Errorf("make / shared: %w", err)
	}
	for _, dir := range []string{"/run", "/tmp", "/system"} {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return err
		}
		mode := "mode=755"
		if dir == "/tmp" {
			mode = "mode=1777"
		}
		if err := unix.Mount("tmpfs", dir, "tmpfs", unix.MS_NOSUID|unix.MS_NODEV, mode); err != nil {
			return fmt.Errorf("mount tmpfs on %s: %w", dir, err)
		}
	}
	for _, dir := range []string{paths.PKIDir, paths.ManifestsDir, paths.KubeletDir, paths.EtcdDataDir, paths.ContainerdDir,
		paths.CNIConfDir, "/var/log/pods", "/var/lib/plinth", filepath.Dir(paths.ContainerdConfig)} {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return err
		}
	}
	if err := os.Chmod(paths.PKIDir, 0o700); err != nil {
		return err
	}
	// kubelet's OOM watcher reads the kernel log.
	if _, err := os.Stat("/dev/kmsg"); errors.Is(err, os.ErrNotExist) {
		if err := unix.Mknod("/dev/kmsg", unix.S_IFCHR|0o600, int(unix.Mkdev(1, 11))); err != nil {
			return fmt.Errorf("create /dev/kmsg: %w", err)
		}
	}
	return nil
}

// primaryAddress returns the first global IPv4 address of the container's interfaces.
func primaryAddress() (string, error) {
	ifaces, err := net.Interfaces()
	if err != nil {
		return "", err
	}
	for _, iface := range ifaces {
		if iface.Flags&net.FlagLoopback != 0 || iface.Flags&net.FlagUp == 0 {
			continue
		}
		addrs, err := iface.Addrs()
		if err != nil {
			continue
		}
		for _, a := range addrs {
			if ipn, ok := a.(*net.IPNet); ok && ipn.IP.To4() != nil && ipn.IP.IsGlobalUnicast() {
				return ipn.IP.String(), nil
			}
		}
	}
	return "", errors.New("the container has no IPv4 address")
}

// isolateCgroups makes the container's own cgroups appear as the roots of the cgroup
// hierarchies bind-mounted from the host, so that kubelet's cgroups (kubepods, ...) are
// created inside this node's container and two nodes on one host do not share them.
// cgroupFile is normally /proc/self/cgroup and root /sys/fs/cgroup.
func isolateCgroups(cgroupFile, root string) error {
	data, err := os.ReadFile(cgroupFile)
	if err != nil {
		return err
	}
	for _, line := range strings.Split(strings.TrimSpace(string(data)), "\n") {
		parts := strings.SplitN(line, ":", 3)
		if len(parts) != 3 || parts[2] == "/" {
			continue
		}
		var dir string
		switch {
		case parts[0] == "0" && parts[1] == "":
			// The unified hierarchy: at root on a pure v2 host, under unified/ on a hybrid one.
			dir = filepath.Join(root, "unified")
			if _, err := os.Stat(dir); err != nil {
				dir = root
			}
		default:
			dir = filepath.Join(root, strings.TrimPrefix(parts[1], "name="))
		}
		own := filepath.Join(dir, parts[2])
		if _, err := os.Stat(own); err != nil {
			continue // not mounted here
		}
		if err := unix.Mount(own, dir, "", unix.MS_BIND, ""); err != nil {
			return fmt.Errorf("bind %s over %s: %w", own, dir, err)
		}
		// runc derives cgroup paths from the mount's root as mountinfo shows it
		// (<dir>/<own path>/...): make that path lead to the same place.
		alias := filepath.Join(dir, parts[2])
		if err := os.MkdirAll(alias, 0o755); err != nil {
			return fmt.Errorf("create %s: %w", alias, err)
		}
		if err := unix.Mount(dir, alias, "", unix.MS_BIND, ""); err != nil {
			return fmt.Errorf("bind %s over %s: %w", dir, alias, err)
		}
	}
	return nil
}
