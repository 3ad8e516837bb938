//go:build e2e

package e2e

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// processArgs returns the command line and the environment of the first process of the
// node container whose command is comm, read from the host's /proc.
func processArgs(container, comm string) (cmdline, environ string, err error) {
	pids, err := nodeProcesses(container)
	if err != nil {
		return "", "", err
	}
	for _, pid := range pids {
		dir := filepath.Join("/proc", strconv.Itoa(pid))
		c, err := os.ReadFile(filepath.Join(dir, "comm"))
		if err != nil || strings.TrimSpace(string(c)) != comm {
			continue
		}
		cl, err1 := os.ReadFile(filepath.Join(dir, "cmdline"))
		env, err2 := os.ReadFile(filepath.Join(dir, "environ"))
		if err1 != nil || err2 != nil {
			continue
		}
		return strings.ReplaceAll(string(cl), "\x00", " "), strings.ReplaceAll(string(env), "\x00", "\n"), nil
	}
	return "", "", fmt.Errorf("no %s process in %s", comm, container)
}

// checkNoRebootApply applies, without a reboot, a worker configuration that adds a kubelet
// argument, a node label, an environment variable for the services, a file and a sysctl,
// and checks each on the running node: kubelet runs again with the new argument and
// variable (it read its arguments once before), the Node gets the label (kubelet applies
// --node-labels only at registration), the file is written and the sysctl set, and the node
// was not rebooted.
func checkNoRebootApply(e *env, worker string) {
	t := e.t
	t.Helper()
	container := e.name + "-worker-1"
	started := func() string {
		out, err := exec.Command("docker", "inspect", "--format", "{{.State.StartedAt}} {{.RestartCount}}", container).Output()
		if err != nil {
			t.Fatalf("docker inspect %s: %v", container, err)
		}
		return strings.TrimSpace(string(out))
	}
	bootBefore := started()
	patched := filepath.Join(e.home, "worker-applied.yaml")
	e.must(time.Minute, e.plinthctl, "machineconfig", "patch", filepath.Join(e.home, ".plinth", "clusters", e.name, "worker.yaml"),
		"--patch", `{"machine": {"kubelet": {"extraArgs": {"max-pods": "77"}, "nodeLabels": {"plinth.dev/e2e-pool": "blue"}}, "env": {"PLINTH_E2E": "applied"},
		  "files": [{"path": "/var/lib/plinth-e2e/hello.txt", "content": "hello from the config\n"}],
		  "sysctls": {"net.ipv4.ip_local_port_range": "40000 50000"}}}`, "-o", patched)
	out := e.must(time.Minute, e.plinthctl, "-n", worker, "apply-config", "-f", patched, "--mode", "no-reboot")
	if !strings.Contains(out, "applied without a reboot") {
		t.Errorf("apply-config --mode no-reboot:\n%s", out)
	}
	e.eventually(2*time.Minute, "kubelet runs with the applied argument and environment", func() error {
		cmdline, environ, err := processArgs(container, "kubelet")
		if err != nil {
			return err
		}
		if !strings.Contains(cmdline, "--max-pods=77") {
			return fmt.Errorf("kubelet's command line: %s", cmdline)
		}
		if !strings.Contains(environ, "PLINTH_E2E=applied") {
			return fmt.Errorf("kubelet's environment:\n%s", environ)
		}
		return nil
	})
	if got := e.must(time.Minute, e.plinthctl, "-n", worker, "read", "/var/lib/plinth-e2e/hello.txt"); got != "hello from the config\n" {
		t.Errorf("the file from the configuration holds %q", got)
	}
	if got := strings.Join(strings.Fields(e.must(time.Minute, e.plinthctl, "-n", worker, "read", "/proc/sys/net/ipv4/ip_local_port_range")), " "); got != "40000 50000" {
		t.Errorf("the sysctl from the configuration is %q", got)
	}
	if after := started(); after != bootBefore {
		t.Errorf("the node container restarted (a reboot): started %s, now %s", bootBefore, after)
	}
	e.eventually(3*time.Minute, "the worker is Ready with its restarted kubelet", func() error {
		out, err := e.run(time.Minute, e.kubectl, "get", "node", container, "--no-headers")
		if err != nil || !strings.Contains(out, " Ready") {
			return fmt.Errorf("%v: %s", err, out)
		}
		return nil
	})
	// kubelet applies --node-labels only when it registers the Node: the node-labels
	// service puts the new label on the Node that is already there.
	e.eventually(2*time.Minute, "the worker's Node has the label of the applied configuration", func() error {
		out, err := e.run(time.Minute, e.kubectl, "get", "node", container, "-o", "json")
		if err != nil {
			return fmt.Errorf("%v: %s", err, out)
		}
		var node struct {
			Metadata struct {
				Labels      map[string]string `json:"labels"`
				Annotations map[string]string `json:"annotations"`
			} `json:"metadata"`
		}
		if err := json.Unmarshal([]byte(out), &node); err != nil {
			return fmt.Errorf("kubectl get node %s -o json: %v", container, err)
		}
		if got, ok := node.Metadata.Labels["plinth.dev/e2e-pool"]; !ok || got != "blue" {
			return fmt.Errorf("labels %v, want plinth.dev/e2e-pool=blue; annotations %v", node.Metadata.Labels, node.Metadata.Annotations)
		}
		return nil
	})

	t.Logf("after a no-reboot apply: kubelet runs with --max-pods=77 and PLINTH_E2E=applied, the file and the sysctl are there, the Node has the label plinth.dev/e2e-pool=blue, the container did not restart")

	// A field that means nothing for a node container is refused, with its line.
	bad := filepath.Join(e.home, "worker-bad.yaml")
	e.must(time.Minute, e.plinthctl, "machineconfig", "patch", filepath.Join(e.home, ".plinth", "clusters", e.name, "worker.yaml"),
		"--patch", `{"machine": {"time": {"servers": ["time.example.org"]}}}`, "-o", bad)
	out, err := e.run(time.Minute, e.plinthctl, "validate", "--config", bad, "--mode", "docker")
	if err == nil || !strings.Contains(out, "machine.time.servers") || !strings.Contains(out, "host's clock") {
		t.Errorf("validate of time servers in Docker: %v\n%s", err, out)
	}
	out, err = e.run(time.Minute, e.plinthctl, "-n", worker, "apply-config", "-f", bad, "--mode", "no-reboot")
	if err == nil || !strings.Contains(out, "machine.time.servers") {
		t.Errorf("apply-config of time servers in Docker: %v\n%s", err, out)
	}
}

