package machined

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"math/big"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/plinthos/plinth/internal/atomicfile"
	"github.com/plinthos/plinth/internal/controller"
	"github.com/plinthos/plinth/internal/controllers"
	"github.com/plinthos/plinth/internal/dhcpclient"
	"github.com/plinthos/plinth/internal/fileapi"
	"github.com/plinthos/plinth/internal/install"
	"github.com/plinthos/plinth/internal/machineapi"
	"github.com/plinthos/plinth/internal/maintenance"
	"github.com/plinthos/plinth/internal/netconf"
	"github.com/plinthos/plinth/internal/powerbutton"
	"github.com/plinthos/plinth/internal/stage0"
	"github.com/plinthos/plinth/internal/storage"
	"github.com/plinthos/plinth/internal/watchdog"
	"github.com/plinthos/plinth/pkg/config"
)

// ModeMetal runs machined as PID 1 of a machine booted from the Plinth image (bare metal
// or a VM): stage 0 mounted the root file system and moved /dev, /proc and /sys into it;
// machined mounts the rest, brings up the network from the configuration, and on reboot or
// shutdown stops everything, unmounts and calls reboot(2).
const ModeMetal = string(config.ModeMetal)

// FirmwareConfigPath is where QEMU's firmware configuration device shows the machine
// configuration the provisioner handed to the VM (-fw_cfg name=opt/plinth/config,...).
const FirmwareConfigPath = "/sys/firmware/qemu_fw_cfg/by_name/opt/plinth/config/raw"

// FirmwareArgsPath is where QEMU's firmware configuration device shows kernel-style
// plinth.* arguments the provisioner gives a VM that boots through its firmware (and so
// has no kernel command line of the provisioner's choosing): opt/plinth/args.
const FirmwareArgsPath = "/sys/firmware/qemu_fw_cfg/by_name/opt/plinth/args/raw"

// metalPlatform is machined as PID 1 of a booted machine.
type metalPlatform struct{}

func (metalPlatform) Name() string { return ModeMetal }

// ConfigMode implements Platform.
func (metalPlatform) ConfigMode() config.Mode { return config.ModeMetal }

func (metalPlatform) Prepare() error {
	if err := prepareMetal("/"); err != nil {
		return err
	}
	if liveBoot() {
		// The install media: nothing is kept; the configuration goes to the disk installed.
		for _, dir := range []string{StateMount, "/var"} {
			if err := os.MkdirAll(dir, 0o755); err != nil {
				return fmt.Errorf("create %s: %w", dir, err)
			}
			if err := unix.Mount("tmpfs", dir, "tmpfs", unix.MS_NOSUID|unix.MS_NODEV, "mode=755"); err != nil {
				return fmt.Errorf("mount tmpfs on %s: %w", dir, err)
			}
		}
		return nil
	}
	return mountDisk()
}

// WipeBootDisk implements bootDiskWiper: the boot disk's primary and backup GPT (first and
// last MiB) and the start of its EFI partition (the FAT boot sector) are zeroed, so the
// firmware finds nothing to boot there. The running system does not need them: the kernel
// keeps the partition table it read, and the root is mounted.
func (metalPlatform) WipeBootDisk() error {
	if liveBoot() {
		return errors.New("wipe mode all: this machine runs from the install media, not from a disk")
	}
	disk, err := bootDisk()
	if err != nil {
		return err
	}
	efi, err := storage.FindOn("/sys/class/block", disk, "EFI")
	if err != nil {
		return err
	}
	return storage.WipeBoot("/dev/"+disk, efi)
}

// MediaDir is where the live system finds the installer's files: stage 0 moved the
// install media's mount to /media.
const MediaDir = "/media/plinth"

// liveBoot says whether this boot is from the install media (plinth.live).
func liveBoot() bool {
	data, err := os.ReadFile("/proc/cmdline")
	if err != nil {
		return false
	}
	cl, _ := stage0.ParseCmdline(string(data))
	return cl.Live
}

// Live implements mediaInstaller.
func (metalPlatform) Live() bool { return liveBoot() }

