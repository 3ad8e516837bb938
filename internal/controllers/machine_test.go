package controllers

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/plinthos/plinth/pkg/config"
)

// TestWriteMachineFiles is the regression test of machine.files being accepted and
// ignored: they are written, idempotently, with their mode, and the containerd drop-ins
// among them are returned for containerd's generation.
func TestWriteMachineFiles(t *testing.T) {
	root := t.TempDir()
	pre := filepath.Join(root, "var/lib/keep.txt")
	if err := os.MkdirAll(filepath.Dir(pre), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(pre, []byte("mine\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	files := []config.File{
		{Path: "/var/lib/app/hello.txt", Content: "hello\n", Permissions: 0o640},
		{Path: "/var/lib/keep.txt", Content: "theirs\n"},
		{Path: "/var/lib/app/log.txt", Content: "line\n", Op: "append"},
		{Path: "/etc/cri/conf.d/20-runtime.toml", Content: "# drop-in\n", Op: "overwrite"},
	}
	for range 2 { // the second run (a reboot, a change) changes nothing
		cri, err := writeMachineFiles(root, files, "/etc/cri/conf.d/")
		if err != nil {
			t.Fatal(err)
		}
		if len(cri) != 2 || string(cri[0]) != "/etc/cri/conf.d/20-runtime.toml" || string(cri[1]) != "# drop-in\n" {
			t.Errorf("containerd drop-ins %q", cri)
		}
	}
	for path, want := range map[string]string{"var/lib/app/hello.txt": "hello\n", "var/lib/keep.txt": "mine\n",
		"var/lib/app/log.txt": "line\n", "etc/cri/conf.d/20-runtime.toml": "# drop-in\n"} {
		got, err := os.ReadFile(filepath.Join(root, path))
		if err != nil || string(got) != want {
			t.Errorf("%s = %q, %v; want %q", path, got, err, want)
		}
	}
	if st, err := os.Stat(filepath.Join(root, "var/lib/app/hello.txt")); err != nil || st.Mode().Perm() != 0o640 {
		t.Errorf("mode of hello.txt: %v %v", st.Mode(), err)
	}
}

func TestSetSysctl(t *testing.T) {
	procSys := t.TempDir()
	p := filepath.Join(procSys, "net/ipv4/ip_local_port_range")
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte("32768\t60999\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := setSysctl(procSys, "net.ipv4.ip_local_port_range", "40000 50000"); err != nil {
		t.Fatal(err)
	}
	if got, _ := os.ReadFile(p); string(got) != "40000 50000" {
		t.Errorf("sysctl file holds %q", got)
	}
	if err := setSysctl(procSys, "vm.nonexistent", "1"); err == nil {
		t.Error("a sysctl that does not exist was set")
	}
	if err := setSysctl(procSys, "net/../../etc", "1"); err == nil {
		t.Error("a path was taken for a sysctl name")
	}
}

// TestMachineFilesStayInTheirTree: a symbolic link inside /var (a pod's hostPath can make
// one) does not lead a write out of /var; a change of permissions alone applies; a
// containerd drop-in the configuration no longer lists is removed.
func TestMachineFilesStayInTheirTree(t *testing.T) {
	root := t.TempDir()
	outside := filepath.Join(root, "etc/secret")
	for _, d := range []string{filepath.Join(root, "var/lib"), filepath.Dir(outside)} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Symlink("/etc", filepath.Join(root, "var/lib/escape")); err != nil {
		t.Fatal(err)
	}
	if _, err := writeMachineFiles(root, []config.File{{Path: "/var/lib/escape/secret", Content: "x", Op: "overwrite"}}, "/etc/cri/conf.d/"); err == nil {
		t.Error("a write through a link out of /var succeeded")
	}
	if _, err := os.Stat(outside); err == nil {
		t.Error("a file was written outside /var")
	}

	f := config.File{Path: "/var/lib/app.conf", Content: "a\n", Permissions: 0o644}
	if _, err := writeMachineFiles(root, []config.File{f}, "/etc/cri/conf.d/"); err != nil {
		t.Fatal(err)
	}
	f.Permissions = 0o600
	if _, err := writeMachineFiles(root, []config.File{f}, "/etc/cri/conf.d/"); err != nil {
		t.Fatal(err)
	}
	if st, err := os.Stat(filepath.Join(root, "var/lib/app.conf")); err != nil || st.Mode().Perm() != 0o600 {
		t.Errorf("mode after a permissions-only change: %v %v", st.Mode(), err)
	}

	dropIn := config.File{Path: "/etc/cri/conf.d/10-old.toml", Content: "# old\n"}
	if _, err := writeMachineFiles(root, []config.File{dropIn}, "/etc/cri/conf.d/"); err != nil {
		t.Fatal(err)
	}
	if _, err := writeMachineFiles(root, nil, "/etc/cri/conf.d/"); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(root, "etc/cri/conf.d/10-old.toml")); err == nil {
		t.Error("a drop-in no longer in the configuration is still there")
	}
}

// TestMachineFilesController: machine.files are written at boot and again after a change,
// by the controller that platforms without Kubernetes run.
func TestMachineFilesController(t *testing.T) {
	root := t.TempDir()
	cfg := generated(t).ControlPlane
	cfg.Machine.Files = []config.File{{Path: "/var/lib/app/a.txt", Content: "one\n", Op: "overwrite"}}
	h := start(t, cfg, &MachineFiles{Root: root})
	waitFile := func(path, want string) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for {
			got, err := os.ReadFile(filepath.Join(root, path))
			if err == nil && string(got) == want {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s = %q, %v; want %q", path, got, err, want)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	waitFile("var/lib/app/a.txt", "one\n")
	next := *cfg
	next.Machine.Files = []config.File{{Path: "/var/lib/app/a.txt", Content: "two\n", Op: "overwrite"}}
	h.config.set(&next)
	waitFile("var/lib/app/a.txt", "two\n")
}

// TestSysctlsDefaultsThenConfig: the platform's defaults are set, and machine.sysctls
// overrides one of them.
func TestSysctlsDefaultsThenConfig(t *testing.T) {
	procSys := t.TempDir()
	for _, p := range []string{"kernel/kptr_restrict", "kernel/dmesg_restrict"} {
		if err := os.MkdirAll(filepath.Join(procSys, filepath.Dir(p)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(procSys, p), []byte("0\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	cfg := generated(t).ControlPlane
	cfg.Machine.Sysctls = map[string]string{"kernel.kptr_restrict": "2"}
	start(t, cfg, &Sysctls{ProcSys: procSys, Defaults: map[string]string{"kernel.kptr_restrict": "1", "kernel.dmesg_restrict": "1"}})
	deadline := time.Now().Add(10 * time.Second)
	for {
		kptr, _ := os.ReadFile(filepath.Join(procSys, "kernel/kptr_restrict"))
		dmesg, _ := os.ReadFile(filepath.Join(procSys, "kernel/dmesg_restrict"))
		if string(kptr) == "2" && string(dmesg) == "1" {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("kptr_restrict %q (want the config's 2), dmesg_restrict %q (want the default 1)", kptr, dmesg)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