// checkRebootApply applies the control-plane configuration to a worker: a change of
// machine type, which needs a reboot. In no-reboot mode it is refused with the reason and
// the node keeps running as it was; in auto mode the node says so and reboots (its
// container starts again), comes back as a control plane and joins etcd as a voter.
func checkRebootApply(e *env, firstCP, worker, container string) {
	t := e.t
	t.Helper()
	started := func() string {
		out, err := exec.Command("docker", "inspect", "--format", "{{.State.StartedAt}}", container).Output()
		if err != nil {
			t.Fatalf("docker inspect %s: %v", container, err)
		}
		return strings.TrimSpace(string(out))
	}
	bootBefore := started()
	cp := filepath.Join(e.home, ".plinth", "clusters", e.name, "controlplane.yaml")
	out, err := e.run(time.Minute, e.plinthctl, "-n", worker, "apply-config", "-f", cp, "--mode", "no-reboot")
	if err == nil || !strings.Contains(out, "needs a reboot") || !strings.Contains(out, "machine.type changed") {
		t.Errorf("apply-config --mode no-reboot of a new machine type: %v\n%s", err, out)
	}
	if after := started(); after != bootBefore {
		t.Fatalf("a refused apply restarted the node: started %s, now %s", bootBefore, after)
	}

	out = e.must(time.Minute, e.plinthctl, "-n", worker, "apply-config", "-f", cp, "--mode", "auto")
	if !strings.Contains(out, "reboots") || !strings.Contains(out, "machine.type changed") {
		t.Errorf("apply-config --mode auto of a new machine type:\n%s", out)
	}
	e.eventually(2*time.Minute, "the node container starts again (the reboot)", func() error {
		if after := started(); after == bootBefore {
			return fmt.Errorf("still the boot of %s", bootBefore)
		}
		return nil
	})
	e.eventually(8*time.Minute, "the promoted node is a voting etcd member", func() error {
		members, err := readEtcdMembers(e, firstCP)
		switch m, ok := members[container]; {
		case err != nil:
			return err
		case !ok:
			return fmt.Errorf("%s is no member yet: %+v", container, members)
		case m.IsLearner:
			return fmt.Errorf("%s is still a learner", container)
		}
		return nil
	})
	// The image bundle was imported once, at the first boot, not again at the reboot.
	if logs := e.must(time.Minute, e.plinthctl, "-n", worker, "logs", "images"); !strings.Contains(logs, "not imported again") {
		t.Errorf("the reboot imported the image bundle again; the images service's log:\n%s", logs)
	}
	t.Logf("apply of a new machine type: refused in no-reboot mode; in auto mode the node rebooted (without importing the image bundle again) and joined etcd as a voter")
}
