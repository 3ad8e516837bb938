//go:build e2e

package e2e

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestUpgradeKubernetes creates a cluster of the previous Kubernetes minor release (the node
// image PREV_NODE_IMAGE holds its images besides the bundled ones: make image-docker-k8s-prev)
// and moves it to the bundled release K8S with plinthctl upgrade-k8s. make e2e-k8s-upgrade
// runs it; plain make e2e, which does not build the previous release, skips it.
func TestUpgradeKubernetes(t *testing.T) {
	prevImage, prev, cur := os.Getenv("PREV_NODE_IMAGE"), os.Getenv("PREV_K8S"), os.Getenv("K8S")
	if prevImage == "" || prev == "" || cur == "" {
		t.Skip("PREV_NODE_IMAGE, PREV_K8S and K8S are not set: run make e2e-k8s-upgrade")
	}
	e := setup(t, "e2e-k8s", "10.5.82.0/24")
	cp, worker := "10.5.82.2", "10.5.82.3"
	start := time.Now()
	out := e.must(15*time.Minute, e.plinthctl, "cluster", "create", "--isolated", "--name", e.name, "--image", prevImage, "--kubernetes-version", prev,
		"--workers", "1", "--cidr", e.cidr, "--wait-timeout", "12m")
	t.Logf("cluster create (Kubernetes %s) took %s:\n%s", prev, time.Since(start).Round(time.Second), out)
	checkKubernetesVersion(e, prev)

	// A workload on the worker, which must keep running through the upgrade.
	manifest := filepath.Join(e.home, "echo.yaml")
	if err := os.WriteFile(manifest, []byte(fmt.Sprintf(echoDeployment, e.name+"-worker-1")), 0o600); err != nil {
		t.Fatal(err)
	}
	e.kube("apply", "-f", manifest)
	e.kube("rollout", "status", "deployment/echo", "--timeout", "3m")

	// Refused before anything changes: two minor versions at once, and a version whose
	// images the nodes do not hold.
	pv := strings.Split(strings.TrimPrefix(prev, "v"), ".")
	for _, tc := range []struct{ to, want string }{
		{to: fmt.Sprintf("v%s.%d.0", pv[0], atoi(t, pv[1])+2), want: "one minor version at a time"},
		{to: cur[:strings.LastIndex(cur, ".")] + ".99", want: "does not hold plinth.local/kube-apiserver:" + cur[:strings.LastIndex(cur, ".")] + ".99"},
	} {
		out, err := e.run(3*time.Minute, e.plinthctl, "-n", cp, "upgrade-k8s", "--to", tc.to)
		if err == nil || !strings.Contains(out, tc.want) {
			t.Errorf("upgrade-k8s --to %s: %v; want a refusal with %q:\n%s", tc.to, err, tc.want, out)
		}
	}
	out = e.must(3*time.Minute, e.plinthctl, "-n", cp, "upgrade-k8s", "--to", cur, "--dry-run")
	t.Logf("dry run:\n%s", out)
	for _, want := range []string{"kube-apiserver on " + e.name + "-controlplane-1", "kube-proxy on every node", "kubelet on " + e.name + "-worker-1",
		"every node holds the images it needs", "dry run: 6 steps to do; nothing was changed"} {
		if !strings.Contains(out, want) {
			t.Errorf("the dry run does not say %q", want)
		}
	}
	checkKubernetesVersion(e, prev)

	// A step that fails is put back: here the new API server cannot be ready within 3 s, so
	// the first step fails, the node gets the old image again, and nothing after it moves.
	out, err := e.run(15*time.Minute, e.plinthctl, "-n", cp, "upgrade-k8s", "--to", cur, "--timeout", "3s")
	t.Logf("upgrade-k8s --timeout 3s:\n%s", out)
	if err == nil || !strings.Contains(out, "kube-apiserver on "+e.name+"-controlplane-1 failed") ||
		!strings.Contains(out, "runs plinth.local/kube-apiserver:"+prev+" again, and the steps after it were not started") {
		t.Errorf("upgrade-k8s with a step that cannot succeed: %v; want the step put back", err)
	}
	checkKubernetesVersion(e, prev)
	e.kube("rollout", "status", "deployment/echo", "--timeout", "3m")

	start = time.Now()
	out = e.must(30*time.Minute, e.plinthctl, "-n", cp, "upgrade-k8s", "--to", cur)
	took := time.Since(start).Round(time.Second)
	t.Logf("upgrade-k8s %s -> %s took %s:\n%s", prev, cur, took, out)
	if !strings.Contains(out, "the cluster runs Kubernetes "+cur) {
		t.Errorf("upgrade-k8s did not report the cluster on %s", cur)
	}
	checkKubernetesVersion(e, cur)
	for _, pod := range []string{"kube-apiserver", "kube-controller-manager", "kube-scheduler"} {
		img := e.kube("-n", "kube-system", "get", "pod", pod+"-"+e.name+"-controlplane-1", "-o", "jsonpath={.spec.containers[0].image}")
		if img != "plinth.local/"+pod+":"+cur {
			t.Errorf("static pod %s runs %s", pod, img)
		}
	}
	if img := e.kube("-n", "kube-system", "get", "daemonset", "kube-proxy", "-o", "jsonpath={.spec.template.spec.containers[0].image}"); img != "plinth.local/kube-proxy:"+cur {
		t.Errorf("kube-proxy runs %s", img)
	}
	e.kube("rollout", "status", "daemonset/kube-proxy", "-n", "kube-system", "--timeout", "3m")
	e.kube("rollout", "status", "deployment/echo", "--timeout", "3m")
	// The kubelets now run from the nodes' own program: machine.kubelet.image is the bundled one.
	for _, n := range []string{cp, worker} {
		if out := e.must(time.Minute, e.plinthctl, "-n", n, "get", "kubeletspec", "-o", "yaml"); !strings.Contains(out, "image: plinth.local/kubelet:"+cur) {
			t.Errorf("node %s's kubelet spec:\n%s", n, out)
		}
	}
	e.must(5*time.Minute, e.plinthctl, "-n", cp, "health")

	// Again: nothing to do.
	if out := e.must(3*time.Minute, e.plinthctl, "-n", cp, "upgrade-k8s", "--to", cur); !strings.Contains(out, "nothing to do") {
		t.Errorf("a second upgrade-k8s:\n%s", out)
	}
}

func atoi(t *testing.T, s string) int {
	t.Helper()
	var n int
	if _, err := fmt.Sscanf(s, "%d", &n); err != nil {
		t.Fatalf("%q: %v", s, err)
	}
	return n
}

// checkKubernetesVersion checks that the API server and every node's kubelet report version,
// and that every node is Ready.
func checkKubernetesVersion(e *env, version string) {
	e.t.Helper()
	var v struct {
		ServerVersion struct {
			GitVersion string `json:"gitVersion"`
		} `json:"serverVersion"`
	}
	if err := json.Unmarshal([]byte(e.kube("version", "-o", "json")), &v); err != nil {
		e.t.Fatalf("kubectl version: %v", err)
	}
	if v.ServerVersion.GitVersion != version {
		e.t.Errorf("the API server runs %s, want %s", v.ServerVersion.GitVersion, version)
	}
	e.eventually(3*time.Minute, "every node Ready with kubelet "+version, func() error {
		out, err := e.run(time.Minute, e.kubectl, "get", "nodes", "-o",
			`jsonpath={range .items[*]}{.metadata.name} {.status.nodeInfo.kubeletVersion} {.status.conditions[?(@.type=="Ready")].status}{"\n"}{end}`)
		if err != nil {
			return fmt.Errorf("%v: %s", err, out)
		}
		lines := strings.Fields(out)
		if len(lines) != 6 {
			return fmt.Errorf("want two nodes: %s", out)
		}
		for i := 0; i < len(lines); i += 3 {
			if lines[i+1] != version || lines[i+2] != "True" {
				return fmt.Errorf("node %s: kubelet %s, Ready %s", lines[i], lines[i+1], lines[i+2])
			}
		}
		return nil
	})
}
