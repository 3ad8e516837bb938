//go:build e2e

package e2e

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// TestThreeControlPlanes creates a cluster of three control planes behind the load
// balancer and a worker, promotes the worker to a fourth control plane (a change that
// needs a reboot), stops the first control plane, checks that the Kubernetes API and etcd
// keep serving, starts it again and checks that it rejoins; then upgrades every node, one
// at a time, to the next node image while a client writes to the Kubernetes API.
func TestThreeControlPlanes(t *testing.T) {
	e := setup(t, "e2e-ha", "10.5.79.0/24")
	// The gateway is .1, the load balancer .2, the control planes .3 to .5, the worker .6.
	cp1, cp2 := "10.5.79.3", "10.5.79.4"
	start := time.Now()
	// flannel, not the built-in pod network that the other tests use: the CNI the
	// health check then waits for is flannel's DaemonSet, over vxlan. --timings reads every
	// node's events through the first control plane right after the create: it must know
	// the control planes that joined (they were unknown to it for up to 10 s).
	out := e.must(20*time.Minute, e.plinthctl, "cluster", "create", "--isolated", "--name", e.name, "--image", e.image,
		"--controlplanes", "3", "--workers", "1", "--cidr", e.cidr, "--wait-timeout", "15m", "--timings",
		"--config-patch", `{"cluster": {"network": {"cni": {"name": "flannel"}}}}`)
	t.Logf("cluster create took %s:\n%s", time.Since(start).Round(time.Second), out)
	e.kube("-n", "kube-system", "rollout", "status", "daemonset/kube-flannel", "--timeout", "2m")

	// Three voting etcd members, the three control planes.
	members := etcdMembers(e, cp1)
	t.Logf("etcd members: %+v", members)
	for i := 1; i <= 3; i++ {
		n := fmt.Sprintf("%s-controlplane-%d", e.name, i)
		if m, ok := members[n]; !ok || m.IsLearner {
			t.Errorf("etcd member %s missing or a learner", n)
		}
	}

	checkRebootApply(e, cp1, "10.5.79.6", e.name+"-worker-1")

	// Stop the first control plane: the one that was bootstrapped, and the first node API
	// endpoint of the context.
	if out, err := exec.Command("docker", "stop", e.name+"-controlplane-1").CombinedOutput(); err != nil {
		t.Fatalf("docker stop: %v\n%s", err, out)
	}
	// The Kubernetes API keeps serving, reads and writes, through the load balancer.
	e.eventually(3*time.Minute, "the API answers with a control plane down", func() error {
		out, err := e.run(30*time.Second, e.kubectl, "create", "configmap", "written-with-one-down", "--from-literal=k=v")
		if err != nil && !strings.Contains(out, "already exists") {
			return fmt.Errorf("%v: %s", err, out)
		}
		return nil
	})
	if out := e.kube("get", "configmap", "written-with-one-down", "-o", "jsonpath={.data.k}"); out != "v" {
		t.Errorf("configmap written with one control plane down reads %q", out)
	}
	// etcd keeps serving: plinthctl fails over to the next endpoint, and etcd there has a
	// leader and two of three members up.
	status := etcdStatus(e, cp2)
	t.Logf("etcd status with %s down: %+v", cp1, status)
	if status.Leader == "" || status.Leader == "0" {
		t.Errorf("etcd through %s has no leader: %+v", cp2, status)
	}
	e.eventually(2*time.Minute, "the API server through the load balancer is ready", func() error {
		out, err := e.run(30*time.Second, e.kubectl, "get", "--raw", "/readyz")
		if err != nil || strings.TrimSpace(out) != "ok" {
			return fmt.Errorf("%v: %s", err, out)
		}
		return nil
	})

	// Start it again: it rejoins (etcd from its data, then Kubernetes).
	if out, err := exec.Command("docker", "start", e.name+"-controlplane-1").CombinedOutput(); err != nil {
		t.Fatalf("docker start: %v\n%s", err, out)
	}
	e.eventually(6*time.Minute, "the restarted control plane's etcd follows the leader again", func() error {
		out, err := e.run(30*time.Second, e.plinthctl, "-n", cp1, "etcd", "status", "-o", "json")
		if err != nil {
			return fmt.Errorf("%v: %s", err, out)
		}
		var st etcdStatusJSON
		if err := json.Unmarshal([]byte(out), &st); err != nil {
			return fmt.Errorf("etcd status -o json: %v: %s", err, out)
		}
		if st.Leader == "" || st.Leader == "0" || st.IsLearner || len(st.Errors) > 0 {
			return fmt.Errorf("no leader, a learner or errors: %s", out)
		}
		return nil
	})
	e.must(8*time.Minute, e.plinthctl, "-n", cp1, "health", "--expect-control-planes", "4", "--expect-nodes", "4", "--wait-timeout", "7m")
	if out := e.kube("get", "configmap", "written-with-one-down", "-o", "jsonpath={.data.k}"); out != "v" {
		t.Errorf("after the rejoin the configmap reads %q", out)
	}

	// The worker became a control plane above: four etcd members lose their data.
	checkEtcdDisaster(e, []string{cp1, cp2, "10.5.79.5", "10.5.79.6"},
		[]string{e.name + "-controlplane-1", e.name + "-controlplane-2", e.name + "-controlplane-3", e.name + "-worker-1"})

	rollingUpgrade(e, []string{cp1, cp2, "10.5.79.5", "10.5.79.6"})
}

