//go:build e2e

package e2e

import (
	"os/exec"
	"strings"
	"testing"
	"time"
)

// TestTwoClustersCoexist creates two one-node clusters with different names side by side,
// checks that each answers through its own context, and that destroying one leaves the
// other working.
func TestTwoClustersCoexist(t *testing.T) {
	a := setup(t, "e2e-a", "10.5.80.0/24")
	b := setup(t, "e2e-b", "10.5.81.0/24")
	b.home = a.home // one user: both clusters in the same plinthconfig and kubeconfig
	for _, e := range []*env{a, b} {
		out := e.must(12*time.Minute, e.plinthctl, "cluster", "create", "--isolated", "--name", e.name, "--image", e.image, "--workers", "0", "--cidr", e.cidr, "--wait-timeout", "10m")
		t.Logf("cluster create %s:\n%s", e.name, out)
	}
	for _, e := range []*env{a, b} {
		if err := a.checkNodesReady([]string{"--context", e.name}, e.name+"-controlplane-1"); err != nil {
			t.Errorf("cluster %s through its context: %v", e.name, err)
		}
		if out := a.must(time.Minute, a.plinthctl, "--context", e.name, "version"); !strings.Contains(out, e.name+"-controlplane-1") {
			t.Errorf("plinthctl version on %s:\n%s", e.name, out)
		}
	}
	a.must(3*time.Minute, a.plinthctl, "cluster", "destroy", "--name", a.name)
	if out, _ := exec.Command("docker", "ps", "-a", "--filter", "label=plinth.cluster="+a.name, "-q").Output(); strings.TrimSpace(string(out)) != "" {
		t.Errorf("containers of %s left after destroy: %s", a.name, out)
	}
	if err := a.checkNodesReady([]string{"--context", b.name}, b.name+"-controlplane-1"); err != nil {
		t.Errorf("cluster %s after %s was destroyed: %v", b.name, a.name, err)
	}
}
