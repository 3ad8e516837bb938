// Package stage0 is the logic of plinth-init, the /init of Plinth's initramfs: it mounts
// /dev, /proc and /sys, loads the storage modules listed in the initramfs, waits for the root
// partition (GPT name ROOT-A or ROOT-B), mounts its squashfs read-only, switches root to it
// and executes machined as PID 1. When it cannot, it says why on the console and stops
// without exiting (PID 1 exiting panics the kernel and can hide the message).
//
// Every system call goes through System, so the sequence is unit-tested with a fake; paths
// are taken under Config.Root, which is "/" on a machine and a temporary tree in tests.
package stage0

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/plinthos/plinth/internal/watchdog"

	"github.com/plinthos/plinth/internal/clock"
)

// Paths of the contract with the image builder (docs/boot.md, docs/os-image.md).
const (
	ModulesDir = "/lib/modules"
	LoadList   = "/lib/modules/plinth.load"
	NewRoot    = "/newroot"
	// Media is where the install media is mounted (then moved into the root, which has the
	// directory), and MediaRoot the root file system on it.
	Media     = "/media"
	MediaRoot = "/media/plinth/rootfs.squashfs"
	Machined  = "/usr/bin/machined"
)

// DefaultPoll is the time between two scans for the root partition.
const DefaultPoll = 100 * time.Millisecond

// System is the kernel as stage 0 uses it.
type System interface {
	Mount(source, target, fstype string, flags uintptr, data string) error
	// Mknod makes a block device node.
	Mknod(path string, major, minor uint32) error
	// LoadModule loads the kernel module in file path.
	LoadModule(path string) error
	// ConsoleStdio opens the console at path as standard input, output and error, which
	// machined inherits.
	ConsoleStdio(path string) error
	// FreeInitramfs deletes the initramfs's files under root to give their memory back,
	// leaving other filesystems (newRoot) alone; it refuses when root is not a ramfs.
	FreeInitramfs(root, newRoot string) error
	Chdir(dir string) error
	Chroot(dir string) error
	// Exec replaces the process; it returns only on failure.
	Exec(path string, argv, env []string) error
	// AttachLoop attaches the file at path to a free loop device, read-only, and returns the
	// device's path.
	AttachLoop(path string) (string, error)
	Reboot() error
	Sleep(d time.Duration)
}

// Config is what Run needs.
type Config struct {
	// Root is where the initramfs is: "/" on a machine.
	Root  string
	Sys   System
	Log   *Log
	Clock clock.Clock
	// Poll is the time between scans for the root partition (DefaultPoll when zero).
	Poll time.Duration
}

// MachinedEnv is machined's whole environment.
var MachinedEnv = []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"}

type earlyMount struct {
	source, target, fstype string
	flags                  uintptr
	data                   string
}

var earlyMounts = []earlyMount{
	{"devtmpfs", "/dev", "devtmpfs", unix.MS_NOSUID, "mode=0755"},
	{"proc", "/proc", "proc", unix.MS_NOSUID | unix.MS_NODEV | unix.MS_NOEXEC, ""},
	{"sysfs", "/sys", "sysfs", unix.MS_NOSUID | unix.MS_NODEV | unix.MS_NOEXEC, ""},
}

