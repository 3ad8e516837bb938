package stage0

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"golang.org/x/sys/unix"
)

// LinuxSystem is System on the running kernel.
type LinuxSystem struct{}

var _ System = LinuxSystem{}

// Mount is mount(2).
func (LinuxSystem) Mount(source, target, fstype string, flags uintptr, data string) error {
	return unix.Mount(source, target, fstype, flags, data)
}

// Mknod makes a block device node readable and writable by root only.
func (LinuxSystem) Mknod(path string, major, minor uint32) error {
	return unix.Mknod(path, unix.S_IFBLK|0o600, int(unix.Mkdev(major, minor)))
}

// LoadModule loads an uncompressed module file with finit_module(2). An open error is an
// *os.PathError; a kernel refusal is the bare errno, wrapped.
func (LinuxSystem) LoadModule(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer func() { _ = f.Close() }()
	if err := unix.FinitModule(int(f.Fd()), "", 0); err != nil {
		return fmt.Errorf("finit_module: %w", err)
	}
	return nil
}

// ConsoleStdio puts the console on file descriptors 0, 1 and 2. The kernel gives /init the
// console only when the initramfs has a /dev/console node; otherwise Go's runtime opened
// /dev/null there, or nothing.
func (LinuxSystem) ConsoleStdio(path string) error {
	fd, err := unix.Open(path, unix.O_RDWR|unix.O_NOCTTY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("open %s: %w", path, err)
	}
	for i := 0; i <= 2; i++ {
		if i == fd {
			continue
		}
		if err := unix.Dup3(fd, i, 0); err != nil {
			return fmt.Errorf("dup %s to fd %d: %w", path, i, err)
		}
	}
	if fd > 2 {
		_ = unix.Close(fd)
	}
	return nil
}

// FreeInitramfs deletes the files of the initramfs at root, without crossing into another
// filesystem (newRoot and anything else mounted). It does nothing unless root is a ramfs or
// tmpfs (the kernel's rootfs), this is PID 1, and newRoot is another filesystem: deleting
// files anywhere else would be a disaster, and leaving them costs only a few MiB of RAM.
func (LinuxSystem) FreeInitramfs(root, newRoot string) error {
	if os.Getpid() != 1 {
		return errors.New("not PID 1")
	}
	var fs unix.Statfs_t
	if err := unix.Statfs(root, &fs); err != nil {
		return fmt.Errorf("statfs %s: %w", root, err)
	}
	if uint32(fs.Type) != unix.RAMFS_MAGIC && uint32(fs.Type) != unix.TMPFS_MAGIC {
		return fmt.Errorf("%s is not a ramfs or tmpfs (type %#x)", root, fs.Type)
	}
	rootDev, err := lstatDev(root)
	if err != nil {
		return err
	}
	newDev, err := lstatDev(newRoot)
	if err != nil {
		return err
	}
	if rootDev == newDev {
		return fmt.Errorf("%s is on the same filesystem as %s", newRoot, root)
	}
	return removeSameDevice(root, rootDev, lstatDev)
}

func lstatDev(path string) (uint64, error) {
	var st unix.Stat_t
	if err := unix.Lstat(path, &st); err != nil {
		return 0, fmt.Errorf("lstat %s: %w", path, err)
	}
	return st.Dev, nil
}

// removeSameDevice deletes what is under dir and on device dev, depth first, never
// following symbolic links and never entering a directory on another device (a mount
// point). It goes on after an error and returns them all.
func removeSameDevice(dir string, dev uint64, devOf func(string) (uint64, error)) error {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return fmt.Errorf("read %s: %w", dir, err)
	}
	var errs []error
	for _, e := range entries {
		path := filepath.Join(dir, e.Name())
		d, err := devOf(path)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if d != dev {
			continue
		}
		if e.IsDir() {
			if err := removeSameDevice(path, dev, devOf); err != nil {
				errs = append(errs, err)
				continue
			}
		}
		if err := os.Remove(path); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// AttachLoop attaches the file at path, read-only, to a free loop device (LOOP_CONFIGURE;
// the device detaches itself when its last user, the mount, goes away).
func (LinuxSystem) AttachLoop(path string) (string, error) {
	ctl, err := os.OpenFile("/dev/loop-control", os.O_RDWR, 0)
	if err != nil {
		return "", fmt.Errorf("loop devices (is the loop module loaded?): %w", err)
	}
	defer ctl.Close()
	n, err := unix.IoctlRetInt(int(ctl.Fd()), unix.LOOP_CTL_GET_FREE)
	if err != nil {
		return "", fmt.Errorf("find a free loop device: %w", err)
	}
	dev := fmt.Sprintf("/dev/loop%d", n)
	loop, err := os.OpenFile(dev, os.O_RDONLY, 0)
	if err != nil {
		return "", err
	}
	defer loop.Close()
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	cfg := unix.LoopConfig{Fd: uint32(f.Fd())}
	cfg.Info.Flags = unix.LO_FLAGS_READ_ONLY | unix.LO_FLAGS_AUTOCLEAR
	copy(cfg.Info.File_name[:], path)
	if err := unix.IoctlLoopConfigure(int(loop.Fd()), &cfg); err != nil {
		return "", fmt.Errorf("configure %s: %w", dev, err)
	}
	return dev, nil
}

// Chdir is chdir(2).
func (LinuxSystem) Chdir(dir string) error { return unix.Chdir(dir) }

// Chroot is chroot(2).
func (LinuxSystem) Chroot(dir string) error { return unix.Chroot(dir) }

// Exec is execve(2).
func (LinuxSystem) Exec(path string, argv, env []string) error { return unix.Exec(path, argv, env) }

// Reboot syncs and restarts the machine.
func (LinuxSystem) Reboot() error {
	unix.Sync()
	if err := unix.Reboot(unix.LINUX_REBOOT_CMD_RESTART); err != nil {
		return fmt.Errorf("reboot: %w", err)
	}
	return nil
}

// Sleep is time.Sleep.
func (LinuxSystem) Sleep(d time.Duration) { time.Sleep(d) }
