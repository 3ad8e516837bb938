//go:build e2e

package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/plinthos/plinth/test/benchutil"
)

var okLine = regexp.MustCompile(`OK: (.+) \(([0-9.hms]+)\)`)

// BenchmarkClusterCreate creates a 1+1 cluster three times and reports the median time from
// `cluster create` to a healthy API, all nodes Ready and CoreDNS ready; then, on the last
// cluster, each component's resident memory on both nodes and the sizes of what was built.
// It prints figures and asserts nothing.
func BenchmarkClusterCreate(b *testing.B) {
	var api, ready, dns []time.Duration
	const runs = 3
	var last *env
	for i := range runs {
		e := setup(b, "bench", "10.5.78.0/24")
		out := e.must(12*time.Minute, e.plinthctl, "cluster", "create", "--isolated", "--name", e.name, "--image", e.image, "--workers", "1", "--cidr", e.cidr)
		times := map[string]time.Duration{}
		for _, m := range okLine.FindAllStringSubmatch(out, -1) {
			d, err := time.ParseDuration(m[2])
			if err == nil {
				times[m[1]] = d
			}
		}
		api = append(api, times["the API server is ready"])
		ready = append(ready, times["all nodes are Ready"])
		dns = append(dns, times["CoreDNS is ready"])
		b.Logf("run %d: API %s, nodes Ready %s, CoreDNS %s", i+1, times["the API server is ready"], times["all nodes are Ready"], times["CoreDNS is ready"])
		if i < runs-1 {
			e.must(3*time.Minute, e.plinthctl, "cluster", "destroy", "--name", e.name)
		} else {
			last = e
		}
	}
	b.ReportMetric(benchutil.Median(api).Seconds(), "api-s")
	b.ReportMetric(benchutil.Median(ready).Seconds(), "nodes-ready-s")
	b.ReportMetric(benchutil.Median(dns).Seconds(), "coredns-s")
	b.Logf("median of %d: API healthy %s, all nodes Ready %s, CoreDNS ready %s (aims: all nodes Ready under 60 s; kind ~12-17 s to a healthy API, Talos ~115 s to Ready)",
		runs, benchutil.Median(api), benchutil.Median(ready), benchutil.Median(dns))

	time.Sleep(20 * time.Second) // settle to idle
	for _, node := range []struct{ name, ip string }{{"control plane", "10.5.78.2"}, {"worker", "10.5.78.3"}} {
		out := last.must(time.Minute, last.plinthctl, "-n", node.ip, "processes")
		byComponent := benchutil.MemByComponent(out)
		var names []string
		overhead, pods := 0.0, 0.0
		for k, v := range byComponent {
			names = append(names, fmt.Sprintf("%s %.1f/%.1f", k, v.RSS, v.PSS))
			if nodeComponents[k] {
				overhead += v.PSS
			} else {
				pods += v.PSS
			}
		}
		sort.Strings(names)
		b.Logf("%s idle memory by component, RSS/PSS MiB: %s", node.name, strings.Join(names, ", "))
		b.Logf("%s: node overhead (machined, apid, containerd and its shims, kubelet) %.1f MiB PSS (aim for a worker: under 150 MB); pods %.1f MiB PSS",
			node.name, overhead, pods)
		b.ReportMetric(overhead, strings.ReplaceAll(node.name, " ", "-")+"-overhead-MiB")
	}
	for _, s := range []struct{ what, path string }{{"payload binaries", "../../_out/payload/bin"}, {"image bundle", "../../_out/images/bundle.tar"}} {
		if out, err := exec.Command("du", "-sh", "-L", s.path).Output(); err == nil {
			b.Logf("size of %s: %s", s.what, strings.Fields(string(out))[0])
		}
	}
	if out, err := exec.Command("docker", "image", "inspect", "--format", "{{.Size}}", last.image).Output(); err == nil {
		n, _ := strconv.ParseFloat(strings.TrimSpace(string(out)), 64)
		b.Logf("node image %s: %.0f MB", last.image, n/1e6)
	}
}

// nodeComponents are the node's own processes; everything else runs in pods.
var nodeComponents = map[string]bool{"machined": true, "apid": true, "trustd": true, "containerd": true, "containerd shims": true, "kubelet": true}

var stepDone = regexp.MustCompile(`\[\d+/\d+\] ([a-z-]+): done in ([0-9hms.]+)`)

// BenchmarkKubernetesUpgrade creates a 1+1 cluster of the previous Kubernetes minor release
// (make image-docker-k8s-prev) and times plinthctl upgrade-k8s to the bundled one: the
// control plane (the static pods' steps), kube-proxy, the kubelets and the whole command.
// It prints figures and asserts nothing.
func BenchmarkKubernetesUpgrade(b *testing.B) {
	prevImage, prev, cur := os.Getenv("PREV_NODE_IMAGE"), os.Getenv("PREV_K8S"), os.Getenv("K8S")
	if prevImage == "" || prev == "" || cur == "" {
		b.Skip("PREV_NODE_IMAGE, PREV_K8S and K8S are not set: run make bench")
	}
	e := setup(b, "bench-k8s", "10.5.83.0/24")
	e.must(15*time.Minute, e.plinthctl, "cluster", "create", "--isolated", "--name", e.name, "--image", prevImage, "--kubernetes-version", prev,
		"--workers", "1", "--cidr", e.cidr, "--wait-timeout", "12m")
	start := time.Now()
	out := e.must(30*time.Minute, e.plinthctl, "-n", "10.5.83.2", "upgrade-k8s", "--to", cur)
	total := time.Since(start)
	byComponent := map[string]time.Duration{}
	for _, m := range stepDone.FindAllStringSubmatch(out, -1) {
		if d, err := time.ParseDuration(m[2]); err == nil {
			byComponent[m[1]] += d
		}
	}
	cp := byComponent["kube-apiserver"] + byComponent["kube-controller-manager"] + byComponent["kube-scheduler"]
	b.ReportMetric(cp.Seconds(), "control-plane-s")
	b.ReportMetric(total.Seconds(), "total-s")
	b.Logf("upgrade-k8s %s -> %s of 1 control plane + 1 worker: control plane %s (kube-apiserver %s, kube-controller-manager %s, kube-scheduler %s), kube-proxy %s, kubelets %s; the whole command %s",
		prev, cur, cp, byComponent["kube-apiserver"], byComponent["kube-controller-manager"], byComponent["kube-scheduler"],
		byComponent["kube-proxy"], byComponent["kubelet"], total.Round(time.Second))
}
