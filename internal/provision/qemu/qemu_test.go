package qemu

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/plinthos/plinth/internal/provision"
	vm "github.com/plinthos/plinth/internal/qemu"
	"github.com/plinthos/plinth/internal/vmnet"
)

// fakeIP plays the ip command on a fake host: namespaces and links appear and go as files.
type fakeIP struct {
	t    *testing.T
	host vmnet.Host
	mu   sync.Mutex
	cmds []string
}

func (f *fakeIP) Run(_ context.Context, args ...string) ([]byte, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.cmds = append(f.cmds, strings.Join(args, " "))
	touch := func(p string) {
		if err := os.MkdirAll(p, 0o755); err != nil {
			f.t.Error(err)
		}
	}
	switch {
	case len(args) >= 3 && args[0] == "netns" && args[1] == "add":
		touch(filepath.Join(f.host.NamespaceDir, args[2]))
	case len(args) >= 3 && args[0] == "netns" && args[1] == "del":
		_ = os.RemoveAll(filepath.Join(f.host.NamespaceDir, args[2]))
		_ = os.RemoveAll(filepath.Join(f.host.SysClassNet, vmnet.HostLinkName(strings.TrimPrefix(args[2], "plinth-"))))
	case len(args) >= 4 && args[0] == "link" && args[1] == "add" && args[3] == "type":
		touch(filepath.Join(f.host.SysClassNet, args[2]))
		touch(filepath.Join(f.host.ProcSys, "net/ipv4/conf", args[2]))
	case len(args) >= 3 && args[0] == "-j":
		return []byte(`[{"dst":"default","dev":"eth0"},{"dst":"172.17.0.0/16","dev":"docker0"}]`), nil
	}
	return nil, nil
}

// testEnv is a provisioner whose host, KVM canary and emulator are fakes: the emulator is
// a process that sleeps with the VM's disk on its command line, as QEMU has it.
type testEnv struct {
	p     *Provisioner
	ip    *fakeIP
	image string
	mu    sync.Mutex
	argvs [][]string
	procs []*exec.Cmd
}