// Install implements mediaInstaller: the OS from the install media, and the configuration,
// onto machine.install.disk.
func (metalPlatform) Install(ctx context.Context, cfg *config.MachineConfig, bootArgs []string, store func(dir string) error, log *slog.Logger) (string, error) {
	disk := cfg.Machine.Install.Disk
	if sel := cfg.Machine.Install.DiskSelector; sel != nil {
		var err error
		if disk, err = install.Select("/sys/block", *sel); err != nil {
			return "", err
		}
		log.Info("install: machine.install.diskSelector chose a disk", "disk", disk)
	}
	args := append(slices.Clone(bootArgs), cfg.Machine.Install.ExtraKernelArgs...)
	err := install.Run(ctx, install.Options{Disk: disk, MediaDir: MediaDir, ExtraKernelArgs: args,
		Store: store, Log: log})
	if err != nil {
		return "", err
	}
	return "installed to " + disk + "; the machine reboots from it into its configuration (remove the install media)", nil
}

// StateMount is where the STATE partition (configuration, identity) is mounted; the
// EPHEMERAL partition is /var.
const StateMount = "/system/state"

// bootDisk is the name of the disk whose partition holds the root file system.
func bootDisk() (string, error) {
	var st unix.Stat_t
	if err := unix.Stat("/", &st); err != nil {
		return "", fmt.Errorf("the root file system: %w", err)
	}
	disk, err := storage.DiskOf("/sys/dev/block", st.Dev)
	if err != nil {
		return "", fmt.Errorf("find the boot disk: %w", err)
	}
	return disk, nil
}

// mountDisk mounts STATE and EPHEMERAL of the boot disk (the disk of the root file
// system) and grows EPHEMERAL to the disk's end (the image ships it small; the machine's
// disk is larger). A failed growth leaves EPHEMERAL at its size and the boot goes on.
func mountDisk() error {
	disk, err := bootDisk()
	if err != nil {
		return err
	}
	state, err := storage.FindOn("/sys/class/block", disk, "STATE")
	if err != nil {
		return err
	}
	eph, err := storage.FindOn("/sys/class/block", disk, "EPHEMERAL")
	if err != nil {
		return err
	}
	if err := storage.Mount(state, StateMount); err != nil {
		return err
	}
	if err := storage.Mount(eph, "/var"); err != nil {
		return err
	}
	size, err := storage.GrowToDisk(eph, "/var")
	switch {
	case err != nil:
		fmt.Fprintf(os.Stderr, "machined: warning: EPHEMERAL keeps its size: %v\n", err)
	case size > 0:
		fmt.Fprintf(os.Stderr, "machined: EPHEMERAL grown to %d MiB\n", size>>20)
	}
	return nil
}

// Defaults implements Platform: the configuration and identity live on STATE, the logs
// on EPHEMERAL; the first configuration comes from the firmware configuration device when
// there is one. The address comes from the configuration (Network).
func (metalPlatform) Defaults(o *Options) error {
	if o.StateDir == "" {
		o.StateDir = StateMount
	}
	if o.LogDir == "" {
		o.LogDir = "/var/log/plinth"
	}
	if o.EphemeralDir == "" {
		o.EphemeralDir = "/var" // EPHEMERAL
	}
	if o.ConfigPath == "" {
		if _, err := os.Stat(FirmwareConfigPath); err == nil {
			o.ConfigPath = FirmwareConfigPath
		}
	}
	return nil
}

// Unconfigured implements Platform: the kernel command line, then the arguments of the
// firmware configuration device, give the trust anchor (plinth.trust=) and the maintenance
// network (plinth.net=LINK:ADDRESS/PREFIX[:GATEWAY]; without it, DHCP on every Ethernet
// link).
func (metalPlatform) Unconfigured(o *Options) (maintenance.Trust, error) {
	var none maintenance.Trust
	cmdline, err := bootArgs("/proc/cmdline", FirmwareArgsPath)
	if err != nil {
		return none, err
	}
	args, err := parseKernelArgs(cmdline)
	if err != nil {
		return none, err
	}
	h, err := netlink.NewHandle(unix.NETLINK_ROUTE)
	if err != nil {
		return none, fmt.Errorf("netlink: %w", err)
	}
	defer h.Close()
	if args.iface != nil {
		res, err := netconf.Apply(h, []config.Interface{*args.iface})
		if err != nil {
			return none, err
		}
		o.Address = res.Addresses[0].String()
	} else if o.Address, err = maintenanceDHCP(h); err != nil {
		return none, err
	}
	if o.Hostname == "" {
		o.Hostname = "plinth-maintenance"
	}
	return maintenance.Trust{Anchor: args.anchor, Revoked: args.revoked}, nil
}

