package stage0

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// fakeSys records every call, with paths shown relative to root, as one line each.
type fakeSys struct {
	root string

	mu    sync.Mutex
	calls []string
	// mountErr fails the mount whose line (as recorded) has this key as a prefix.
	mountErr  map[string]error
	moduleErr map[string]error // by file name
	// onMount runs after a successful recorded mount (to put files in the new root).
	onMount   func(line string)
	execErr   error
	rebootErr error
	// maxSleeps ends the calling goroutine (runtime.Goexit) at that Sleep, to stop Halt.
	maxSleeps int
	sleeps    int
}

func newFakeSys(root string) *fakeSys {
	return &fakeSys{root: root, execErr: unix.ENOENT}
}

func (f *fakeSys) rel(path string) string {
	if f.root == "" || !strings.HasPrefix(path, f.root) {
		return path
	}
	r := strings.TrimPrefix(path, f.root)
	if r == "" {
		return "/"
	}
	return r
}

func (f *fakeSys) record(line string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, line)
}

func (f *fakeSys) Calls() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.calls...)
}

func mountFlags(flags uintptr) string {
	var opts []string
	for _, o := range []struct {
		flag uintptr
		name string
	}{{unix.MS_RDONLY, "ro"}, {unix.MS_NOSUID, "nosuid"}, {unix.MS_NODEV, "nodev"}, {unix.MS_NOEXEC, "noexec"}} {
		if flags&o.flag != 0 {
			opts = append(opts, o.name)
			flags &^= o.flag
		}
	}
	if flags != 0 {
		opts = append(opts, fmt.Sprintf("%#x", flags))
	}
	return strings.Join(opts, ",")
}

func (f *fakeSys) Mount(source, target, fstype string, flags uintptr, data string) error {
	var line string
	if flags&unix.MS_MOVE != 0 {
		line = fmt.Sprintf("mount --move %s %s", f.rel(source), f.rel(target))
	} else {
		opts := mountFlags(flags)
		if data != "" {
			opts += "," + data
		}
		line = fmt.Sprintf("mount -t %s -o %s %s %s", fstype, opts, f.rel(source), f.rel(target))
	}
	f.record(line)
	for prefix, err := range f.mountErr {
		if strings.HasPrefix(line, prefix) {
			return err
		}
	}
	if f.onMount != nil {
		f.onMount(line)
	}
	return nil
}

func (f *fakeSys) Mknod(path string, major, minor uint32) error {
	f.record(fmt.Sprintf("mknod %s b %d %d", f.rel(path), major, minor))
	return nil
}

func (f *fakeSys) LoadModule(path string) error {
	f.record("load " + f.rel(path))
	return f.moduleErr[filepath.Base(path)]
}

func (f *fakeSys) ConsoleStdio(path string) error {
	f.record("stdio " + f.rel(path))
	return nil
}

func (f *fakeSys) FreeInitramfs(root, newRoot string) error {
	f.record(fmt.Sprintf("free %s except %s", f.rel(root), f.rel(newRoot)))
	return nil
}

func (f *fakeSys) Chdir(dir string) error {
	f.record("chdir " + f.rel(dir))
	return nil
}

func (f *fakeSys) Chroot(dir string) error {
	f.record("chroot " + f.rel(dir))
	return nil
}

func (f *fakeSys) Exec(path string, argv, env []string) error {
	f.record(fmt.Sprintf("exec %s %q %q", path, argv, env))
	return f.execErr
}

func (f *fakeSys) AttachLoop(path string) (string, error) {
	f.record("loop " + f.rel(path))
	return "/dev/loop0", nil
}

func (f *fakeSys) Reboot() error {
	f.record("reboot")
	return f.rebootErr
}

func (f *fakeSys) Sleep(d time.Duration) {
	f.record("sleep " + d.String())
	f.mu.Lock()
	f.sleeps++
	stop := f.maxSleeps > 0 && f.sleeps >= f.maxSleeps
	f.mu.Unlock()
	if stop {
		runtime.Goexit()
	}
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

// addBlock adds a block device to a fake /sys/class/block: a symbolic link to a directory
// holding uevent, as sysfs has it.
func addBlock(t *testing.T, classDir, name, uevent string) {
	t.Helper()
	devDir := filepath.Join(filepath.Dir(classDir), "devices", name)
	writeFile(t, filepath.Join(devDir, "uevent"), uevent)
	if err := os.MkdirAll(classDir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(devDir, filepath.Join(classDir, name)); err != nil {
		t.Fatal(err)
	}
}

func disk(name string, major, minor int) string {
	return fmt.Sprintf("MAJOR=%d\nMINOR=%d\nDEVNAME=%s\nDEVTYPE=disk\nDISKSEQ=1\n", major, minor, name)
}

func part(name string, major, minor, n int, partName string) string {
	s := fmt.Sprintf("MAJOR=%d\nMINOR=%d\nDEVNAME=%s\nDEVTYPE=partition\nDISKSEQ=1\nPARTN=%d\n", major, minor, name, n)
	if partName != "" {
		s += "PARTNAME=" + partName + "\n"
	}
	return s
}
