//go:build integration

package integration

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// localNode is a machined in local mode started by a test.
type localNode struct {
	addr     string
	port     string
	stateDir string
	log      *bytes.Buffer
	cmd      *exec.Cmd
}

// freePort returns a TCP port free on every loopback address the test uses.
func freePort(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	_, port, _ := net.SplitHostPort(l.Addr().String())
	return port
}

// worldDir makes a temporary directory that an unprivileged apid can traverse (machined
// runs apid as nobody when the test runs as root).
func worldDir(t testing.TB) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "plinth-it-")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}

func startNode(t testing.TB, dir, name, addr, apiPort, trustdPort, config string, extra ...string) *localNode {
	t.Helper()
	bin := os.Getenv("MACHINED")
	if bin == "" {
		t.Skip("MACHINED is not set: run `make test-integration`")
	}
	n := &localNode{addr: addr, port: apiPort, stateDir: filepath.Join(dir, name), log: &bytes.Buffer{}}
	args := append([]string{"--mode", "local", "--state-dir", n.stateDir, "--config", config, "--address", addr,
		"--api-port", apiPort, "--trustd-port", trustdPort, "--hostname", name}, extra...)
	n.cmd = exec.Command(bin, args...)
	n.cmd.Stdout, n.cmd.Stderr = n.log, n.log
	if err := n.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = n.cmd.Process.Signal(os.Interrupt)
		done := make(chan struct{})
		go func() { _ = n.cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(15 * time.Second):
			_ = n.cmd.Process.Kill()
			<-done
		}
		if t.Failed() {
			t.Logf("machined %s log:\n%s", name, n.log.String())
		}
	})
	return n
}

func (n *localNode) endpoint() string { return net.JoinHostPort(n.addr, n.port) }

// cluster is a generated cluster configuration (in dir/cfg) with its control plane
// running in local mode on 127.0.0.1 and answering the admin client config.
type cluster struct {
	dir, admin, apiPort, trustdPort string
	cp                              *localNode
}

// startCluster generates a cluster named name and starts its control plane node nodeName.
func startCluster(t testing.TB, name, nodeName string) *cluster {
	t.Helper()
	c := &cluster{dir: worldDir(t), apiPort: freePort(t), trustdPort: freePort(t)}
	mustRun(t, c.dir, "gen", "config", name, "https://127.0.0.1:6443", "--output-dir", "cfg")
	c.admin = filepath.Join(c.dir, "cfg", "plinthconfig")
	c.cp = startNode(t, c.dir, nodeName, "127.0.0.1", c.apiPort, c.trustdPort, filepath.Join(c.dir, "cfg", "controlplane.yaml"))
	mustCtl(t, c.admin, "config", "endpoint", c.cp.endpoint())
	eventually(t, 60*time.Second, "control plane answers", func() error {
		out, err := ctl(t, c.admin, "version")
		if err != nil {
			return fmt.Errorf("%v: %s", err, out)
		}
		return nil
	})
	return c
}

