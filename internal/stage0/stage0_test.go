package stage0

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/plinthos/plinth/internal/clock"
)

// initramfs is a fake initramfs root (with fake /proc and /sys contents already in place) and
// a fake system whose squashfs mount puts machined into /newroot.
type initramfs struct {
	root    string
	sys     *fakeSys
	console *bytes.Buffer
	log     *Log
}

func newInitramfs(t *testing.T, cmdline string) *initramfs {
	t.Helper()
	root := t.TempDir()
	for _, d := range []string{"dev", "proc", "sys", "newroot"} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	writeFile(t, filepath.Join(root, "proc/cmdline"), cmdline+"\n")
	writeFile(t, filepath.Join(root, "proc/sys/kernel/printk"), "4\t4\t1\t7\n")
	writeFile(t, filepath.Join(root, "dev/kmsg"), "")
	writeFile(t, filepath.Join(root, "dev/vda"), "") // a node devtmpfs made; vda2's is missing
	class := filepath.Join(root, "sys/class/block")
	addBlock(t, class, "vda", disk("vda", 253, 0))
	addBlock(t, class, "vda1", part("vda1", 253, 1, 1, "EFI"))
	addBlock(t, class, "vda2", part("vda2", 253, 2, 2, "ROOT-A"))
	addBlock(t, class, "vda3", part("vda3", 253, 3, 3, "ROOT-B"))
	addBlock(t, class, "vda4", part("vda4", 253, 4, 4, "META"))
	writeFile(t, filepath.Join(root, "lib/modules/plinth.load"), "virtio.ko\nvirtio_blk.ko\nsquashfs.ko\n")

	sys := newFakeSys(root)
	sys.onMount = func(line string) {
		if strings.HasPrefix(line, "mount -t squashfs") {
			writeFile(t, filepath.Join(root, "newroot/usr/bin/machined"), "")
		}
	}
	console := &bytes.Buffer{}
	return &initramfs{root: root, sys: sys, console: console, log: NewLog(console)}
}

func (i *initramfs) run() (Cmdline, error) {
	return Run(context.Background(), Config{
		Root: i.root, Sys: i.sys, Log: i.log, Clock: clock.NewFake(time.Unix(0, 0)), Poll: time.Second,
	})
}

var earlyCalls = []string{
	"mount -t devtmpfs -o nosuid,mode=0755 devtmpfs /dev",
	"mount -t proc -o nosuid,nodev,noexec proc /proc",
	"mount -t sysfs -o nosuid,nodev,noexec sysfs /sys",
	"stdio /dev/console",
}

func bootCalls(dev string) []string {
	return []string{
		"mount -t squashfs -o ro /dev/" + dev + " /newroot",
		"mount --move /dev /newroot/dev",
		"mount --move /proc /newroot/proc",
		"mount --move /sys /newroot/sys",
		"free / except /newroot",
		"chdir /newroot",
		"mount --move . /",
		"chroot .",
		"chdir /",
		`exec /usr/bin/machined ["/usr/bin/machined" "--mode" "metal"] ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"]`,
	}
}

func concat(parts ...[]string) []string {
	var all []string
	for _, p := range parts {
		all = append(all, p...)
	}
	return all
}

func checkCalls(t *testing.T, got, want []string) {
	t.Helper()
	if !reflect.DeepEqual(got, want) {
		t.Errorf("calls:\n  %s\nwant:\n  %s", strings.Join(got, "\n  "), strings.Join(want, "\n  "))
	}
}

