//go:build e2e

package e2e

import (
	"fmt"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// TestThreeControlPlanes creates a cluster of three control planes behind the load
// balancer, stops one, checks that the Kubernetes API and etcd keep serving, starts it
// again and checks that it rejoins.
func TestThreeControlPlanes(t *testing.T) {
	e := setup(t, "e2e-ha", "10.5.79.0/24")
	// The gateway is .1, the load balancer .2, the control planes .3 to .5.
	cp1, cp2 := "10.5.79.3", "10.5.79.4"
	start := time.Now()
	out := e.must(20*time.Minute, e.plinthctl, "cluster", "create", "--name", e.name, "--image", e.image,
		"--controlplanes", "3", "--workers", "0", "--cidr", e.cidr, "--wait-timeout", "15m")
	t.Logf("cluster create took %s:\n%s", time.Since(start).Round(time.Second), out)

	// Three voting etcd members, the three control planes.
	members := e.must(time.Minute, e.plinthctl, "etcd", "members")
	t.Logf("etcd members:\n%s", members)
	for i := 1; i <= 3; i++ {
		if n := fmt.Sprintf("%s-controlplane-%d", e.name, i); !strings.Contains(members, n) {
			t.Errorf("etcd member %s missing", n)
		}
	}
	if strings.Contains(members, "true") {
		t.Errorf("a learner is left:\n%s", members)
	}

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
	status := e.must(time.Minute, e.plinthctl, "-n", cp2, "etcd", "status")
	t.Logf("etcd status with %s down:\n%s", cp1, status)
	if lines := strings.Split(strings.TrimSpace(status), "\n"); len(lines) != 2 || len(strings.Fields(lines[1])) < 3 ||
		strings.Fields(lines[1])[2] == "0" || strings.Fields(lines[1])[2] == "-" {
		t.Errorf("etcd through %s has no leader:\n%s", cp2, status)
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
		out, err := e.run(30*time.Second, e.plinthctl, "-n", cp1, "etcd", "status")
		if err != nil {
			return fmt.Errorf("%v: %s", err, out)
		}
		// NODE MEMBER LEADER DB-SIZE IN-USE REVISION RAFT-TERM RAFT-INDEX APPLIED LEARNER VERSION ERRORS
		lines := strings.Split(strings.TrimSpace(out), "\n")
		if f := strings.Fields(lines[len(lines)-1]); len(f) < 12 || f[2] == "0" || f[9] != "false" || f[11] != "-" {
			return fmt.Errorf("no leader, a learner or errors: %s", out)
		}
		return nil
	})
	e.must(8*time.Minute, e.plinthctl, "-n", cp1, "health", "--expect-control-planes", "3", "--expect-nodes", "3", "--wait-timeout", "7m")
	if out := e.kube("get", "configmap", "written-with-one-down", "-o", "jsonpath={.data.k}"); out != "v" {
		t.Errorf("after the rejoin the configmap reads %q", out)
	}
}