func newTestEnv(t *testing.T) *testEnv {
	t.Helper()
	if _, err := exec.LookPath("qemu-img"); err != nil {
		t.Skip("needs qemu-img for the overlays")
	}
	if _, _, err := vm.FindOVMF(); err != nil {
		t.Skip(err)
	}
	dir := t.TempDir()
	e := &testEnv{image: filepath.Join(dir, "os")}
	h := vmnet.Host{ProcSys: filepath.Join(dir, "proc"), SysClassNet: filepath.Join(dir, "net"), NamespaceDir: filepath.Join(dir, "netns")}
	e.ip = &fakeIP{t: t, host: h}
	h.Runner = e.ip
	if err := os.MkdirAll(e.image, 0o755); err != nil {
		t.Fatal(err)
	}
	for f, data := range map[string]string{ImageDisk: strings.Repeat("\x00", 1<<20), ImageKernel: "", ImageManifest: `{"version":"v1","profile":"os"}`} {
		if err := os.WriteFile(filepath.Join(e.image, f), []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	e.p = &Provisioner{
		Dir: filepath.Join(dir, "clusters"), Host: h,
		KVM:   func(context.Context, string) (bool, string) { return false, "no KVM in tests" },
		Check: func() error { return nil },
		Exec:  e.exec,
	}
	t.Cleanup(func() {
		for _, c := range e.procs {
			_ = c.Process.Kill()
			_ = c.Wait()
		}
	})
	return e
}

// exec starts a stand-in for the emulator (it "detaches" at once) and writes its pid file.
func (e *testEnv) exec(_ context.Context, argv []string, output string) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.argvs = append(e.argvs, argv)
	var disk, pidFile string
	for i, a := range argv {
		if strings.HasPrefix(a, "file=") && strings.Contains(a, ".qcow2") {
			disk = strings.Split(strings.TrimPrefix(a, "file="), ",")[0]
		}
		if a == "-pidfile" {
			pidFile = argv[i+1]
		}
	}
	cmd := exec.Command("sh", "-c", "while :; do sleep 0.1; done", "fake-qemu", disk)
	if err := cmd.Start(); err != nil {
		return err
	}
	e.procs = append(e.procs, cmd)
	if err := os.WriteFile(output, nil, 0o600); err != nil {
		return err
	}
	return os.WriteFile(pidFile, []byte(strconv.Itoa(cmd.Process.Pid)+"\n"), 0o600)
}

func (e *testEnv) request(t *testing.T, name string) provision.Request {
	cp, worker := roleConfigs(t)
	return provision.Request{Name: name, Image: e.image, ControlPlanes: 1, Workers: 1, CIDR: "10.6.0.0/24", MemoryMB: 512,
		Configs: func(n provision.NodeSpec) ([]byte, error) {
			if n.Role == provision.RoleControlPlane {
				return cp, nil
			}
			return worker, nil
		}}
}

func TestCreateShowLogsDestroy(t *testing.T) {
	e := newTestEnv(t)
	var out bytes.Buffer
	req := e.request(t, "demo")
	req.Progress = &out
	c, err := e.p.Create(t.Context(), req)
	if err != nil {
		t.Fatalf("Create: %v\n%s", err, out.String())
	}
	if !c.NoKubernetes || c.Network != "plinth-demo" || c.CIDR != "10.6.0.0/24" || len(c.Nodes) != 2 {
		t.Fatalf("cluster %+v", c)
	}
	cp, w := c.Nodes[0], c.Nodes[1]
	if cp.Name != "demo-controlplane-1" || cp.State != "running" || cp.APIEndpoint() != "10.6.0.2:50000" || cp.KubeEndpoint() != "" {
		t.Errorf("control plane %+v", cp)
	}
	if w.Name != "demo-worker-1" || w.State != "running" || w.APIEndpoint() != "10.6.0.3:50000" {
		t.Errorf("worker %+v", w)
	}
	s := out.String()
	for _, want := range []string{"creating network namespace plinth-demo", "VMs use TCG (software emulation, slow): no KVM in tests",
		"starting demo-controlplane-1 (controlplane, 10.6.0.2, 1 vCPU, 512 MiB)"} {
		if !strings.Contains(s, want) {
			t.Errorf("progress lacks %q:\n%s", want, s)
		}
	}

	// The emulators run in the cluster's namespace, on their taps, with their files.
	dir := filepath.Join(e.p.Dir, "demo", "qemu")
	if len(e.argvs) != 2 {
		t.Fatalf("%d emulators started", len(e.argvs))
	}
	argv := strings.Join(e.argvs[0], " ")
	for _, want := range []string{
		"ip netns exec plinth-demo qemu-system-x86_64 ", "accel=tcg", "-m 512", "-netdev tap,id=net0,ifname=tap1,",
		"file=" + filepath.Join(dir, "demo-controlplane-1.qcow2"), "-daemonize -pidfile " + filepath.Join(dir, "demo-controlplane-1.pid"),
		"-fw_cfg name=opt/plinth/config,file=" + filepath.Join(dir, "demo-controlplane-1.yaml"),
		"-serial file:" + filepath.Join(dir, "demo-controlplane-1.log"), "-qmp unix:" + filepath.Join(dir, "qmp-1.sock"),
	} {
		if !strings.Contains(argv, want) {
			t.Errorf("emulator command lacks %q:\n%s", want, argv)
		}
	}
	if strings.Contains(argv, "-no-reboot") || strings.Contains(argv, "user,") || strings.Contains(argv, "hostfwd") {
		t.Errorf("emulator command: %s", argv)
	}
	if !strings.Contains(strings.Join(e.argvs[1], " "), "ifname=tap2,") {
		t.Errorf("the worker's tap: %s", e.argvs[1])
	}
	for _, f := range []string{"cluster.json", "demo-controlplane-1.qcow2", "demo-controlplane-1-vars.fd", "demo-worker-1.yaml"} {
		if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
			t.Error(err)
		}
	}
	if st, err := os.Stat(dir); err != nil || st.Mode().Perm() != 0o700 {
		t.Errorf("the cluster's directory: %v %v", st, err)
	}
	if st, err := os.Stat(filepath.Join(dir, "demo-worker-1.yaml")); err != nil || st.Mode().Perm() != 0o600 {
		t.Errorf("the worker's configuration (it holds keys): %v %v", st, err)
	}
	cfg, _ := os.ReadFile(filepath.Join(dir, "demo-worker-1.yaml"))
	if !strings.Contains(string(cfg), "10.6.0.3/24") || !strings.Contains(string(cfg), "hostname: demo-worker-1") {
		t.Errorf("the worker's configuration:\n%s", cfg)
	}

	// Another process finds it all from the record.
	other := &Provisioner{Dir: e.p.Dir, Host: e.p.Host}
	if names, err := other.List(t.Context()); err != nil || !slices.Equal(names, []string{"demo"}) {
		t.Errorf("List: %v %v", names, err)
	}
	shown, err := other.Show(t.Context(), "demo")
	if err != nil || len(shown.Nodes) != 2 || shown.Nodes[1].State != "running" || !strings.HasPrefix(shown.Nodes[1].Container, "pid ") {
		t.Errorf("Show: %+v %v", shown, err)
	}
	if err := os.WriteFile(filepath.Join(dir, "demo-worker-1.log"), []byte("\x1b[2Jfirmware\r\nmachined: node is up\r\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if logs, err := other.Logs(t.Context(), "demo-worker-1", 1); err != nil || logs != "machined: node is up\n" {
		t.Errorf("Logs: %q %v", logs, err)
	}
	if _, err := other.Logs(t.Context(), "nobody-worker-1", 1); !errors.Is(err, provision.ErrNotFound) {
		t.Errorf("Logs of an unknown node: %v", err)
	}

	// A second cluster of that name is refused before anything is made.
	e.ip.cmds = nil
	if _, err := e.p.Create(t.Context(), e.request(t, "demo")); err == nil || !strings.Contains(err.Error(), "exists already") {
		t.Errorf("a second demo: %v", err)
	}

	// Destroy stops the emulators and removes the network and the files.
	out.Reset()
	if err := other.Destroy(t.Context(), "demo", &out); err != nil {
		t.Fatalf("Destroy: %v\n%s", err, out.String())
	}
	s = out.String()
	for _, want := range []string{"stopped VM demo-controlplane-1 (pid", "stopped VM demo-worker-1", "removed network namespace plinth-demo", "removed " + dir} {
		if !strings.Contains(s, want) {
			t.Errorf("destroy's progress lacks %q:\n%s", want, s)
		}
	}
	for _, pid := range []int{e.procs[0].Process.Pid, e.procs[1].Process.Pid} {
		if isEmulator(pid, "fake-qemu") {
			t.Errorf("emulator %d still runs", pid)
		}
	}
	if _, err := os.Stat(filepath.Join(e.p.Dir, "demo")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the cluster's directory is left: %v", err)
	}
	if names, _ := other.List(t.Context()); len(names) != 0 {
		t.Errorf("List after destroy: %v", names)
	}
	if _, err := other.Show(t.Context(), "demo"); !errors.Is(err, provision.ErrNotFound) {
		t.Errorf("Show after destroy: %v", err)
	}
	// A directory without a record (a create that failed early) is listed, shown without
	// nodes, and removed.
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	if names, _ := other.List(t.Context()); !slices.Equal(names, []string{"demo"}) {
		t.Errorf("List of a half-made cluster: %v", names)
	}
	if c, err := other.Show(t.Context(), "demo"); err != nil || len(c.Nodes) != 0 {
		t.Errorf("Show of a half-made cluster: %+v %v", c, err)
	}
	out.Reset()
	if err := other.Destroy(t.Context(), "demo", &out); err != nil || !strings.Contains(out.String(), "removed "+dir) {
		t.Errorf("Destroy of a half-made cluster: %v\n%s", err, out.String())
	}
	// Again: nothing is left, and that is no error.
	out.Reset()
	if err := other.Destroy(t.Context(), "demo", &out); err != nil || !strings.Contains(out.String(), "nothing of QEMU cluster \"demo\" is left") {
		t.Errorf("second Destroy: %v\n%s", err, out.String())
	}
}

// TestCreateKubernetesImage: an image with Kubernetes gives a cluster that offers it (the
// Kubernetes API at the control plane's address) and nodes with more memory.
func TestCreateKubernetesImage(t *testing.T) {
	e := newTestEnv(t)
	if err := os.WriteFile(filepath.Join(e.image, ImageManifest), []byte(`{"version":"v1","profile":"k8s"}`), 0o644); err != nil {
		t.Fatal(err)
	}
	req := e.request(t, "kube")
	req.MemoryMB = 0
	c, err := e.p.Create(t.Context(), req)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = e.p.Destroy(context.WithoutCancel(t.Context()), "kube", nil) })
	if c.NoKubernetes || c.KubeEndpoint() != "10.6.0.2:6443" || c.Nodes[1].KubeEndpoint() != "" {
		t.Errorf("cluster %+v", c)
	}
	for _, argv := range e.argvs {
		if !strings.Contains(strings.Join(argv, " "), " -m 3072 ") {
			t.Errorf("a Kubernetes node's memory: %s", argv)
		}
	}
}