func TestRunBootSequence(t *testing.T) {
	i := newInitramfs(t, "console=ttyS0 plinth.slot=A panic=10")
	i.sys.moduleErr = map[string]error{"virtio.ko": unix.EEXIST, "virtio_blk.ko": unix.ENOEXEC}
	cl, err := i.run()
	// The fake exec fails, which is the only way Run returns after switching root.
	if err == nil || err.Error() != "exec /usr/bin/machined: no such file or directory" {
		t.Fatalf("error = %v", err)
	}
	if cl.Panic != 10 {
		t.Errorf("Panic = %d, want 10", cl.Panic)
	}
	checkCalls(t, i.sys.Calls(), concat(earlyCalls, []string{
		"load /lib/modules/virtio.ko",
		"load /lib/modules/virtio_blk.ko",
		"load /lib/modules/squashfs.ko",
		"mknod /dev/vda2 b 253 2",
	}, bootCalls("vda2")))

	console := i.console.String()
	for _, s := range []string{
		"plinth-init: mounted /dev, /proc, /sys\n",
		"plinth-init: warning: module virtio_blk.ko: exec format error (not a module for this kernel, or compressed)\n",
		"plinth-init: loaded 2 of 3 modules\n",
		"plinth-init: waiting up to 30s for partition ROOT-A\n",
		"plinth-init: found ROOT-A on /dev/vda2\n",
		"plinth-init: starting /usr/bin/machined\n",
	} {
		if !strings.Contains(console, s) {
			t.Errorf("console lacks %q:\n%s", s, console)
		}
	}
	if strings.Contains(console, "creating /dev/vda2") {
		t.Errorf("debug line without plinth.debug:\n%s", console)
	}
	// console_loglevel is 4: info stays at 6, the warning is raised to 4 so that the
	// kernel does not print it a second time.
	kmsg, err := os.ReadFile(filepath.Join(i.root, "dev/kmsg"))
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{
		"<6>plinth-init: mounted /dev, /proc, /sys\n",
		"<4>plinth-init: warning: module virtio_blk.ko",
		"<6>plinth-init: starting /usr/bin/machined\n",
	} {
		if !strings.Contains(string(kmsg), s) {
			t.Errorf("kmsg lacks %q:\n%s", s, kmsg)
		}
	}
}

func TestRunSlotAndRootOverride(t *testing.T) {
	i := newInitramfs(t, "plinth.slot=B plinth.debug")
	writeFile(t, filepath.Join(i.root, "dev/vda3"), "") // node present: no mknod
	if _, err := i.run(); err == nil || !strings.HasPrefix(err.Error(), "exec ") {
		t.Fatalf("error = %v", err)
	}
	calls := i.sys.Calls()
	checkCalls(t, calls[len(calls)-10:], bootCalls("vda3"))
	if !strings.Contains(i.console.String(), "plinth-init: loaded module squashfs.ko\n") {
		t.Errorf("plinth.debug: no module lines:\n%s", i.console.String())
	}

	i = newInitramfs(t, "plinth.slot=B plinth.root=META")
	if _, err := i.run(); err == nil || !strings.HasPrefix(err.Error(), "exec ") {
		t.Fatalf("error = %v", err)
	}
	calls = i.sys.Calls()
	checkCalls(t, calls[len(calls)-10:], bootCalls("vda4"))
}

func TestRunRootNotFound(t *testing.T) {
	i := newInitramfs(t, "plinth.root=ROOT-X plinth.rootwait=0")
	i.sys.moduleErr = map[string]error{"virtio_blk.ko": unix.ENOEXEC}
	_, err := i.run()
	want := `no partition named ROOT-X appeared within 0s
block devices seen: vda (disk), vda1 (partition "EFI"), vda2 (partition "ROOT-A"), vda3 (partition "ROOT-B"), vda4 (partition "META")
modules that failed to load:
  virtio_blk.ko: exec format error (not a module for this kernel, or compressed)`
	if err == nil || err.Error() != want {
		t.Fatalf("error:\n%v\nwant:\n%s", err, want)
	}
	for _, c := range i.sys.Calls() {
		if strings.HasPrefix(c, "mount -t squashfs") || strings.HasPrefix(c, "chroot") {
			t.Errorf("went on after the root was not found: %s", c)
		}
	}
}

func TestRunWithoutModuleList(t *testing.T) {
	i := newInitramfs(t, "")
	if err := os.Remove(filepath.Join(i.root, "lib/modules/plinth.load")); err != nil {
		t.Fatal(err)
	}
	if _, err := i.run(); err == nil || !strings.HasPrefix(err.Error(), "exec ") {
		t.Fatalf("error = %v", err)
	}
	if !strings.Contains(i.console.String(), "no /lib/modules/plinth.load: relying on drivers built into the kernel") {
		t.Errorf("console:\n%s", i.console.String())
	}
}

