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

// importedPod runs the image built and imported by checkImageImport on the worker: it fetches
// the web Service, as the workload's client does.
const importedPod = `apiVersion: v1
kind: Pod
metadata:
  name: imported
spec:
  nodeSelector: {kubernetes.io/hostname: %s}
  restartPolicy: OnFailure
  containers:
  - name: imported
    image: e2e.local/imported:v1
    imagePullPolicy: Never
    args: ["get", "http://web.default.svc.cluster.local/"]
`

// checkImageImport builds an image with the local Docker engine (FROM scratch, the payload's
// testbin), saves it, imports it into the worker's image store with plinthctl image import,
// and runs it as a pod; an archive that is not one is refused and changes nothing. Then it
// removes the image (refused while the pod's container holds it), and loads it again into
// every node with plinthctl cluster load-image, and runs it again.
func checkImageImport(e *env, worker, workerName string) {
	e.t.Helper()
	dir := e.t.TempDir()
	testbin, err := os.ReadFile(filepath.Join(filepath.Dir(e.kubectl), "testbin"))
	if err != nil {
		e.t.Fatalf("the payload's testbin: %v", err)
	}
	if err := os.WriteFile(filepath.Join(dir, "testbin"), testbin, 0o755); err != nil {
		e.t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "Dockerfile"), []byte("FROM scratch\nCOPY testbin /testbin\nENTRYPOINT [\"/testbin\"]\n"), 0o600); err != nil {
		e.t.Fatal(err)
	}
	build := exec.Command("docker", "build", "-q", "-t", "e2e.local/imported:v1", dir)
	build.Env = append(os.Environ(), "DOCKER_BUILDKIT=0")
	if out, err := build.CombinedOutput(); err != nil {
		e.t.Fatalf("docker build: %v\n%s", err, out)
	}
	e.t.Cleanup(func() { _ = exec.Command("docker", "image", "rm", "e2e.local/imported:v1").Run() })
	archive := filepath.Join(dir, "imported.tar")
	if out, err := exec.Command("docker", "save", "-o", archive, "e2e.local/imported:v1").CombinedOutput(); err != nil {
		e.t.Fatalf("docker save: %v\n%s", err, out)
	}

	before := e.must(time.Minute, e.plinthctl, "-n", worker, "image", "list")
	// The node's own kubelet is its kubelet image's program: listed, built in, and not
	// removable.
	var kubelet []string
	for _, line := range strings.Split(before, "\n") {
		if f := strings.Fields(line); len(f) >= 4 && strings.Contains(f[0], "/kubelet:") && strings.HasSuffix(line, "built in") {
			kubelet = f
		}
	}
	if len(kubelet) == 0 || !strings.HasPrefix(kubelet[1], "sha256:") {
		e.t.Errorf("image list shows no built-in kubelet image:\n%s", before)
	} else if out, err := e.run(time.Minute, e.plinthctl, "-n", worker, "image", "remove", kubelet[0]); err == nil || !strings.Contains(out, "is built into the node") {
		e.t.Errorf("image remove of the built-in kubelet image: %v\n%s", err, out)
	}
	// Not an archive: refused, nothing changes.
	bogus := filepath.Join(dir, "bogus.tar")
	if err := os.WriteFile(bogus, []byte(strings.Repeat("not a tar ", 300)), 0o600); err != nil {
		e.t.Fatal(err)
	}
	if out, err := e.run(time.Minute, e.plinthctl, "-n", worker, "image", "import", bogus); err == nil || !strings.Contains(out, "not an image archive") {
		e.t.Errorf("image import of a file that is not an archive: %v\n%s", err, out)
	}
	if after := e.must(time.Minute, e.plinthctl, "-n", worker, "image", "list"); after != before {
		e.t.Errorf("a refused import changed the image list:\nbefore\n%s\nafter\n%s", before, after)
	}

	out := e.must(5*time.Minute, e.plinthctl, "-n", worker, "image", "import", archive)
	if !strings.Contains(out, "imported e2e.local/imported:v1") {
		e.t.Errorf("image import:\n%s", out)
	}
	if list := e.must(time.Minute, e.plinthctl, "-n", worker, "image", "list"); !strings.Contains(list, "e2e.local/imported:v1") {
		e.t.Errorf("image list after the import:\n%s", list)
	}
	manifest := filepath.Join(dir, "pod.yaml")
	if err := os.WriteFile(manifest, []byte(fmt.Sprintf(importedPod, workerName)), 0o600); err != nil {
		e.t.Fatal(err)
	}
	e.kube("apply", "-f", manifest)
	importedPodRuns(e, "the imported image runs as a pod")

	// The pod's container holds the image: it cannot go; once the pod is gone, it can.
	if out, err := e.run(time.Minute, e.plinthctl, "-n", worker, "image", "remove", "e2e.local/imported:v1"); err == nil || !strings.Contains(out, "is the image of container imported") {
		e.t.Errorf("image remove of an image a container was made from: %v\n%s", err, out)
	}
	e.kube("delete", "pod", "imported", "--wait=true", "--timeout=2m")
	e.eventually(2*time.Minute, "the removal of the image, once its pod is gone", func() error {
		out, err := e.run(time.Minute, e.plinthctl, "-n", worker, "image", "remove", "e2e.local/imported:v1")
		if err != nil || !strings.Contains(out, "removed e2e.local/imported:v1") {
			return fmt.Errorf("image remove: %v: %s", err, out)
		}
		return nil
	})
	if list := e.must(time.Minute, e.plinthctl, "-n", worker, "image", "list"); strings.Contains(list, "e2e.local/imported:v1") {
		e.t.Errorf("image list after the removal:\n%s", list)
	}
	if out, err := e.run(time.Minute, e.plinthctl, "-n", worker, "image", "remove", "e2e.local/imported:v1"); err == nil || !strings.Contains(out, "holds no image e2e.local/imported:v1") {
		e.t.Errorf("image remove of an image the node lacks: %v\n%s", err, out)
	}

	// cluster load-image takes it from the local engine to every node, and it runs again.
	if out, err := e.run(time.Minute, e.plinthctl, "cluster", "load-image", "--name", e.name, "e2e.local/missing:v1"); err == nil || !strings.Contains(out, "has no image e2e.local/missing:v1") {
		e.t.Errorf("cluster load-image of an image the engine lacks: %v\n%s", err, out)
	}
	out = e.must(5*time.Minute, e.plinthctl, "cluster", "load-image", "--name", e.name, "e2e.local/imported:v1")
	if n := strings.Count(out, "imported e2e.local/imported:v1"); n < 2 {
		e.t.Errorf("cluster load-image imported on %d nodes, want every node:\n%s", n, out)
	}
	e.kube("apply", "-f", manifest)
	importedPodRuns(e, "the loaded image runs as a pod")
	e.kube("delete", "pod", "imported", "--wait=false")
}

// importedPodRuns waits until the pod of the imported image has fetched the web Service.
func importedPodRuns(e *env, what string) {
	e.t.Helper()
	e.eventually(3*time.Minute, what, func() error {
		out, err := e.run(time.Minute, e.kubectl, "logs", "imported")
		if err != nil || !strings.Contains(out, "hello from web") {
			return fmt.Errorf("logs of the imported image's pod: %v: %s", err, out)
		}
		return nil
	})
}