func TestCreateFailureRemovesEverything(t *testing.T) {
	e := newTestEnv(t)
	started := 0
	e.p.Exec = func(ctx context.Context, argv []string, output string) error {
		if started++; started == 2 {
			_ = os.WriteFile(output, []byte("qemu-system-x86_64: could not open tap2\n"), 0o600)
			return errors.New("exit status 1")
		}
		return e.exec(ctx, argv, output)
	}
	var out bytes.Buffer
	req := e.request(t, "demo")
	req.Progress = &out
	_, err := e.p.Create(t.Context(), req)
	if err == nil || !strings.Contains(err.Error(), "start node demo-worker-1: exit status 1: qemu-system-x86_64: could not open tap2") {
		t.Fatalf("Create: %v", err)
	}
	if !strings.Contains(out.String(), "stopped VM demo-controlplane-1") || !strings.Contains(out.String(), "removed network namespace") {
		t.Errorf("progress:\n%s", out.String())
	}
	if isEmulator(e.procs[0].Process.Pid, "fake-qemu") {
		t.Error("the first VM runs on")
	}
	if _, err := os.Stat(filepath.Join(e.p.Dir, "demo")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the cluster's directory is left: %v", err)
	}
}

func TestPreflightRefusals(t *testing.T) {
	e := newTestEnv(t)
	for _, tc := range []struct {
		name   string
		mutate func(*provision.Request, *Provisioner)
		want   string
	}{
		{"several control planes", func(r *provision.Request, _ *Provisioner) { r.ControlPlanes = 3 }, "one control plane"},
		{"no image", func(r *provision.Request, _ *Provisioner) { r.Image = filepath.Join(r.Image, "missing") }, "make image-os"},
		{"host check", func(_ *provision.Request, p *Provisioner) { p.Check = func() error { return errors.New("needs root") } }, "needs root"},
		{"overlapping network", func(r *provision.Request, _ *Provisioner) { r.CIDR = "172.17.5.0/24" }, "overlaps the host's route to 172.17.0.0/16 on docker0"},
		{"namespace taken", func(_ *provision.Request, p *Provisioner) {
			_ = os.MkdirAll(filepath.Join(p.Host.NamespaceDir, "plinth-demo"), 0o755)
		}, "network namespace plinth-demo"},
		{"bad name", func(r *provision.Request, _ *Provisioner) { r.Name = "Demo" }, "not valid"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req := e.request(t, "demo")
			p := *e.p
			p.Host.NamespaceDir = t.TempDir()
			tc.mutate(&req, &p)
			err := p.Preflight(t.Context(), req)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Preflight: %v, want %q", err, tc.want)
			}
		})
	}
	if len(e.argvs) != 0 {
		t.Error("a refused create started emulators")
	}
}

