//go:build e2e

// Package e2e brings up real clusters of Plinth nodes in Docker with the built node image
// and checks them as a user would, through plinthctl and kubectl. Run with `make e2e`
// (it builds the node image and passes PLINTHCTL, KUBECTL and NODE_IMAGE).
package e2e

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

type env struct {
	t                         testing.TB
	home                      string
	plinthctl, kubectl, image string
	name, cidr                string
}

func setup(t testing.TB, name, cidr string) *env {
	t.Helper()
	e := &env{t: t, plinthctl: os.Getenv("PLINTHCTL"), kubectl: os.Getenv("KUBECTL"), image: os.Getenv("NODE_IMAGE"), name: name, cidr: cidr}
	// make e2e sets PLINTH_REQUIRE_DOCKER: in CI a missing prerequisite fails, never skips.
	skip := t.Skip
	if os.Getenv("PLINTH_REQUIRE_DOCKER") != "" {
		skip = t.Fatal
	}
	if e.plinthctl == "" || e.kubectl == "" || e.image == "" {
		skip("PLINTHCTL, KUBECTL and NODE_IMAGE must be set: run `make e2e`")
	}
	if err := exec.Command("docker", "info").Run(); err != nil {
		skip("the Docker engine is not running")
	}
	e.home = t.TempDir()
	t.Cleanup(func() {
		if t.Failed() {
			out, _ := e.run(2*time.Minute, e.plinthctl, "cluster", "show", "--name", name)
			t.Logf("cluster at failure:\n%s", out)
			ids, _ := exec.Command("docker", "ps", "-a", "--filter", "label=plinth.cluster="+name, "--format", "{{.Names}}").Output()
			for _, n := range strings.Fields(string(ids)) {
				logs, _ := exec.Command("docker", "logs", "--tail", "60", n).CombinedOutput()
				t.Logf("docker logs %s:\n%s", n, logs)
			}
		}
		out, err := e.run(3*time.Minute, e.plinthctl, "cluster", "destroy", "--name", name)
		if err != nil {
			t.Errorf("destroy: %v\n%s", err, out)
		}
	})
	return e
}

// run runs a command with the test's HOME (so ~/.plinth and ~/.kube are the test's).
func (e *env) run(timeout time.Duration, bin string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Env = append(os.Environ(), "HOME="+e.home, "KUBECONFIG="+filepath.Join(e.home, ".kube", "config"))
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	return out.String(), err
}

func (e *env) must(timeout time.Duration, bin string, args ...string) string {
	e.t.Helper()
	out, err := e.run(timeout, bin, args...)
	if err != nil {
		e.t.Fatalf("%s %s: %v\n%s", filepath.Base(bin), strings.Join(args, " "), err, out)
	}
	return out
}

func (e *env) kube(args ...string) string {
	e.t.Helper()
	return e.must(2*time.Minute, e.kubectl, args...)
}

func (e *env) eventually(timeout time.Duration, what string, f func() error) {
	e.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		err := f()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("%s: %v", what, err)
		}
		time.Sleep(2 * time.Second)
	}
}

// echoDeployment is one replica pinned to a node (%s), which a drain of that node evicts.
const echoDeployment = `apiVersion: apps/v1
kind: Deployment
metadata:
  name: echo
spec:
  replicas: 1
  selector: {matchLabels: {app: echo}}
  template:
    metadata:
      labels: {app: echo}
    spec:
      nodeSelector: {kubernetes.io/hostname: %s}
      containers:
      - name: echo
        image: plinth.local/testbin:v1
        imagePullPolicy: Never
        args: ["serve", "-port", "8080"]
`

const workload = `apiVersion: v1
kind: Pod
metadata:
  name: web
  labels: {app: web}
spec:
  nodeSelector: {node-role.kubernetes.io/control-plane: ""}
  tolerations: [{key: node-role.kubernetes.io/control-plane, operator: Exists, effect: NoSchedule}]
  containers:
  - name: web
    image: plinth.local/testbin:v1
    imagePullPolicy: Never
    args: ["serve", "-port", "8080"]
    ports: [{containerPort: 8080}]
---
apiVersion: v1
kind: Service
metadata:
  name: web
spec:
  selector: {app: web}
  ports: [{port: 80, targetPort: 8080}]
---
apiVersion: v1
kind: Pod
metadata:
  name: client
spec:
  nodeSelector: {kubernetes.io/hostname: %s}
  restartPolicy: OnFailure
  containers:
  - name: client
    image: plinth.local/testbin:v1
    imagePullPolicy: Never
    args: ["get", "http://web.default.svc.cluster.local/"]
`