// Run boots: on success it does not return (machined replaces this process). It returns the
// command line it read (Halt needs panic=) and why it could not boot.
func Run(ctx context.Context, cfg Config) (Cmdline, error) {
	sys, log := cfg.Sys, cfg.Log
	p := func(path string) string { return filepath.Join(cfg.Root, path) }

	for _, m := range earlyMounts {
		if err := os.MkdirAll(p(m.target), 0o755); err != nil {
			return Cmdline{}, fmt.Errorf("create %s: %w", m.target, err)
		}
		err := sys.Mount(m.source, p(m.target), m.fstype, m.flags, m.data)
		if err != nil && !errors.Is(err, unix.EBUSY) {
			return Cmdline{}, fmt.Errorf("mount %s on %s: %w", m.fstype, m.target, err)
		}
	}
	if err := sys.ConsoleStdio(p("/dev/console")); err != nil {
		log.Warnf("console as standard input and output: %v", err)
	}
	if kmsg, err := os.OpenFile(p("/dev/kmsg"), os.O_WRONLY, 0); err != nil {
		log.Warnf("kernel log: %v (logging to the console only)", err)
	} else {
		// Left open: Go opens files close-on-exec, so machined does not inherit it.
		log.SetKmsg(kmsg, ReadConsoleLevel(p("/proc/sys/kernel/printk")))
	}
	log.Infof("mounted /dev, /proc, /sys")

	raw, err := os.ReadFile(p("/proc/cmdline"))
	if err != nil {
		return Cmdline{}, fmt.Errorf("read the kernel command line: %w", err)
	}
	cl, err := ParseCmdline(string(raw))
	if err != nil {
		return cl, err
	}
	log.SetDebug(cl.Debug)
	log.Debugf("kernel command line: %s", strings.TrimSpace(string(raw)))

	var failures []ModuleFailure
	names, err := ReadLoadList(p(LoadList))
	switch {
	case errors.Is(err, os.ErrNotExist):
		log.Infof("no %s: relying on drivers built into the kernel", LoadList)
	case err != nil:
		log.Warnf("%v: loading no modules", err)
	default:
		failures = LoadModules(sys, log, p(ModulesDir), names)
		log.Infof("loaded %d of %d modules", len(names)-len(failures), len(names))
	}

	var what string
	moves := []string{"/dev", "/proc", "/sys"}
	if cl.Live {
		what, err = mountMedia(ctx, cfg, cl, failures)
		moves = append(moves, Media)
	} else {
		what, err = mountPartition(ctx, cfg, cl, failures)
	}
	if err != nil {
		return cl, err
	}
	if _, err := os.Stat(p(NewRoot + Machined)); err != nil {
		return cl, fmt.Errorf("the root filesystem on %s is not a Plinth root: %w", what, err)
	}
	for _, d := range moves {
		if err := sys.Mount(p(d), p(NewRoot+d), "", unix.MS_MOVE, ""); err != nil {
			return cl, fmt.Errorf("move %s to %s: %w", d, NewRoot+d, err)
		}
	}
	if err := sys.FreeInitramfs(p("/"), p(NewRoot)); err != nil {
		log.Warnf("initramfs not freed: %v", err)
	}

	log.Infof("switching root to %s", what)
	if err := sys.Chdir(p(NewRoot)); err != nil {
		return cl, fmt.Errorf("switch root: chdir %s: %w", NewRoot, err)
	}
	if err := sys.Mount(".", p("/"), "", unix.MS_MOVE, ""); err != nil {
		return cl, fmt.Errorf("switch root: move %s to /: %w", NewRoot, err)
	}
	if err := sys.Chroot("."); err != nil {
		return cl, fmt.Errorf("switch root: chroot: %w", err)
	}
	if err := sys.Chdir("/"); err != nil {
		return cl, fmt.Errorf("switch root: chdir /: %w", err)
	}

	// The watchdog (softdog, loaded with the modules) resets the machine unless machined
	// takes it over in time: a trial boot that hangs from here on comes back on the old slot.
	switch err := watchdog.Arm(p(watchdog.Device), watchdog.Timeout); {
	case err == nil:
		log.Infof("watchdog armed: machined must feed it within %s", watchdog.Timeout)
	case errors.Is(err, os.ErrNotExist):
		log.Infof("no watchdog device: a hang is not caught")
	default:
		log.Warnf("watchdog not armed: %v", err)
	}
	log.Infof("starting %s", Machined)
	err = sys.Exec(Machined, []string{Machined, "--mode", "metal"}, MachinedEnv)
	return cl, fmt.Errorf("exec %s: %w", Machined, err)
}

// mountPartition waits for the root partition the command line names and mounts its
// squashfs on NewRoot; it returns what it mounted, for messages.
func mountPartition(ctx context.Context, cfg Config, cl Cmdline, failures []ModuleFailure) (string, error) {
	sys, log := cfg.Sys, cfg.Log
	p := func(path string) string { return filepath.Join(cfg.Root, path) }
	want := cl.PartName()
	log.Infof("waiting up to %s for partition %s", cl.RootWait, want)
	w := Waiter{Dir: p("/sys/class/block"), Clock: cfg.Clock, Poll: cfg.poll()}
	dev, err := w.Wait(ctx, want, cl.RootWait)
	if err != nil {
		return "", withFailures(err, failures)
	}
	log.Infof("found %s on /dev/%s", want, dev.DevName)
	node, err := deviceNode(cfg, dev)
	if err != nil {
		return "", err
	}
	if err := sys.Mount(node, p(NewRoot), "squashfs", unix.MS_RDONLY, ""); err != nil {
		return "", fmt.Errorf("mount /dev/%s (%s) read-only as squashfs on %s: %w%s", dev.DevName, want, NewRoot, err, mountHint(err))
	}
	return fmt.Sprintf("%s (/dev/%s)", want, dev.DevName), nil
}