// maintenanceDHCP asks for a DHCP lease on every Ethernet link and returns the address of
// the first lease. The lease is not renewed: the DHCP controller runs only once the machine
// is configured (QEMU's lease lasts a day).
func maintenanceDHCP(h *netlink.Handle) (string, error) {
	all, err := h.LinkList()
	if err != nil {
		return "", fmt.Errorf("list links: %w", err)
	}
	var links []string
	for _, l := range all {
		if a := l.Attrs(); l.Type() == "device" && a.EncapType == "ether" {
			links = append(links, a.Name)
		}
	}
	if len(links) == 0 {
		return "", errors.New("maintenance mode needs an address and the machine has no Ethernet link: give plinth.net=LINK:ADDRESS/PREFIX[:GATEWAY] on the kernel command line")
	}
	fmt.Fprintf(os.Stderr, "machined: maintenance mode: asking for a DHCP lease on %s\n", strings.Join(links, ", "))
	ctx, cancel := context.WithTimeout(context.Background(), dhcpclient.BootTimeout)
	defer cancel()
	leases, err := dhcpclient.AcquireAll(ctx, links, dhcpclient.DefaultLeaseDir, nil)
	for _, l := range leases {
		if l != nil {
			return l.Address.Addr().String(), nil
		}
	}
	return "", fmt.Errorf("maintenance mode needs an address: no DHCP lease on %s within %s (%v): give plinth.net=LINK:ADDRESS/PREFIX[:GATEWAY] on the kernel command line or in fw_cfg opt/plinth/args",
		strings.Join(links, ", "), dhcpclient.BootTimeout, err)
}

// bootArgs is the kernel command line at cmdline followed by the arguments in the file
// extra, when it exists: a later key wins over an earlier one.
func bootArgs(cmdline, extra string) (string, error) {
	data, err := os.ReadFile(cmdline)
	if err != nil {
		return "", fmt.Errorf("read the kernel command line: %w", err)
	}
	line := strings.TrimSpace(string(data))
	if before, _, found := strings.Cut(" "+line+" ", " -- "); found {
		line = strings.TrimSpace(before) // what follows -- is init's, not ours
	}
	more, err := os.ReadFile(extra)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return line, nil
	case err != nil:
		return "", fmt.Errorf("read the firmware's boot arguments: %w", err)
	}
	return line + " " + strings.Join(strings.Fields(string(more)), " "), nil
}

// kernelArgs are the plinth.* keys machined reads from the kernel command line.
type kernelArgs struct {
	anchor  *maintenance.Anchor
	revoked []string
	iface   *config.Interface
}

// parseKernelArgs reads plinth.trust=, plinth.revoked= and plinth.net= from a kernel
// command line.
func parseKernelArgs(cmdline string) (kernelArgs, error) {
	var out kernelArgs
	for _, field := range strings.Fields(cmdline) {
		if field == "--" {
			break
		}
		key, value, _ := strings.Cut(field, "=")
		switch key {
		case "plinth.trust":
			a, err := maintenance.ParseAnchor(value)
			if err != nil {
				return out, fmt.Errorf("plinth.trust: %w", err)
			}
			out.anchor = &a
		case "plinth.revoked":
			for _, serial := range strings.Split(value, ",") {
				if _, ok := new(big.Int).SetString(serial, 16); !ok {
					return out, fmt.Errorf("plinth.revoked: %q is not a certificate serial in hex (plinthctl config info shows it)", serial)
				}
				out.revoked = append(out.revoked, serial)
			}
		case "plinth.net":
			parts := strings.Split(value, ":")
			if len(parts) < 2 || len(parts) > 3 || parts[0] == "" {
				return out, fmt.Errorf("plinth.net=%s: want LINK:ADDRESS/PREFIX[:GATEWAY], such as eth0:10.0.2.15/24:10.0.2.2", value)
			}
			if _, err := netip.ParsePrefix(parts[1]); err != nil {
				return out, fmt.Errorf("plinth.net=%s: %w", value, err)
			}
			in := &config.Interface{Name: parts[0], Addresses: []string{parts[1]}}
			if len(parts) == 3 {
				if _, err := netip.ParseAddr(parts[2]); err != nil {
					return out, fmt.Errorf("plinth.net=%s: gateway: %w", value, err)
				}
				in.Routes = []config.Route{{Gateway: parts[2]}}
			}
			out.iface = in
		}
	}
	return out, nil
}