// rollingUpgrade upgrades the nodes, one at a time, to the next node image (NEXT_NODE_IMAGE,
// make image-docker-next) while a client writes to the Kubernetes API every second, and
// checks that every node runs the next version, the cluster is healthy, and no run of
// failed writes lasted longer than maxOutage.
func rollingUpgrade(e *env, nodes []string) {
	t := e.t
	next := os.Getenv("NEXT_NODE_IMAGE")
	if next == "" {
		t.Log("NEXT_NODE_IMAGE is not set: no rolling upgrade (make e2e sets it)")
		return
	}
	const maxOutage = 30 * time.Second
	stop := make(chan struct{})
	done := make(chan struct{})
	var writes, failed int
	var worst, current time.Duration
	var failedSince time.Time
	go func() {
		defer close(done)
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			case <-time.After(time.Second):
			}
			began := time.Now()
			out, err := e.run(10*time.Second, e.kubectl, "create", "configmap", fmt.Sprintf("rolling-%d", i), "--from-literal=k=v", "--request-timeout=5s")
			writes++
			if err != nil {
				failed++
				if failedSince.IsZero() {
					failedSince = began
					t.Logf("write %d failed: %v: %s", i, err, strings.TrimSpace(out))
				}
				current = time.Since(failedSince)
			} else {
				failedSince, current = time.Time{}, 0
			}
			worst = max(worst, current)
		}
	}()
	start := time.Now()
	out, err := e.run(30*time.Minute, e.plinthctl, "-n", strings.Join(nodes, ","), "upgrade", "--image", next, "--timeout", "8m")
	close(stop)
	<-done
	t.Logf("rolling upgrade to %s took %s; %d writes, %d failed, longest run of failures %s:\n%s",
		next, time.Since(start).Round(time.Second), writes, failed, worst.Round(100*time.Millisecond), out)
	if err != nil {
		t.Fatalf("rolling upgrade: %v", err)
	}
	if worst > maxOutage {
		t.Errorf("the Kubernetes API refused writes for %s in a row during the rolling upgrade (at most %s expected: a leader election)", worst, maxOutage)
	}
	version := e.must(time.Minute, e.plinthctl, "-n", strings.Join(nodes, ","), "version")
	if got := strings.Count(version, "-next"); got < len(nodes) {
		t.Errorf("%d of %d nodes run the next version:\n%s", got, len(nodes), version)
	}
	e.must(8*time.Minute, e.plinthctl, "-n", nodes[0], "health", "--expect-control-planes", "4", "--expect-nodes", "4", "--wait-timeout", "7m")
	if out, err := exec.Command("docker", "ps", "-a", "--filter", "name=-previous", "--format", "{{.Names}}").CombinedOutput(); err != nil || strings.TrimSpace(string(out)) != "" {
		t.Errorf("containers of the old image left behind: %v %s", err, out)
	}
}

// etcdStatusJSON is what the e2e reads of `plinthctl etcd status -o json` (protojson:
// 64-bit integers are strings).
type etcdStatusJSON struct {
	MemberID  string   `json:"memberId"`
	Leader    string   `json:"leader"`
	IsLearner bool     `json:"isLearner"`
	Errors    []string `json:"errors"`
}

// etcdStatus reads the etcd status of node's member.
func etcdStatus(e *env, node string) etcdStatusJSON {
	e.t.Helper()
	out := e.must(time.Minute, e.plinthctl, "-n", node, "etcd", "status", "-o", "json")
	var st etcdStatusJSON
	if err := json.Unmarshal([]byte(out), &st); err != nil {
		e.t.Fatalf("etcd status -o json: %v: %s", err, out)
	}
	return st
}

// etcdMemberJSON is what the e2e reads of a member in `plinthctl etcd members -o json`.
type etcdMemberJSON struct {
	Name      string `json:"name"`
	IsLearner bool   `json:"isLearner"`
}

// etcdMembers reads the etcd members, by name, through node.
func etcdMembers(e *env, node string) map[string]etcdMemberJSON {
	e.t.Helper()
	members, err := readEtcdMembers(e, node)
	if err != nil {
		e.t.Fatal(err)
	}
	return members
}

// readEtcdMembers reads the etcd members, by name, through node.
func readEtcdMembers(e *env, node string) (map[string]etcdMemberJSON, error) {
	out, err := e.run(time.Minute, e.plinthctl, "-n", node, "etcd", "members", "-o", "json")
	if err != nil {
		return nil, fmt.Errorf("etcd members: %v: %s", err, out)
	}
	var resp struct {
		Members []etcdMemberJSON `json:"members"`
	}
	if err := json.Unmarshal([]byte(out), &resp); err != nil {
		return nil, fmt.Errorf("etcd members -o json: %v: %s", err, out)
	}
	byName := map[string]etcdMemberJSON{}
	for _, m := range resp.Members {
		byName[m.Name] = m
	}
	return byName, nil
}