func TestRunEarlyMountBusyIsFine(t *testing.T) {
	i := newInitramfs(t, "")
	i.sys.mountErr = map[string]error{"mount -t proc": unix.EBUSY}
	if _, err := i.run(); err == nil || !strings.HasPrefix(err.Error(), "exec ") {
		t.Fatalf("error = %v", err)
	}
}

func TestRunFailures(t *testing.T) {
	tests := []struct {
		name     string
		mountErr map[string]error
		setup    func(i *initramfs)
		want     string
		lastCall string
	}{
		{
			name:     "devtmpfs",
			mountErr: map[string]error{"mount -t devtmpfs": unix.EPERM},
			want:     "mount devtmpfs on /dev: operation not permitted",
			lastCall: "mount -t devtmpfs -o nosuid,mode=0755 devtmpfs /dev",
		},
		{
			name: "bad command line",
			setup: func(i *initramfs) {
				writeFile(t, filepath.Join(i.root, "proc/cmdline"), "plinth.slot=Z\n")
			},
			want:     "kernel command line: plinth.slot=Z: the slot must be A or B",
			lastCall: "stdio /dev/console",
		},
		{
			name:     "no squashfs in the kernel",
			mountErr: map[string]error{"mount -t squashfs": unix.ENODEV},
			want:     "mount /dev/vda2 (ROOT-A) read-only as squashfs on /newroot: no such device (the kernel has no squashfs: is squashfs.ko in plinth.load?)",
			lastCall: "mount -t squashfs -o ro /dev/vda2 /newroot",
		},
		{
			name:     "not a squashfs",
			mountErr: map[string]error{"mount -t squashfs": unix.EINVAL},
			want:     "mount /dev/vda2 (ROOT-A) read-only as squashfs on /newroot: invalid argument (the partition does not hold a squashfs)",
			lastCall: "mount -t squashfs -o ro /dev/vda2 /newroot",
		},
		{
			name:     "no machined",
			setup:    func(i *initramfs) { i.sys.onMount = nil },
			want:     "the root filesystem on ROOT-A (/dev/vda2) is not a Plinth root: stat ",
			lastCall: "mount -t squashfs -o ro /dev/vda2 /newroot",
		},
		{
			name:     "move",
			mountErr: map[string]error{"mount --move /proc": unix.ENOENT},
			want:     "move /proc to /newroot/proc: no such file or directory",
			lastCall: "mount --move /proc /newroot/proc",
		},
		{
			name:     "switch root",
			mountErr: map[string]error{"mount --move . /": unix.EINVAL},
			want:     "switch root: move /newroot to /: invalid argument",
			lastCall: "mount --move . /",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			i := newInitramfs(t, "")
			i.sys.mountErr = tt.mountErr
			if tt.setup != nil {
				tt.setup(i)
			}
			_, err := i.run()
			if err == nil || !strings.HasPrefix(err.Error(), tt.want) {
				t.Fatalf("error = %v\nwant    %s", err, tt.want)
			}
			calls := i.sys.Calls()
			if last := calls[len(calls)-1]; last != tt.lastCall {
				t.Errorf("last call %q, want %q", last, tt.lastCall)
			}
		})
	}
}

func runHalt(sys *fakeSys, log *Log, cl Cmdline, why error) {
	done := make(chan struct{})
	go func() {
		defer close(done)
		Halt(sys, log, cl, why)
	}()
	<-done
}