// Network implements Platform: the links, addresses and routes of machine.network, and a
// DHCP lease on each link with dhcp (kept from then on by the network.DHCP controller);
// the node's address is its first static address, else its first lease's.
func (metalPlatform) Network(cfg *config.MachineConfig, o *Options) error {
	h, err := netlink.NewHandle(unix.NETLINK_ROUTE)
	if err != nil {
		return fmt.Errorf("netlink: %w", err)
	}
	defer h.Close()
	res, err := netconf.Apply(h, cfg.Machine.Network.Interfaces)
	if err != nil {
		return err
	}
	addrs := res.Addresses
	if links := netconf.DHCPLinks(cfg.Machine.Network.Interfaces); len(links) > 0 {
		ctx, cancel := context.WithTimeout(context.Background(), dhcpclient.BootTimeout)
		leases, err := dhcpclient.AcquireAll(ctx, links, dhcpclient.DefaultLeaseDir, nil)
		cancel()
		for _, l := range leases {
			if l != nil {
				addrs = append(addrs, l.Address.Addr())
			}
		}
		switch {
		case err != nil && len(addrs) == 0:
			return fmt.Errorf("no address: %w", err)
		case err != nil:
			fmt.Fprintf(os.Stderr, "machined: warning: %v (DHCP goes on trying)\n", err)
		}
	}
	if o.Address == "" {
		if len(addrs) == 0 {
			return errors.New("machine.network.interfaces gives this machine no address: the node API needs one; give a link static addresses or dhcp: true")
		}
		o.Address = addrs[0].String()
	}
	if cfg.Machine.Network.Hostname != "" {
		if err := unix.Sethostname([]byte(cfg.Machine.Network.Hostname)); err != nil {
			return fmt.Errorf("set the host name: %w", err)
		}
	}
	name, err := os.Hostname()
	if err != nil {
		return fmt.Errorf("the host name: %w", err)
	}
	return writeHostFiles("/etc", name, o.Address)
}

// writeHostFiles writes /etc/hostname and /etc/hosts (the loopback names, and the node's
// address with its name), which the container runtime copies into every pod.
func writeHostFiles(etc, hostname, address string) error {
	hosts := fmt.Sprintf("127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n%s\t%s\n", address, hostname)
	for name, data := range map[string]string{"hostname": hostname + "\n", "hosts": hosts} {
		if err := atomicfile.Write(filepath.Join(etc, name), []byte(data), 0o644); err != nil {
			return fmt.Errorf("write %s: %w", filepath.Join(etc, name), err)
		}
	}
	return nil
}

// System implements Platform: as in Docker, callers without os:admin read only the logs
// and the files of /etc that say what the node is.
func (metalPlatform) System(Options) machineapi.System {
	allowed := []string{"/var/log", "/etc/os-release", "/etc/hostname", "/etc/hosts", "/etc/resolv.conf"}
	return machineapi.System{ProcRoot: "/proc", KmsgPath: "/dev/kmsg", Files: fileapi.FS{Root: "/", Allowed: allowed}}
}

// Controllers implements Platform: the machine's links, addresses, routes and disks, the
// hardening sysctls then machine.sysctls, machine.files (which Kubernetes nodes set
// through their own controllers), the DHCP leases and the resolvers, and the clock's
// synchronisation (machine.time).
func (p metalPlatform) Controllers() []controller.Controller {
	cs := []controller.Controller{&controllers.NetworkStatus{}, &controllers.DiskStatus{},
		&controllers.Sysctls{ProcSys: "/proc/sys", Defaults: controllers.HardeningSysctls},
		&controllers.DHCP{}, &controllers.Resolvers{}, &controllers.TimeSync{}}
	if !p.Kubernetes() {
		cs = append(cs, &controllers.MachineFiles{Root: "/"})
	}
	return cs
}

