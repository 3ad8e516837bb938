//go:build e2e

package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

// checkEtcdDisaster destroys every control plane's etcd data and recovers the cluster from
// a snapshot taken before: the control planes that lost their data must not start etcd on
// an empty directory (a bootstrapped node would make a new, empty cluster), the recovery on
// one brings the snapshot's state back, and the others join it by themselves until all are
// voting members again. It needs root (it wipes the data in the nodes' Docker volumes).
// cps are the control planes' addresses, names their containers (and node names).
func checkEtcdDisaster(e *env, cps, names []string) {
	t := e.t
	t.Helper()
	if os.Geteuid() != 0 {
		t.Fatal("the etcd disaster check needs root: it wipes etcd's data in the nodes' Docker volumes")
	}
	e.kube("create", "configmap", "disaster", "--from-literal=state=before the disaster")
	snap := filepath.Join(t.TempDir(), "before.db")
	e.must(2*time.Minute, e.plinthctl, "-n", cps[0], "etcd", "snapshot", snap)
	e.kube("create", "configmap", "after-the-snapshot", "--from-literal=state=lost with etcd")

	// The disaster: every control plane powers off and loses etcd's data.
	if out, err := exec.Command("docker", append([]string{"stop"}, names...)...).CombinedOutput(); err != nil {
		t.Fatalf("docker stop: %v\n%s", err, out)
	}
	for _, n := range names {
		out, err := exec.Command("docker", "volume", "inspect", "-f", "{{.Mountpoint}}", n+"-var").CombinedOutput()
		if err != nil {
			t.Fatalf("docker volume inspect: %v\n%s", err, out)
		}
		data := filepath.Join(strings.TrimSpace(string(out)), "lib", "etcd")
		if _, err := os.Stat(filepath.Join(data, "member")); err != nil {
			t.Fatalf("%s has no etcd data at %s to destroy: %v", n, data, err)
		}
		if err := os.RemoveAll(data); err != nil {
			t.Fatal(err)
		}
	}
	if out, err := exec.Command("docker", append([]string{"start"}, names...)...).CombinedOutput(); err != nil {
		t.Fatalf("docker start: %v\n%s", err, out)
	}

	// No control plane starts etcd on the empty directory: each knows its data is lost.
	for _, cp := range cps {
		e.eventually(3*time.Minute, cp+" knows its etcd data is lost", func() error {
			out, err := e.run(30*time.Second, e.plinthctl, "-n", cp, "get", "etcdstate", "-o", "yaml")
			if err != nil || !strings.Contains(out, "role: lost") {
				return fmt.Errorf("%v: %s", err, out)
			}
			return nil
		})
	}
	// Give kubelet time to start anything it would (etcd would make a new cluster in
	// seconds); the Kubernetes API must stay down, not come back empty.
	time.Sleep(20 * time.Second)
	if out, err := e.run(30*time.Second, e.kubectl, "get", "configmap", "disaster", "--request-timeout=10s"); err == nil {
		t.Fatalf("the Kubernetes API answers although every etcd member lost its data:\n%s", out)
	}
	for _, cp := range cps {
		if out, err := e.run(time.Minute, e.plinthctl, "-n", cp, "ls", "/var/lib/etcd"); err == nil && strings.Contains(out, "member") {
			t.Fatalf("%s started etcd on an empty data directory:\n%s", cp, out)
		}
	}

	// Recover on one: etcd does not serve anywhere, so no --force is needed.
	start := time.Now()
	out := e.must(10*time.Minute, e.plinthctl, "-n", cps[0], "bootstrap", "--recover-from", snap)
	t.Logf("bootstrap --recover-from: %s", strings.TrimSpace(out))
	e.eventually(5*time.Minute, "the snapshot's ConfigMap back", func() error {
		out, err := e.run(time.Minute, e.kubectl, "get", "configmap", "disaster", "-o", "jsonpath={.data.state}")
		if err != nil || out != "before the disaster" {
			return fmt.Errorf("%v: %s", err, out)
		}
		return nil
	})
	t.Logf("the ConfigMap is back %s after the recovery began", time.Since(start).Round(time.Second))
	if out, err := e.run(time.Minute, e.kubectl, "get", "configmap", "after-the-snapshot"); err == nil {
		t.Errorf("a ConfigMap written after the snapshot is there after the recovery:\n%s", out)
	}

	// The other control planes join the recovered cluster by themselves.
	e.eventually(10*time.Minute, "every control plane a voting etcd member again", func() error {
		members, err := readEtcdMembers(e, cps[0])
		if err != nil {
			return err
		}
		if len(members) != len(names) {
			return fmt.Errorf("%d members: %+v", len(members), members)
		}
		for _, n := range names {
			if m, ok := members[n]; !ok || m.IsLearner {
				return fmt.Errorf("%s missing or a learner: %+v", n, members)
			}
		}
		return nil
	})
	t.Logf("every control plane votes again %s after the recovery began", time.Since(start).Round(time.Second))
	e.must(10*time.Minute, e.plinthctl, "-n", cps[0], "health", "--expect-control-planes", fmt.Sprint(len(cps)), "--wait-timeout", "8m")
}