// ctl runs plinthctl with a client config and returns its output.
func ctl(t testing.TB, cfg string, args ...string) (string, error) {
	t.Helper()
	bin := os.Getenv("PLINTHCTL")
	if bin == "" {
		t.Skip("PLINTHCTL is not set: run `make test-integration`")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, append([]string{"--plinthconfig", cfg}, args...)...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	return out.String(), err
}

func mustCtl(t testing.TB, cfg string, args ...string) string {
	t.Helper()
	out, err := ctl(t, cfg, args...)
	if err != nil {
		t.Fatalf("plinthctl %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return out
}

// eventually retries f until it returns nil or the timeout passes.
func eventually(t testing.TB, timeout time.Duration, what string, f func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		err := f()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: %v", what, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func contains(out string, want ...string) error {
	for _, w := range want {
		if !strings.Contains(out, w) {
			return fmt.Errorf("output lacks %q:\n%s", w, out)
		}
	}
	return nil
}

// TestLocalNodes runs a control-plane node and a worker in local mode and drives them
// through plinthctl over real mTLS, as the node-runtime issue's acceptance describes.
func TestLocalNodes(t *testing.T) {
	c := startCluster(t, "demo", "cp-1")
	dir, admin, cp, apiPort, trustdPort := c.dir, c.admin, c.cp, c.apiPort, c.trustdPort
	if err := contains(mustCtl(t, admin, "version"), "Hostname:  cp-1", "Platform:  local"); err != nil {
		t.Error(err)
	}
	eventually(t, 30*time.Second, "apid and trustd running and healthy", func() error {
		svcs, err := services(t, admin)
		if err != nil {
			return err
		}
		return runningAndHealthy(svcs, "apid", "trustd")
	})
	// The table shows them too.
	if err := contains(mustCtl(t, admin, "services"), "apid", "trustd", "STATE", "HEALTH"); err != nil {
		t.Error(err)
	}

	// Resources.
	if err := contains(mustCtl(t, admin, "get", "rd"), "Hostnames.network.plinth.dev", "Services.runtime.plinth.dev"); err != nil {
		t.Error(err)
	}
	// The table shows a type's own columns.
	if err := contains(mustCtl(t, admin, "get", "hostname"), "HOSTNAME", "DOMAINNAME", "cp-1"); err != nil {
		t.Error(err)
	}
	if err := contains(mustCtl(t, admin, "get", "hostname", "-o", "yaml"), "hostname: cp-1"); err != nil {
		t.Error(err)
	}
	if svcs, err := decodeServices(mustCtl(t, admin, "get", "services", "apid", "-o", "json")); err != nil {
		t.Error(err)
	} else if len(svcs) != 1 || !svcs["apid"].Spec.Running || svcs["apid"].Spec.State != "Running" {
		t.Errorf("get services apid -o json: %+v", svcs)
	}
	if err := contains(mustCtl(t, admin, "get", "mc", "-o", "yaml"), "type: controlplane"); err != nil {
		t.Error(err)
	}

	// Services, logs, events.
	if err := contains(mustCtl(t, admin, "service", "trustd", "restart"), `service "trustd" restarted`); err != nil {
		t.Error(err)
	}
	// The restart is counted and the history shows the stop, then the service running again.
	eventually(t, 10*time.Second, "trustd running again after its restart", func() error {
		st, err := decodeServiceStatus(mustCtl(t, admin, "service", "trustd", "-o", "json"))
		if err != nil {
			return err
		}
		stopping, running := -1, -1
		for i, tr := range st.History {
			switch tr.To {
			case "Stopping":
				stopping = i
			case "Running":
				running = i
			}
		}
		if st.ID != "trustd" || st.State != "Running" || st.Restarts != 1 || stopping < 0 || running < stopping {
			return fmt.Errorf("service trustd -o json: %+v", st)
		}
		return nil
	})
	if err := contains(mustCtl(t, admin, "service", "trustd"), "Stopping", "Running"); err != nil {
		t.Error(err)
	}
	if err := contains(mustCtl(t, admin, "logs", "machined", "--tail", "50"), "node is up"); err != nil {
		t.Error(err)
	}
	if err := contains(mustCtl(t, admin, "events"), "boot done", "trustd: Running"); err != nil {
		t.Error(err)
	}

	// Machine facts and files.
	if err := contains(mustCtl(t, admin, "memory"), "TOTAL", "AVAILABLE"); err != nil {
		t.Error(err)
	}
	if err := contains(mustCtl(t, admin, "mounts"), "MOUNTED ON", "/proc"); err != nil {
		t.Error(err)
	}
	if err := contains(mustCtl(t, admin, "processes"), "machined apid"); err != nil {
		t.Error(err)
	}
	if err := contains(mustCtl(t, admin, "ls", "-l", "-r", "/"), "config.yaml", "log/machined.log", "node-id"); err != nil {
		t.Error(err)
	}
	nodeID, err := os.ReadFile(filepath.Join(cp.stateDir, "node-id"))
	if err != nil {
		t.Fatal(err)
	}
	if got := mustCtl(t, admin, "cat", "/node-id"); got != string(nodeID) {
		t.Errorf("cat /node-id = %q, want %q", got, nodeID)
	}
	tarPath := filepath.Join(dir, "log.tar")
	mustCtl(t, admin, "cp", "/log", tarPath)
	if out, err := exec.Command("tar", "tf", tarPath).CombinedOutput(); err != nil || contains(string(out), "log/machined.log") != nil {
		t.Errorf("tar of /log: %v\n%s", err, out)
	}

	// Follow modes: a new event and a new log line reach running followers. Each follower
	// asks for the last line first: once that has arrived its subscription exists on the
	// node, and whatever is published after it reaches the follower. What was printed
	// until then is left out of the checks.
	follow := func(args ...string) (*syncBuffer, int) {
		buf := &syncBuffer{}
		cmd := exec.Command(os.Getenv("PLINTHCTL"), append([]string{"--plinthconfig", admin}, args...)...)
		cmd.Stdout, cmd.Stderr = buf, buf
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
		var attached int
		eventually(t, 10*time.Second, "plinthctl "+strings.Join(args, " ")+" prints the last line", func() error {
			out := buf.String()
			if !strings.Contains(out, "\n") {
				return fmt.Errorf("no line yet: %q", out)
			}
			attached = len(out)
			return nil
		})
		return buf, attached
	}
	events, eventsFrom := follow("events", "-f", "--tail", "1")
	logs, logsFrom := follow("logs", "machined", "-f", "--tail", "1")
	mustCtl(t, admin, "service", "trustd", "restart")
	eventually(t, 10*time.Second, "followed event", func() error { return contains(events.String()[eventsFrom:], "trustd: Stopping") })
	eventually(t, 10*time.Second, "followed log line", func() error { return contains(logs.String()[logsFrom:], "service=trustd") })

	// apply-config: dry run, no-reboot, staged, refused invalid.
	patched := filepath.Join(dir, "cp-patched.yaml")
	mustRun(t, dir, "machineconfig", "patch", filepath.Join("cfg", "controlplane.yaml"),
		"--patch", `{"machine": {"network": {"hostname": "cp-renamed"}}}`, "-o", patched)
	if err := contains(mustCtl(t, admin, "apply-config", "-f", patched, "--dry-run"), "+    hostname: cp-renamed", "dry run"); err != nil {
		t.Error(err)
	}
	mustCtl(t, admin, "apply-config", "-f", patched, "--mode", "no-reboot")
	eventually(t, 10*time.Second, "hostname follows the applied config", func() error {
		out, err := ctl(t, admin, "get", "hostname", "-o", "yaml")
		if err != nil {
			return err
		}
		return contains(out, "hostname: cp-renamed")
	})
	bad := filepath.Join(dir, "bad.yaml")
	if err := os.WriteFile(bad, []byte("apiVersion: plinth.dev/v1alpha1\nkind: MachineConfig\nmachine:\n  tpye: worker\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	out, err := ctl(t, admin, "apply-config", "-f", bad)
	if err == nil || contains(out, `did you mean "type"`) != nil {
		t.Errorf("an invalid config was not refused with its problem: %v\n%s", err, out)
	}
	if err := contains(mustCtl(t, admin, "get", "hostname", "-o", "yaml"), "hostname: cp-renamed"); err != nil {
		t.Errorf("the refused config changed the running one: %v", err)
	}
	if err := contains(mustCtl(t, admin, "apply-config", "-f", patched, "--mode", "staged"), "next reboot"); err != nil {
		t.Error(err)
	}

	// A reader is refused reboot with a clear message and cannot read secrets.
	reader := filepath.Join(dir, "reader.plinthconfig")
	mustCtl(t, admin, "config", "new", reader, "--roles", "os:reader")
	mustCtl(t, reader, "config", "endpoint", cp.endpoint())
	if err := contains(mustCtl(t, reader, "config", "info"), "os:reader"); err != nil {
		t.Error(err)
	}
	mustCtl(t, reader, "version")
	// In local mode a reader may read the logs of the state directory, nothing else.
	for _, args := range [][]string{{"ls", "/"}, {"ls", "/apid"}, {"cat", "/node-id"}, {"cat", "/config.yaml"}} {
		out, err = ctl(t, reader, args...)
		if err == nil || contains(out, "restricted: needs os:admin", "other roles may read only /log") != nil {
			t.Errorf("reader: %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
	if err := contains(mustCtl(t, reader, "ls", "/log"), "machined.log"); err != nil {
		t.Error(err)
	}
	mustCtl(t, reader, "cat", "/log/machined.log")
	out, err = ctl(t, reader, "reboot")
	if err == nil || contains(out, "permission denied", "Reboot needs role os:operator") != nil {
		t.Errorf("reader reboot: %v\n%s", err, out)
	}
	out, err = ctl(t, reader, "get", "mc")
	if err == nil || contains(out, "needs role os:admin") != nil {
		t.Errorf("reader reading the machine config: %v\n%s", err, out)
	}

	// A worker on another loopback address gets its certificate from trustd and is reached
	// through the control plane's apid.
	w := startNode(t, dir, "worker-1", "127.0.0.2", apiPort, freePort(t), filepath.Join(dir, "cfg", "worker.yaml"),
		"--trustd-endpoint", net.JoinHostPort("127.0.0.1", trustdPort))
	eventually(t, 30*time.Second, "worker answers through the control plane", func() error {
		out, err := ctl(t, admin, "-n", w.addr, "version")
		if err != nil {
			return fmt.Errorf("%v: %s", err, out)
		}
		return contains(out, "Hostname:  worker-1")
	})
	out = mustCtl(t, admin, "-n", "127.0.0.1,"+w.addr, "get", "hostname", "-o", "yaml")
	if err := contains(out, "hostname: cp-renamed", "hostname: worker-1"); err != nil {
		t.Error(err)
	}

	// Reboot the worker and read the previous boot's log.
	if err := contains(mustCtl(t, admin, "-n", w.addr, "reboot", "--wait", "--timeout", "60s"), "the node is back"); err != nil {
		t.Error(err)
	}
	if err := contains(mustCtl(t, admin, "-n", w.addr, "logs", "machined", "--previous"), "node is up"); err != nil {
		t.Error(err)
	}
	mustCtl(t, admin, "-n", w.addr, "shutdown", "--wait", "--timeout", "60s")
	if err := w.cmd.Wait(); err != nil {
		t.Errorf("machined did not exit cleanly after shutdown: %v", err)
	}
}

// syncBuffer is a bytes.Buffer safe for a writing process and a reading test.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