// Kubernetes implements Platform: an OS image of the Kubernetes profile has the payload
// (kubelet, containerd, the image bundle).
func (metalPlatform) Kubernetes() bool {
	_, err := os.Stat(KubernetesPayload)
	return err == nil
}

// KubernetesPayload is the payload's kubelet: the OS image has it only in the
// Kubernetes profile.
const KubernetesPayload = "/usr/bin/kubelet"

// Watch implements Platform: a press of the ACPI power button (or QEMU's system_powerdown)
// shuts the node down; and the watchdog stage 0 armed is fed until ctx ends.
func (metalPlatform) Watch(ctx context.Context, shutdown func()) {
	var wg sync.WaitGroup
	defer wg.Wait()
	wg.Go(func() {
		log := slog.Default().With("component", "watchdog")
		err := watchdog.Feed(ctx, watchdog.Device, watchdog.Timeout/4, log)
		switch {
		case errors.Is(err, os.ErrNotExist):
			log.Info("no watchdog device: a hang is not caught")
		case err != nil:
			log.Warn("watchdog", "error", err)
		}
	})
	if err := powerbutton.Watch(ctx, "/sys/class/input", shutdown); err != nil {
		fmt.Fprintf(os.Stderr, "machined: the power button is not watched: %v\n", err)
	}
}

// Halt implements Platform: every process left gets SIGTERM, then SIGKILL; the file
// systems are unmounted (read-only when busy) and synced; then reboot(2).
func (metalPlatform) Halt(reboot bool) error {
	killAll(5 * time.Second)
	unmountAll()
	unix.Sync()
	cmd := unix.LINUX_REBOOT_CMD_POWER_OFF
	if reboot {
		cmd = unix.LINUX_REBOOT_CMD_RESTART
	}
	return fmt.Errorf("reboot(2): %w", unix.Reboot(cmd))
}

// prepareMetal mounts what a booted machine needs beyond /dev, /proc and /sys (which
// stage 0 moved into the root): pseudo-terminals, shared memory, cgroup v2, tmpfs for
// /run, /tmp and /system, and a writable /etc holding the root's files. root is "/"
// except in tests. The disk's partitions come next (mountDisk).
func prepareMetal(root string) error {
	at := func(p string) string { return filepath.Join(root, p) }
	mounts := []struct {
		source, target, fstype string
		flags                  uintptr
		data                   string
	}{
		{"devpts", "/dev/pts", "devpts", unix.MS_NOSUID | unix.MS_NOEXEC, "gid=5,mode=620,ptmxmode=666"},
		{"tmpfs", "/dev/shm", "tmpfs", unix.MS_NOSUID | unix.MS_NODEV, "mode=1777"},
		{"cgroup2", "/sys/fs/cgroup", "cgroup2", unix.MS_NOSUID | unix.MS_NODEV | unix.MS_NOEXEC, "nsdelegate"},
		{"tmpfs", "/run", "tmpfs", unix.MS_NOSUID | unix.MS_NODEV, "mode=755"},
		{"tmpfs", "/tmp", "tmpfs", unix.MS_NOSUID | unix.MS_NODEV, "mode=1777"},
		{"tmpfs", "/system", "tmpfs", unix.MS_NOSUID | unix.MS_NODEV, "mode=755"},
	}
	for _, m := range mounts {
		if err := os.MkdirAll(at(m.target), 0o755); err != nil && !errors.Is(err, fs.ErrExist) {
			return fmt.Errorf("create %s: %w", m.target, err)
		}
		if err := unix.Mount(m.source, at(m.target), m.fstype, m.flags, m.data); err != nil && !errors.Is(err, unix.EBUSY) {
			return fmt.Errorf("mount %s on %s: %w", m.fstype, m.target, err)
		}
	}
	if err := writableEtc(at("/etc")); err != nil {
		return err
	}
	// Volumes that kubelet mounts for pods must propagate between its namespaces.
	if err := unix.Mount("", at("/"), "", unix.MS_REC|unix.MS_SHARED, ""); err != nil {
		return fmt.Errorf("make / shared: %w", err)
	}
	return nil
}