func TestHalt(t *testing.T) {
	why := fmt.Errorf("no partition named ROOT-A appeared within 30s\nblock devices seen: none")
	tests := []struct {
		name      string
		panic     int
		rebootErr error
		calls     []string
		lastLine  string
	}{
		{
			name:     "forever",
			calls:    []string{"sleep 1h0m0s", "sleep 1h0m0s", "sleep 1h0m0s"},
			lastLine: "plinth-init: stopped: reset the machine once the cause is fixed (panic=N on the kernel command line reboots by itself)",
		},
		{
			name:     "panic=10",
			panic:    10,
			calls:    []string{"sleep 10s", "reboot", "sleep 1h0m0s"},
			lastLine: "plinth-init: rebooting in 10 seconds (panic=10)",
		},
		{
			name:     "panic=-1",
			panic:    -1,
			calls:    []string{"reboot", "sleep 1h0m0s", "sleep 1h0m0s"},
			lastLine: "plinth-init: rebooting (panic=-1)",
		},
		{
			name:      "reboot fails",
			panic:     -1,
			rebootErr: unix.EPERM,
			calls:     []string{"reboot", "sleep 1h0m0s", "sleep 1h0m0s"},
			lastLine:  "plinth-init: reboot: operation not permitted; stopped",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sys := newFakeSys("")
			// Every case ends with its third call, a sleep that the fake turns into the end.
			for _, c := range tt.calls {
				if strings.HasPrefix(c, "sleep") {
					sys.maxSleeps++
				}
			}
			sys.rebootErr = tt.rebootErr
			var console bytes.Buffer
			runHalt(sys, NewLog(&console), Cmdline{Panic: tt.panic}, why)
			checkCalls(t, sys.Calls(), tt.calls)
			lines := strings.Split(strings.TrimSpace(console.String()), "\n")
			wantStart := []string{
				"plinth-init: cannot boot: no partition named ROOT-A appeared within 30s",
				"plinth-init:   block devices seen: none",
			}
			if !reflect.DeepEqual(lines[:2], wantStart) {
				t.Errorf("console starts %q, want %q", lines[:2], wantStart)
			}
			if last := lines[len(lines)-1]; last != tt.lastLine {
				t.Errorf("last console line %q, want %q", last, tt.lastLine)
			}
		})
	}
}

// TestRunLiveMedia boots the install media: the CD holding the ISO volume PLINTH (not the
// disk, not another CD) is mounted on /media, its squashfs attached to a loop device and
// mounted as the root, and /media moved into the new root.
func TestRunLiveMedia(t *testing.T) {
	i := newInitramfs(t, "plinth.live console=ttyS0")
	class := filepath.Join(i.root, "sys/class/block")
	addBlock(t, class, "sr0", disk("sr0", 11, 0))
	addBlock(t, class, "sr1", disk("sr1", 11, 1))
	iso := func(id string) string {
		b := make([]byte, 32768+2048)
		copy(b[32768:], "\x01CD001")
		copy(b[32768+40:], id+strings.Repeat(" ", 32-len(id)))
		return string(b)
	}
	writeFile(t, filepath.Join(i.root, "dev/sr0"), iso("OTHER"))
	writeFile(t, filepath.Join(i.root, "dev/sr1"), iso(MediaVolumeID))
	cl, err := i.run()
	if err == nil || !strings.HasPrefix(err.Error(), "exec ") {
		t.Fatalf("error = %v", err)
	}
	if !cl.Live {
		t.Error("plinth.live not read")
	}
	want := []string{
		"mount -t iso9660 -o ro /dev/sr1 /media",
		"loop /media/plinth/rootfs.squashfs",
		"mount -t squashfs -o ro /dev/loop0 /newroot",
		"mount --move /dev /newroot/dev",
		"mount --move /proc /newroot/proc",
		"mount --move /sys /newroot/sys",
		"mount --move /media /newroot/media",
		"free / except /newroot",
		"chdir /newroot",
		"mount --move . /",
		"chroot .",
		"chdir /",
		`exec /usr/bin/machined ["/usr/bin/machined" "--mode" "metal"] ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"]`,
	}
	calls := i.sys.Calls()
	checkCalls(t, calls[len(calls)-len(want):], want)
	if !strings.Contains(i.console.String(), "found the install media on /dev/sr1") {
		t.Errorf("console:\n%s", i.console.String())
	}

	// No media: a clear error that names what was looked for.
	i = newInitramfs(t, "plinth.live plinth.rootwait=0")
	_, err = i.run()
	if err == nil || !strings.Contains(err.Error(), "no install media (ISO 9660 volume PLINTH) appeared within 0s") {
		t.Fatalf("error = %v", err)
	}
}
