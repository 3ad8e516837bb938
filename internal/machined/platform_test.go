package machined

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/plinthos/plinth/pkg/config"
)

func TestPlatformFor(t *testing.T) {
	for name, want := range map[string]string{"": ModeLocal, "local": ModeLocal, "docker": ModeDocker, "metal": ModeMetal} {
		p, err := PlatformFor(name)
		if err != nil || p.Name() != want {
			t.Errorf("PlatformFor(%q) = %v, %v; want %s", name, p, err, want)
		}
	}
	if _, err := PlatformFor("container"); err == nil || !strings.Contains(err.Error(), "use one of local, docker, metal") {
		t.Errorf("PlatformFor(container) = %v", err)
	}
}

// TestPlatforms checks what each platform decides, which machined's core no longer
// decides by the mode's name.
func TestPlatforms(t *testing.T) {
	local, container := localPlatform{}, dockerPlatform{}
	if local.Kubernetes() || !container.Kubernetes() {
		t.Error("only the docker platform runs Kubernetes")
	}
	if local.ConfigMode() != config.ModeDocker || container.ConfigMode() != config.ModeDocker {
		t.Error("local and container nodes validate as Docker nodes")
	}
	metal := metalPlatform{}
	if metal.ConfigMode() != config.ModeMetal || metal.Kubernetes() {
		t.Error("a metal node validates as metal and runs no Kubernetes yet (OS-only image)")
	}
	var mo Options
	if err := metal.Defaults(&mo); err != nil || mo.StateDir != StateMount || mo.LogDir != "/var/log/plinth" || mo.Address != "" {
		t.Errorf("metal defaults: %+v, %v (the address comes from the configuration)", mo, err)
	}
	var o Options
	if err := local.Defaults(&o); err == nil {
		t.Error("local mode without a state directory")
	}
	o = Options{StateDir: "/tmp/x"}
	if err := local.Defaults(&o); err != nil || o.Address != "127.0.0.1" {
		t.Errorf("local defaults: %+v, %v", o, err)
	}
	sys := local.System(o)
	if sys.Files.Root != "/tmp/x" || sys.ProcessTree == 0 || len(sys.Files.Allowed) != 1 || sys.Files.Allowed[0] != "/log" {
		t.Errorf("local system %+v", sys)
	}
	sys = container.System(o)
	if sys.Files.Root != "/" || sys.ProcessTree != 0 || sys.Files.Allowed[0] != "/var/log" {
		t.Errorf("container system %+v", sys)
	}
}

// TestWritableEtc puts a tmpfs over a directory keeping its files. It needs root.
func TestWritableEtc(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to mount a tmpfs")
	}
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "os-release"), []byte("NAME=Plinth\n"), 0o444); err != nil {
		t.Fatal(err)
	}
	// The image's /etc has a tree: the CA bundle lives in ssl/certs.
	if err := os.MkdirAll(filepath.Join(dir, "ssl", "certs"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "ssl", "certs", "ca-certificates.crt"), []byte("roots\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("ssl/certs/ca-certificates.crt", filepath.Join(dir, "ca.pem")); err != nil {
		t.Fatal(err)
	}
	if err := writableEtc(dir); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = unix.Unmount(dir, unix.MNT_DETACH) })
	if data, err := os.ReadFile(filepath.Join(dir, "os-release")); err != nil || string(data) != "NAME=Plinth\n" {
		t.Errorf("os-release after the tmpfs: %q, %v", data, err)
	}
	if st, err := os.Stat(filepath.Join(dir, "os-release")); err != nil || st.Mode().Perm() != 0o444 {
		t.Errorf("os-release lost its mode: %v, %v", st, err)
	}
	if data, err := os.ReadFile(filepath.Join(dir, "ca.pem")); err != nil || string(data) != "roots\n" {
		t.Errorf("the CA bundle through its link after the tmpfs: %q, %v", data, err)
	}
	var st unix.Statfs_t
	if err := unix.Statfs(dir, &st); err != nil || st.Type != unix.TMPFS_MAGIC {
		t.Errorf("%s is not a tmpfs: %v", dir, err)
	}
	if err := os.WriteFile(filepath.Join(dir, "hostname"), []byte("node-1\n"), 0o644); err != nil {
		t.Errorf("write to the new /etc: %v", err)
	}
}