// TestDockerCluster creates a cluster of one control plane and one worker and checks what
// the Docker cluster issue asks for.
func TestDockerCluster(t *testing.T) {
	e := setup(t, "e2e", "10.5.77.0/24")
	start := time.Now()
	out := e.must(12*time.Minute, e.plinthctl, "cluster", "create", "--isolated", "--name", e.name, "--image", e.image, "--workers", "1", "--cidr", e.cidr, "--wait-timeout", "10m", "--timings")
	t.Logf("cluster create took %s:\n%s", time.Since(start).Round(time.Second), out)
	// --timings printed every node's phases, each with a time.
	for _, row := range []string{"controlplane-1 +machined up", "controlplane-1 +images imported", "controlplane-1 +static pods Ready",
		"worker-1 +kubelet registered", "worker-1 +kube-proxy pod Ready", "worker-1 +node Ready"} {
		if !regexp.MustCompile(e.name + "-" + row + ` +[0-9.]+ +[0-9.]+ +[0-9.]+\n`).MatchString(out) {
			t.Errorf("cluster create --timings printed no row %q", row)
		}
	}

	if err := e.checkNodesReady(nil, e.name+"-controlplane-1", e.name+"-worker-1"); err != nil {
		t.Fatalf("%v\n%s", err, e.kube("get", "nodes", "-o", "wide"))
	}

	// A pod on the worker resolves a Service through CoreDNS and reaches a pod on the
	// control plane: cluster DNS, kube-proxy and cross-node pod networking.
	manifest := filepath.Join(e.home, "workload.yaml")
	if err := os.WriteFile(manifest, []byte(fmt.Sprintf(workload, e.name+"-worker-1")), 0o600); err != nil {
		t.Fatal(err)
	}
	e.kube("apply", "-f", manifest)
	e.eventually(4*time.Minute, "the client pod reaches the web pod", func() error {
		out, err := e.run(time.Minute, e.kubectl, "logs", "client")
		if err != nil || !strings.Contains(out, "hello from web") {
			return fmt.Errorf("client logs: %v: %s", err, out)
		}
		return nil
	})

	// Nothing leaves the machine: the cluster was made with --isolated.
	checkNoEgress(e, e.name+"-worker-1")

	// The same log through the worker's node API.
	if out := e.must(time.Minute, e.plinthctl, "-n", "10.5.77.3", "logs", "-k", "default/client/client"); !strings.Contains(out, "hello from web") {
		t.Errorf("logs -k of the client pod:\n%s", out)
	}

	// plinthctl reaches both nodes through the control-plane endpoint.
	out = e.must(time.Minute, e.plinthctl, "-n", "10.5.77.2,10.5.77.3", "version")
	if strings.Count(out, "Platform:  docker") != 2 {
		t.Errorf("version on both nodes:\n%s", out)
	}
	if st, err := decodeServiceStatus(e.must(time.Minute, e.plinthctl, "-n", "10.5.77.3", "service", "kubelet", "-o", "json")); err != nil {
		t.Error(err)
	} else if st.State != "Running" || st.Health != "healthy" {
		t.Errorf("the worker's kubelet: state %s, health %q, message %q", st.State, st.Health, st.Message)
	}
	e.must(5*time.Minute, e.plinthctl, "-n", "10.5.77.2", "health")

	// An image built with the local Docker engine, imported over the node API, runs.
	checkImageImport(e, "10.5.77.3", e.name+"-worker-1")

	// A support bundle holds what a maintainer needs, and no secret (issue 11).
	checkSupport(e, "10.5.77.2", "10.5.77.3", "10.5.77.9", e.name+"-controlplane-1", e.name+"-worker-1")

	// The terminal dashboard over both nodes and the cluster (issue 11).
	checkDashboard(e, "10.5.77.3", e.name+"-controlplane-1", e.name+"-worker-1")

	// machined's metrics, on when the configuration says so (issue 11).
	checkMetrics(e, "10.5.77.2")

	// The security model holds on real nodes (docs/security.md).
	checkLeastPrivilege(e, "10.5.77.2", "10.5.77.3")

	// Settings applied without a reboot take effect (issue 8).
	checkNoRebootApply(e, "10.5.77.3")

	// etcd: the members are the control planes, and a snapshot passes etcdutl's check.
	if members := etcdMembers(e, "10.5.77.2"); len(members) != 1 || members[e.name+"-controlplane-1"].Name == "" {
		t.Errorf("etcd members: %+v", members)
	}
	snap := filepath.Join(e.home, "etcd.db")
	e.kube("create", "configmap", "recover-me", "--from-literal=state=before the disaster")
	e.must(2*time.Minute, e.plinthctl, "-n", "10.5.77.2", "etcd", "snapshot", snap)
	etcdutl := filepath.Join(filepath.Dir(e.kubectl), "etcdutl")
	if out, err := exec.Command(etcdutl, "snapshot", "status", snap, "-w", "table").CombinedOutput(); err != nil {
		t.Errorf("etcdutl snapshot status: %v\n%s", err, out)
	} else {
		t.Logf("etcd snapshot:\n%s", out)
	}

	// Disaster recovery from that snapshot (issue 11).
	checkEtcdRecovery(e, "10.5.77.2", e.name+"-controlplane-1", snap)

	// Scheduled snapshots, on the control plane's disk (issue 11).
	checkScheduledSnapshots(e, "10.5.77.2")

	// The node's Kubernetes containers, through the node API.
	if out := e.must(time.Minute, e.plinthctl, "-n", "10.5.77.2", "containers", "-k"); !strings.Contains(out, "kube-apiserver") || !strings.Contains(out, "RUNNING") {
		t.Errorf("containers -k on the control plane:\n%s", out)
	}

	// Their resource use: the API server holds tens of MiB and has used CPU time.
	stats := e.must(time.Minute, e.plinthctl, "-n", "10.5.77.2", "stats", "-k")
	apiserverRow := ""
	for _, line := range strings.Split(stats, "\n") {
		if strings.Contains(line, "kube-apiserver (") {
			apiserverRow = line
		}
	}
	if f := strings.Fields(apiserverRow); len(f) < 5 || !strings.HasSuffix(f[3], "Mi") || f[4] == "0.00s" {
		t.Errorf("stats -k on the control plane has no sensible kube-apiserver row:\n%s", stats)
	}

	// A second bootstrap is refused.
	out, err := e.run(time.Minute, e.plinthctl, "-n", "10.5.77.2", "bootstrap")
	if err == nil || !strings.Contains(out, "already") {
		t.Errorf("second bootstrap: %v\n%s", err, out)
	}

	// Restarting the worker's container brings it back Ready.
	if out, err := exec.Command("docker", "restart", e.name+"-worker-1").CombinedOutput(); err != nil {
		t.Fatalf("docker restart: %v\n%s", err, out)
	}
	// The worker's services come back (its kubelet runs again and is healthy)...
	e.eventually(4*time.Minute, "the worker's kubelet runs again", func() error {
		out, err := e.run(time.Minute, e.plinthctl, "-n", "10.5.77.3", "service", "kubelet", "-o", "json")
		if err != nil {
			return fmt.Errorf("%v: %s", err, out)
		}
		st, err := decodeServiceStatus(out)
		if err != nil {
			return err
		}
		return runningHealthyNeverRestarted(st)
	})
	// ...and a new pod on it runs.
	e.kube("delete", "pod", "client", "--wait=true")
	e.kube("apply", "-f", manifest)
	e.eventually(4*time.Minute, "a pod on the restarted worker reaches the web pod", func() error {
		out, err := e.run(time.Minute, e.kubectl, "logs", "client")
		if err != nil || !strings.Contains(out, "hello from web") {
			return fmt.Errorf("client logs: %v: %s", err, out)
		}
		return nil
	})
	if err := e.checkNodesReady(nil, e.name+"-controlplane-1", e.name+"-worker-1"); err != nil {
		t.Errorf("after the worker's restart: %v", err)
	}

	// Upgrading the worker to the next node image drains it first (the pod of a Deployment
	// pinned to it is evicted, and comes back once it is uncordoned after the upgrade).
	if next := os.Getenv("NEXT_NODE_IMAGE"); next != "" {
		worker := e.name + "-worker-1"
		deploy := filepath.Join(e.home, "echo.yaml")
		if err := os.WriteFile(deploy, []byte(fmt.Sprintf(echoDeployment, worker)), 0o600); err != nil {
			t.Fatal(err)
		}
		e.kube("apply", "-f", deploy)
		e.must(4*time.Minute, e.kubectl, "rollout", "status", "deployment/echo", "--timeout=3m")
		out := e.must(10*time.Minute, e.plinthctl, "-n", "10.5.77.3", "upgrade", "--image", next, "--timeout", "8m")
		t.Logf("upgrade of the worker:\n%s", out)
		for _, want := range []string{"cordoning and draining", "default/echo-", "drained (", "upgraded: " + worker, "uncordoned"} {
			if !strings.Contains(out, want) {
				t.Errorf("the worker's upgrade does not say %q", want)
			}
		}
		e.must(4*time.Minute, e.kubectl, "rollout", "status", "deployment/echo", "--timeout=3m")
		if out := e.kube("get", "node", worker, "-o", "jsonpath={.spec.unschedulable}"); out != "" {
			t.Errorf("the worker is still cordoned after its upgrade: unschedulable=%q", out)
		}
		if v := e.must(time.Minute, e.plinthctl, "-n", "10.5.77.3", "version"); !strings.Contains(v, "-next") {
			t.Errorf("the worker does not run the next version:\n%s", v)
		}
		if err := e.checkNodesReady(nil, e.name+"-controlplane-1", worker); err != nil {
			t.Errorf("after the worker's upgrade: %v", err)
		}
	}

	// Destroy leaves nothing behind.
	e.must(3*time.Minute, e.plinthctl, "cluster", "destroy", "--name", e.name)
	for _, args := range [][]string{
		{"ps", "-a", "--filter", "label=plinth.cluster=" + e.name, "-q"},
		{"network", "ls", "--filter", "label=plinth.cluster=" + e.name, "-q"},
		{"volume", "ls", "--filter", "name=" + e.name + "-", "-q"},
	} {
		if out, err := exec.Command("docker", args...).Output(); err != nil || strings.TrimSpace(string(out)) != "" {
			t.Errorf("docker %s after destroy: %v %q", strings.Join(args, " "), err, out)
		}
	}
}