// writableEtc puts a tmpfs over dir (the read-only root's /etc) holding a copy of its
// tree (files with their modes, directories, symbolic links), so that the host name, hosts
// and resolver files can be written.
func writableEtc(dir string) error {
	type entry struct {
		rel    string
		mode   fs.FileMode
		data   []byte
		target string
	}
	var tree []entry
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(dir, p)
		if err != nil || rel == "." {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		e := entry{rel: rel, mode: info.Mode()}
		switch {
		case info.Mode().IsRegular():
			if e.data, err = os.ReadFile(p); err != nil {
				return err
			}
		case info.Mode()&fs.ModeSymlink != 0:
			if e.target, err = os.Readlink(p); err != nil {
				return err
			}
		case info.IsDir():
		default:
			return nil // devices, sockets: none in the image
		}
		tree = append(tree, e)
		return nil
	})
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("read %s: %w", dir, err)
	}
	if err := unix.Mount("tmpfs", dir, "tmpfs", unix.MS_NOSUID|unix.MS_NODEV, "mode=755"); err != nil {
		return fmt.Errorf("mount tmpfs on %s: %w", dir, err)
	}
	for _, e := range tree { // WalkDir lists a directory before its contents
		p := filepath.Join(dir, e.rel)
		var err error
		switch {
		case e.mode.IsDir():
			err = os.Mkdir(p, e.mode.Perm())
		case e.mode&fs.ModeSymlink != 0:
			err = os.Symlink(e.target, p)
		default:
			if err = os.WriteFile(p, e.data, e.mode.Perm()); err == nil {
				err = os.Chmod(p, e.mode.Perm()) // WriteFile's mode passes through the umask
			}
		}
		if err != nil {
			return fmt.Errorf("copy %s into the writable /etc: %w", e.rel, err)
		}
	}
	return nil
}

// killAll sends SIGTERM to every other process, waits up to grace for them to end, then
// sends SIGKILL to what is left and waits for it to be gone (a process that the kernel has
// not finished with keeps its files open). Zombies are reaped by the reaper meanwhile.
func killAll(grace time.Duration) {
	_ = unix.Kill(-1, unix.SIGTERM)
	waitOthers(grace)
	if othersAlive() {
		_ = unix.Kill(-1, unix.SIGKILL)
		if !waitOthers(5 * time.Second) {
			fmt.Fprintln(os.Stderr, "machined: processes are left after SIGKILL; unmounting anyway")
		}
	}
}

// waitOthers waits up to d for every other process to end; it reports whether they did.
func waitOthers(d time.Duration) bool {
	deadline := time.Now().Add(d)
	for othersAlive() {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(100 * time.Millisecond)
	}
	return true
}

// othersAlive reports whether a process other than this one and kernel threads runs.
func othersAlive() bool {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return false
	}
	self := fmt.Sprint(os.Getpid())
	for _, e := range entries {
		if e.Name() == self || strings.TrimLeft(e.Name(), "0123456789") != "" {
			continue
		}
		// Kernel threads have an empty command line.
		if cmdline, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline")); err == nil && len(cmdline) > 0 {
			return true
		}
	}
	return false
}

// unmountAll unmounts every file system but the pseudo ones, deepest first; a busy one is
// remounted read-only instead.
func unmountAll() {
	data, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return
	}
	var targets []string
	for _, line := range strings.Split(strings.TrimSpace(string(data)), "\n") {
		f := strings.Fields(line)
		if len(f) < 5 {
			continue
		}
		t := f[4]
		if t == "/" || t == "/proc" || t == "/sys" || t == "/dev" || strings.HasPrefix(t, "/proc/") || strings.HasPrefix(t, "/sys/") || strings.HasPrefix(t, "/dev/") {
			continue
		}
		targets = append(targets, t)
	}
	slices.SortFunc(targets, func(a, b string) int { return strings.Count(b, "/") - strings.Count(a, "/") })
	for _, t := range targets {
		if err := unix.Unmount(t, 0); err != nil {
			if rerr := unix.Mount("", t, "", unix.MS_REMOUNT|unix.MS_RDONLY, ""); rerr != nil {
				fmt.Fprintf(os.Stderr, "machined: %s stays mounted read-write (unmount: %v; read-only: %v)\n", t, err, rerr)
			}
		}
	}
}