// mountMedia waits for the install media (a disk holding the ISO 9660 volume
// MediaVolumeID), mounts it read-only on Media, and mounts the squashfs file on it,
// through a loop device, on NewRoot.
func mountMedia(ctx context.Context, cfg Config, cl Cmdline, failures []ModuleFailure) (string, error) {
	sys, log := cfg.Sys, cfg.Log
	p := func(path string) string { return filepath.Join(cfg.Root, path) }
	log.Infof("waiting up to %s for the install media (ISO 9660 volume %s)", cl.RootWait, MediaVolumeID)
	w := Waiter{Dir: p("/sys/class/block"), Clock: cfg.Clock, Poll: cfg.poll()}
	dev, err := w.WaitMedia(ctx, p("/dev"), cl.RootWait)
	if err != nil {
		return "", withFailures(err, failures)
	}
	log.Infof("found the install media on /dev/%s", dev.DevName)
	node, err := deviceNode(cfg, dev)
	if err != nil {
		return "", err
	}
	if err := os.MkdirAll(p(Media), 0o755); err != nil {
		return "", fmt.Errorf("create %s: %w", Media, err)
	}
	if err := sys.Mount(node, p(Media), "iso9660", unix.MS_RDONLY, ""); err != nil {
		return "", fmt.Errorf("mount the install media /dev/%s read-only on %s: %w%s", dev.DevName, Media, err, mountHint(err))
	}
	loop, err := sys.AttachLoop(p(MediaRoot))
	if err != nil {
		return "", fmt.Errorf("attach %s to a loop device: %w", MediaRoot, err)
	}
	if err := sys.Mount(loop, p(NewRoot), "squashfs", unix.MS_RDONLY, ""); err != nil {
		return "", fmt.Errorf("mount %s (%s) read-only as squashfs on %s: %w%s", loop, MediaRoot, NewRoot, err, mountHint(err))
	}
	return fmt.Sprintf("%s on the install media (/dev/%s)", MediaRoot, dev.DevName), nil
}

// deviceNode returns the path of dev's node under /dev, making it if devtmpfs has not.
func deviceNode(cfg Config, dev BlockDevice) (string, error) {
	node := filepath.Join(cfg.Root, "/dev/"+dev.DevName)
	if _, err := os.Stat(node); errors.Is(err, os.ErrNotExist) {
		cfg.Log.Debugf("creating /dev/%s (%d:%d)", dev.DevName, dev.Major, dev.Minor)
		if err := os.MkdirAll(filepath.Dir(node), 0o755); err != nil {
			return "", fmt.Errorf("create the directory of /dev/%s: %w", dev.DevName, err)
		}
		if err := cfg.Sys.Mknod(node, dev.Major, dev.Minor); err != nil {
			return "", fmt.Errorf("create device node /dev/%s (%d:%d): %w", dev.DevName, dev.Major, dev.Minor, err)
		}
	}
	return node, nil
}

// withFailures adds the modules that failed to load to err: a missing driver is the
// likely reason a device did not appear.
func withFailures(err error, failures []ModuleFailure) error {
	if len(failures) == 0 {
		return err
	}
	lines := make([]string, len(failures))
	for i, f := range failures {
		lines[i] = "  " + f.String()
	}
	return fmt.Errorf("%w\nmodules that failed to load:\n%s", err, strings.Join(lines, "\n"))
}

func (c Config) poll() time.Duration {
	if c.Poll <= 0 {
		return DefaultPoll
	}
	return c.Poll
}

func mountHint(err error) string {
	switch {
	case errors.Is(err, unix.ENODEV):
		return " (the kernel has no squashfs: is squashfs.ko in plinth.load?)"
	case errors.Is(err, unix.EINVAL):
		return " (the partition does not hold a squashfs)"
	}
	return ""
}

// Halt reports why the boot failed and never returns. With panic=N on the kernel command
// line it reboots after N seconds (at once for N < 0), so that a failed trial slot falls
// back to the previous one; otherwise it waits forever with the reason on the console.
func Halt(sys System, log *Log, cl Cmdline, why error) {
	if why == nil {
		why = errors.New("stage 0 ended without starting machined")
	}
	log.Errorf("cannot boot: %s", strings.ReplaceAll(why.Error(), "\n", "\n  "))
	reboot := true
	switch {
	case cl.Panic > 0:
		log.Errorf("rebooting in %d seconds (panic=%d)", cl.Panic, cl.Panic)
		sys.Sleep(time.Duration(cl.Panic) * time.Second)
	case cl.Panic < 0:
		log.Errorf("rebooting (panic=%d)", cl.Panic)
	default:
		reboot = false
		log.Errorf("stopped: reset the machine once the cause is fixed (panic=N on the kernel command line reboots by itself)")
	}
	if reboot {
		if err := sys.Reboot(); err != nil {
			log.Errorf("reboot: %v; stopped", err)
		}
	}
	for {
		sys.Sleep(time.Hour)
	}
}
