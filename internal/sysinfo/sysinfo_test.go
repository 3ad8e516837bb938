package sysinfo_test

import (
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"go.uber.org/goleak"

	"github.com/plinthos/plinth/internal/sysinfo"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// writeFile writes a file of the fake tree, creating its directory.
func writeFile(t *testing.T, name, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(name), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(name, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

// statLine builds a /proc/PID/stat line with all 52 fields.
func statLine(pid int, comm, state string, ppid, utime, stime, threads int, vsize, rss uint64) string {
	f := make([]string, 50) // fields 3..52
	for i := range f {
		f[i] = "0"
	}
	f[0] = state
	f[1] = strconv.Itoa(ppid)
	f[11] = strconv.Itoa(utime)
	f[12] = strconv.Itoa(stime)
	f[17] = strconv.Itoa(threads)
	f[20] = strconv.FormatUint(vsize, 10)
	f[21] = strconv.FormatUint(rss, 10)
	f[22] = "18446744073709551615" // rsslim: unlimited, must not trouble the parser
	return strconv.Itoa(pid) + " (" + comm + ") " + strings.Join(f, " ") + "\n"
}

// fakeProc builds a small proc tree.
func fakeProc(t *testing.T) string {
	t.Helper()
	root := t.TempDir()
	writeFile(t, filepath.Join(root, "1", "stat"), statLine(1, "init", "S", 0, 150, 50, 1, 1_000_000, 100))
	writeFile(t, filepath.Join(root, "1", "status"), "Name:\tinit\nState:\tS (sleeping)\nVmSize:\t    976 kB\nVmRSS:\t     800 kB\nThreads:\t1\n")
	writeFile(t, filepath.Join(root, "1", "cmdline"), "/sbin/init\x00--flag\x00value with space\x00")
	writeFile(t, filepath.Join(root, "1", "smaps_rollup"), "00400000-7fff12345000 ---p 00000000 00:00 0                          [rollup]\nRss:                 800 kB\nPss:                 612 kB\nPss_Anon:            100 kB\n")
	// comm with spaces and ") (": only the last ')' ends it.
	writeFile(t, filepath.Join(root, "42", "stat"), statLine(42, "evil) (name x", "R", 1, 1234, 66, 7, 123456789, 10))
	writeFile(t, filepath.Join(root, "42", "status"), "Name:\tevil) (name x\nThreads:\t7\n") // no VmRSS
	writeFile(t, filepath.Join(root, "42", "cmdline"), "")
	writeFile(t, filepath.Join(root, "1000", "stat"), statLine(1000, "kworker/0:1", "I", 2, 0, 3, 1, 0, 0))
	// 7 exited after the directory was listed: no files left.
	if err := os.MkdirAll(filepath.Join(root, "7"), 0o755); err != nil {
		t.Fatal(err)
	}
	// 8 exited between open and read: empty stat.
	writeFile(t, filepath.Join(root, "8", "stat"), "")
	// Not processes.
	writeFile(t, filepath.Join(root, "sys", "kernel", "hostname"), "node\n")
	writeFile(t, filepath.Join(root, "self", "mountinfo"), "")
	writeFile(t, filepath.Join(root, "meminfo"), "")
	return root
}

func TestProcessesFake(t *testing.T) {
	root := fakeProc(t)
	procs, err := sysinfo.Processes(root)
	if err != nil {
		t.Fatal(err)
	}
	page := uint64(os.Getpagesize())
	want := []sysinfo.Process{
		{PID: 1, PPID: 0, State: "S", Threads: 1, CPUSeconds: 2, ResidentBytes: 800 * 1024, ProportionalBytes: 612 * 1024, VirtualBytes: 1_000_000,
			Command: "init", Args: "/sbin/init --flag value with space"},
		{PID: 42, PPID: 1, State: "R", Threads: 7, CPUSeconds: 13, ResidentBytes: 10 * page, VirtualBytes: 123456789,
			Command: "evil) (name x", Args: ""},
		{PID: 1000, PPID: 2, State: "I", Threads: 1, CPUSeconds: 0.03, Command: "kworker/0:1"},
	}
	if len(procs) != len(want) {
		t.Fatalf("got %d processes %+v, want %d", len(procs), procs, len(want))
	}
	for i := range want {
		if procs[i] != want[i] {
			t.Errorf("process %d:\n got %+v\nwant %+v", i, procs[i], want[i])
		}
	}
}

func TestProcessesMalformedStat(t *testing.T) {
	for name, stat := range map[string]string{
		"no comm":    "5 init S 1 2 3\n",
		"few fields": "5 (init) S 1 2 3\n",
		"bad ppid":   strings.Replace(statLine(5, "x", "S", 1, 0, 0, 1, 0, 0), " S 1 ", " S one ", 1),
	} {
		t.Run(name, func(t *testing.T) {
			root := t.TempDir()
			writeFile(t, filepath.Join(root, "5", "stat"), stat)
			if _, err := sysinfo.Processes(root); err == nil || !strings.Contains(err.Error(), "pid 5") {
				t.Fatalf("err = %v, want an error naming pid 5", err)
			}
		})
	}
}

func TestProcessesMissingRoot(t *testing.T) {
	if _, err := sysinfo.Processes(filepath.Join(t.TempDir(), "nope")); err == nil {
		t.Fatal("no error for a missing proc root")
	}
}

func TestMemoryFake(t *testing.T) {
	root := t.TempDir()
	writeFile(t, filepath.Join(root, "meminfo"), `MemTotal:       16318412 kB
MemFree:          923456 kB
MemAvailable:    9876543 kB
Buffers:          123456 kB
Cached:          7654321 kB
SwapCached:            0 kB
Active:          5555555 kB
SwapTotal:       2097148 kB
SwapFree:        2000000 kB
HugePages_Total:       0
`)
	m, err := sysinfo.Memory(root)
	if err != nil {
		t.Fatal(err)
	}
	want := sysinfo.MemoryInfo{
		Total: 16318412 * 1024, Free: 923456 * 1024, Available: 9876543 * 1024, Buffers: 123456 * 1024,
		Cached: 7654321 * 1024, SwapTotal: 2097148 * 1024, SwapFree: 2000000 * 1024,
	}
	if m != want {
		t.Fatalf("got %+v\nwant %+v", m, want)
	}
}

func TestMemoryErrors(t *testing.T) {
	for name, content := range map[string]string{
		"no total":  "MemFree: 1 kB\n",
		"bad value": "MemTotal: lots kB\n",
	} {
		t.Run(name, func(t *testing.T) {
			root := t.TempDir()
			writeFile(t, filepath.Join(root, "meminfo"), content)
			if _, err := sysinfo.Memory(root); err == nil {
				t.Fatal("no error")
			}
		})
	}
	if _, err := sysinfo.Memory(t.TempDir()); err == nil {
		t.Fatal("no error for a missing meminfo")
	}
}

func TestMountsFake(t *testing.T) {
	root := t.TempDir()
	data := filepath.Join(t.TempDir(), "data dir")
	if err := os.Mkdir(data, 0o755); err != nil {
		t.Fatal(err)
	}
	escaped := strings.ReplaceAll(data, " ", `\040`)
	writeFile(t, filepath.Join(root, "self", "mountinfo"), strings.Join([]string{
		"27 1 254:0 / / rw,relatime shared:1 - ext4 /dev/vda rw",
		"22 27 0:21 / /proc rw,nosuid - proc proc rw",
		"90 27 0:50 / " + escaped + " rw master:3 propagate_from:2 - tmpfs tmp\\134fs rw",
		`91 27 0:51 /sub /gone\040away\011tab rw - fuse.sshfs user@host:/with\040space rw`,
		"",
	}, "\n"))
	mounts, err := sysinfo.Mounts(root)
	if err != nil {
		t.Fatal(err)
	}
	if len(mounts) != 4 {
		t.Fatalf("got %d mounts: %+v", len(mounts), mounts)
	}
	if m := mounts[0]; m.Source != "/dev/vda" || m.Target != "/" || m.FSType != "ext4" {
		t.Errorf("mount 0 = %+v", m)
	}
	if m := mounts[2]; m.Source != `tmp\fs` || m.Target != data || m.FSType != "tmpfs" {
		t.Errorf("mount 2 = %+v, want target %q", m, data)
	} else if m.SizeBytes == 0 {
		t.Errorf("mount 2 = %+v: statfs of an existing target gave no size", m)
	}
	if m := mounts[3]; m.Source != "user@host:/with space" || m.Target != "/gone away\ttab" ||
		m.FSType != "fuse.sshfs" || m.SizeBytes != 0 || m.AvailableBytes != 0 {
		t.Errorf("mount 3 = %+v", m)
	}
}

func TestMountsMalformed(t *testing.T) {
	root := t.TempDir()
	writeFile(t, filepath.Join(root, "self", "mountinfo"), "27 1 254:0 / / rw no separator here\n")
	if _, err := sysinfo.Mounts(root); err == nil || !strings.Contains(err.Error(), "line 1") {
		t.Fatalf("err = %v, want a malformed-line error", err)
	}
}

// The smoke tests read the real /proc of the machine running them.

func TestProcessesReal(t *testing.T) {
	procs, err := sysinfo.Processes("/proc")
	if err != nil {
		t.Fatal(err)
	}
	if !slices.IsSortedFunc(procs, func(a, b sysinfo.Process) int { return int(a.PID - b.PID) }) {
		t.Error("processes are not sorted by PID")
	}
	i := slices.IndexFunc(procs, func(p sysinfo.Process) bool { return int(p.PID) == os.Getpid() })
	if i < 0 {
		t.Fatalf("the test process %d is not among %d processes", os.Getpid(), len(procs))
	}
	self := procs[i]
	exe := filepath.Base(os.Args[0])
	if len(exe) > 15 {
		exe = exe[:15]
	}
	if self.Command != exe || int(self.PPID) != os.Getppid() || self.Threads < 1 ||
		self.ResidentBytes == 0 || self.VirtualBytes == 0 || !strings.Contains(self.Args, filepath.Base(os.Args[0])) {
		t.Errorf("self = %+v (exe %q)", self, exe)
	}
}

func TestMemoryReal(t *testing.T) {
	m, err := sysinfo.Memory("/proc")
	if err != nil {
		t.Fatal(err)
	}
	if m.Total == 0 || m.Free > m.Total || m.Available > m.Total {
		t.Fatalf("implausible memory %+v", m)
	}
}

func TestMountsReal(t *testing.T) {
	mounts, err := sysinfo.Mounts("/proc")
	if err != nil {
		t.Fatal(err)
	}
	if len(mounts) == 0 {
		t.Fatal("no mounts")
	}
	for _, m := range mounts {
		if m.Target == "" || m.FSType == "" {
			t.Errorf("incomplete mount %+v", m)
		}
		if m.Target == "/" && m.SizeBytes == 0 && m.FSType != "rootfs" {
			t.Errorf("root mount without a size: %+v", m)
		}
	}
}