// TestMain lets the test binary stand in for an emulator that ignores SIGTERM.
func TestMain(m *testing.M) {
	if os.Getenv("FAKE_QEMU_IGNORE_TERM") == "1" {
		signal.Ignore(syscall.SIGTERM)
		fmt.Println("ready") // SIGTERM is ignored from now on
		time.Sleep(time.Minute)
		os.Exit(0)
	}
	os.Exit(m.Run())
}

func TestStopEmulator(t *testing.T) {
	old := stopGrace
	stopGrace = 500 * time.Millisecond
	t.Cleanup(func() { stopGrace = old })
	marker := filepath.Join(t.TempDir(), "node.qcow2")
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		cmd  *exec.Cmd
		min  time.Duration
	}{
		{"ends on SIGTERM", exec.Command("sh", "-c", "echo ready; while :; do sleep 0.1; done", "fake-qemu", marker), 0},
		{"ignores SIGTERM", exec.Command(self, "-test.run=NONE", marker), stopGrace},
	} {
		if tc.cmd.Path == self {
			tc.cmd.Env = append(os.Environ(), "FAKE_QEMU_IGNORE_TERM=1")
		}
		stdout, err := tc.cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := tc.cmd.Start(); err != nil {
			t.Fatal(err)
		}
		pid := tc.cmd.Process.Pid
		// The stand-in says when it is set up (it ignores SIGTERM): a fixed wait was too
		// short for the test binary's start on a busy machine.
		ready := make(chan error, 1)
		go func() {
			line, err := bufio.NewReader(stdout).ReadString('\n')
			if err == nil && line != "ready\n" {
				err = fmt.Errorf("the stand-in said %q", line)
			}
			ready <- err
		}()
		select {
		case err := <-ready:
			if err != nil {
				t.Fatalf("%s: %v", tc.name, err)
			}
		case <-time.After(time.Minute):
			t.Fatalf("%s: the stand-in did not say it was ready within a minute", tc.name)
		}
		if !isEmulator(pid, marker) || isEmulator(pid, "/other/disk.qcow2") || isEmulator(0, marker) {
			t.Fatal("isEmulator does not tell the emulator by its disk")
		}
		start := time.Now()
		stopped, err := stopEmulator(t.Context(), pid, marker)
		if err != nil || !stopped || time.Since(start) < tc.min {
			t.Errorf("%s: stopped %v after %s, %v", tc.name, stopped, time.Since(start), err)
		}
		_ = tc.cmd.Wait()
		if stopped, err := stopEmulator(t.Context(), pid, marker); stopped || err != nil {
			t.Errorf("%s: a second stop: %v %v", tc.name, stopped, err)
		}
	}
}
