//go:build e2e

package e2e

import (
	"fmt"
	"strings"
	"time"
)

// checkEtcdRecovery: a ConfigMap that is in the snapshot is deleted; recovering from the
// snapshot is refused while etcd answers, then done with --force; the ConfigMap is back,
// the control plane's one etcd member votes, the replaced data is kept, and the cluster is
// healthy again.
func checkEtcdRecovery(e *env, cp, cpName, snapshot string) {
	e.t.Helper()
	e.kube("delete", "configmap", "recover-me")
	if out, err := e.run(time.Minute, e.kubectl, "get", "configmap", "recover-me"); err == nil {
		e.t.Fatalf("the ConfigMap is still there after its deletion:\n%s", out)
	}
	out, err := e.run(5*time.Minute, e.plinthctl, "-n", cp, "bootstrap", "--recover-from", snapshot)
	if err == nil || !strings.Contains(out, "etcd serves on this node") || !strings.Contains(out, "--force") {
		e.t.Errorf("a recovery while etcd answers, without --force: %v\n%s", err, out)
	}
	start := time.Now()
	out = e.must(10*time.Minute, e.plinthctl, "-n", cp, "bootstrap", "--recover-from", snapshot, "--force")
	if !strings.Contains(out, "new cluster from the snapshot") || !strings.Contains(out, "/var/lib/etcd.before-recovery-") {
		e.t.Errorf("bootstrap --recover-from --force:\n%s", out)
	}
	e.eventually(5*time.Minute, "the ConfigMap back from the snapshot", func() error {
		out, err := e.run(time.Minute, e.kubectl, "get", "configmap", "recover-me", "-o", "jsonpath={.data.state}")
		if err != nil || out != "before the disaster" {
			return fmt.Errorf("%v: %s", err, out)
		}
		return nil
	})
	e.t.Logf("etcd recovered from the snapshot: the ConfigMap is back %s after the command began", time.Since(start).Round(time.Second))
	if members := etcdMembers(e, cp); len(members) != 1 || members[cpName].Name == "" || members[cpName].IsLearner {
		e.t.Errorf("etcd members after the recovery: %+v", members)
	}
	if out := e.must(time.Minute, e.plinthctl, "-n", cp, "ls", "/var/lib"); !strings.Contains(out, "etcd.before-recovery-") {
		e.t.Errorf("the replaced etcd data is not kept:\n%s", out)
	}
	e.must(10*time.Minute, e.plinthctl, "-n", cp, "health")
}
