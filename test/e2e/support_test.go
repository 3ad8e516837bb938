//go:build e2e

package e2e

import (
	"archive/tar"
	"compress/gzip"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// readBundle returns the files of a support bundle by name (without the support/ root).
func readBundle(e *env, path string) map[string]string {
	e.t.Helper()
	f, err := os.Open(path)
	if err != nil {
		e.t.Fatal(err)
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		e.t.Fatalf("the bundle is not gzipped: %v", err)
	}
	tr := tar.NewReader(zr)
	files := map[string]string{}
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return files
		}
		if err != nil {
			e.t.Fatalf("read the bundle: %v", err)
		}
		data, err := io.ReadAll(tr)
		if err != nil {
			e.t.Fatal(err)
		}
		files[strings.TrimPrefix(h.Name, "support/")] = string(data)
	}
}

// checkSupport collects a support bundle from both nodes and checks what it holds, that
// no key or token of the cluster is in it, and that a node that does not answer is
// recorded, not fatal.
// gone is an address of the cluster's network that no node has.
func checkSupport(e *env, cp, worker, gone, cpName, workerName string) {
	e.t.Helper()
	bundle := filepath.Join(e.home, "support.tar.gz")
	out := e.must(5*time.Minute, e.plinthctl, "-n", cp+","+worker, "support", "-O", bundle)
	if !strings.Contains(out, "wrote "+bundle) {
		e.t.Errorf("support:\n%s", out)
	}
	files := readBundle(e, bundle)
	var want []string
	for _, n := range []string{cp, worker} {
		for _, f := range []string{"version.txt", "services.txt", "logs/machined.log", "logs/kubelet.log", "logs/containerd.log",
			"dmesg.log", "events.txt", "processes.txt", "memory.txt", "mounts.txt", "containers.txt", "stats.txt", "images.txt",
			"machineconfig.yaml", "resources/definitions.txt"} {
			want = append(want, n+"/"+f)
		}
	}
	want = append(want, "summary.txt", "cluster/nodes.json", "cluster/pods.json", "cluster/events.json", "cluster/version.json",
		cp+"/pods/kube-system_kube-apiserver-"+cpName+"_kube-apiserver.log", cp+"/pods/kube-system_etcd-"+cpName+"_etcd.log")
	for _, f := range want {
		if strings.TrimSpace(files[f]) == "" {
			e.t.Errorf("the bundle has no %s, or it is empty", f)
		}
	}
	if !strings.Contains(files["summary.txt"], "Everything asked for was collected") {
		e.t.Errorf("summary:\n%s", files["summary.txt"])
	}
	for _, c := range []struct{ file, text string }{
		{cp + "/services.txt", "kubelet"},
		{cp + "/logs/machined.log", "etcd"},
		{worker + "/containers.txt", "kube-proxy"},
		{cp + "/machineconfig.yaml", "(secret)"},
		{"cluster/nodes.json", workerName},
		{"cluster/pods.json", "kube-apiserver-" + cpName},
	} {
		if !strings.Contains(files[c.file], c.text) {
			e.t.Errorf("%s lacks %q", c.file, c.text)
		}
	}
	secrets := e.secretsOf()
	for name, data := range files {
		if found := leaks([]byte(data), secrets); len(found) > 0 {
			e.t.Errorf("the bundle's %s holds %d secret(s) of the cluster", name, len(found))
		}
	}

	// A node that does not answer is recorded; the rest is still collected.
	out, err := e.run(5*time.Minute, e.plinthctl, "-n", cp+","+gone, "support", "-O", bundle)
	if err == nil {
		e.t.Errorf("support over an existing bundle without --force succeeded:\n%s", out)
	}
	out = e.must(5*time.Minute, e.plinthctl, "-n", cp+","+gone, "support", "-O", bundle, "--force")
	files = readBundle(e, bundle)
	if !strings.Contains(out, gone+": did not answer") || !strings.Contains(files["summary.txt"], "Not collected from "+gone) ||
		files[cp+"/version.txt"] == "" || files["cluster/nodes.json"] == "" {
		e.t.Errorf("support with a node that does not answer:\n%s\nsummary:\n%s", out, files["summary.txt"])
	}
}