func TestParseKernelArgs(t *testing.T) {
	anchor := "sha256:" + strings.Repeat("ab", 32)
	args, err := parseKernelArgs("console=ttyS0 plinth.net=eth0:10.0.2.15/24:10.0.2.2 plinth.trust=" + anchor + " plinth.revoked=1f,a0b1 quiet")
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(args.revoked, []string{"1f", "a0b1"}) {
		t.Errorf("revoked %v", args.revoked)
	}
	if args.anchor == nil || args.anchor.String() != anchor {
		t.Errorf("anchor %v", args.anchor)
	}
	if in := args.iface; in == nil || in.Name != "eth0" || in.Addresses[0] != "10.0.2.15/24" || len(in.Routes) != 1 || in.Routes[0].Gateway != "10.0.2.2" {
		t.Errorf("interface %+v", args.iface)
	}
	if args, err := parseKernelArgs("console=ttyS0"); err != nil || args.anchor != nil || args.iface != nil {
		t.Errorf("no plinth keys: %+v, %v", args, err)
	}
	for _, bad := range []string{"plinth.net=eth0", "plinth.net=eth0:10.0.2.15", "plinth.net=eth0:10.0.2.15/24:gw", "plinth.trust=abc", "plinth.revoked=xyz"} {
		if _, err := parseKernelArgs(bad); err == nil {
			t.Errorf("%s accepted", bad)
		}
	}
}

func TestBootArgs(t *testing.T) {
	dir := t.TempDir()
	cmdline, extra := filepath.Join(dir, "cmdline"), filepath.Join(dir, "args")
	os.WriteFile(cmdline, []byte("console=ttyS0 plinth.net=eth0:10.0.0.1/24 -- init-arg\n"), 0o644)
	got, err := bootArgs(cmdline, extra)
	if err != nil || got != "console=ttyS0 plinth.net=eth0:10.0.0.1/24" {
		t.Fatalf("without firmware arguments: %q, %v", got, err)
	}
	os.WriteFile(extra, []byte("plinth.net=eth0:10.0.2.15/24\n  plinth.debug\n"), 0o644)
	got, err = bootArgs(cmdline, extra)
	if err != nil {
		t.Fatal(err)
	}
	args, err := parseKernelArgs(got)
	if err != nil || args.iface == nil || args.iface.Addresses[0] != "10.0.2.15/24" {
		t.Fatalf("the firmware's plinth.net does not win: %q %+v %v", got, args.iface, err)
	}
	if _, err := bootArgs(filepath.Join(dir, "none"), extra); err == nil {
		t.Fatal("no kernel command line, no error")
	}
}

func TestWriteHostFiles(t *testing.T) {
	dir := t.TempDir()
	if err := writeHostFiles(dir, "cp-1", "10.0.2.15"); err != nil {
		t.Fatal(err)
	}
	hosts, _ := os.ReadFile(filepath.Join(dir, "hosts"))
	name, _ := os.ReadFile(filepath.Join(dir, "hostname"))
	if !strings.Contains(string(hosts), "127.0.0.1\tlocalhost\n") || !strings.Contains(string(hosts), "10.0.2.15\tcp-1\n") || string(name) != "cp-1\n" {
		t.Fatalf("hosts:\n%s\nhostname: %q", hosts, name)
	}
}

func TestWipeEphemeral(t *testing.T) {
	root := t.TempDir()
	eph, state := filepath.Join(root, "var"), filepath.Join(root, "var", "lib", "plinth")
	for _, p := range []string{"lib/containerd/x", "lib/kubelet/pki/k", "log/plinth/machined.log", "lib/plinth/config.yaml"} {
		full := filepath.Join(eph, p)
		os.MkdirAll(filepath.Dir(full), 0o755)
		os.WriteFile(full, []byte("x"), 0o644)
	}
	o := Options{EphemeralDir: eph, StateDir: state}
	var console strings.Builder
	// No request: nothing goes.
	if err := wipeEphemeral(o, &console); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(eph, "lib/containerd/x")); err != nil {
		t.Fatal("wiped without a request")
	}
	os.WriteFile(filepath.Join(state, ephemeralWipeMarker), nil, 0o600)
	if err := wipeEphemeral(o, &console); err != nil {
		t.Fatal(err)
	}
	var left []string
	filepath.Walk(eph, func(p string, info os.FileInfo, err error) error {
		if err == nil && !info.IsDir() {
			left = append(left, strings.TrimPrefix(p, eph+"/"))
		}
		return nil
	})
	if !slices.Equal(left, []string{"lib/plinth/config.yaml"}) {
		t.Errorf("left after the wipe: %v (want only the state directory's file)", left)
	}
	if !strings.Contains(console.String(), "emptied") {
		t.Errorf("console: %q", console.String())
	}
}
