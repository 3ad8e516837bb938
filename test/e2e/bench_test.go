//go:build e2e

package e2e

import (
	"cmp"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/plinthos/plinth/test/benchutil"
)

var okLine = regexp.MustCompile(`OK: (.+) \(([0-9.hms]+)\)`)

// BenchmarkClusterCreate creates a 1+1 cluster three times and reports the median time, with
// its spread, from `cluster create` to every node Ready and CoreDNS ready; after each
// create, idle, each node's CPU use in four windows of 30 s (with its components' shares)
// and the memory of all its processes (PSS and RSS, by component); and the sizes of what
// was built. Each figure is printed beside the aim of issue 12, with its spread. It asserts
// nothing.
func BenchmarkClusterCreate(b *testing.B) {
	var api, ready []time.Duration
	const runs = 3
	var last *env
	nodes := []idleNode{
		{role: "controlplane-1", ip: "10.5.78.2", aimCPU: 10, aimMem: 500},
		{role: "worker-1", ip: "10.5.78.3", aimCPU: 2, aimMem: 200},
	}
	for i := range runs {
		e := setup(b, "bench", "10.5.78.0/24")
		out := e.must(12*time.Minute, e.plinthctl, "cluster", "create", "--isolated", "--name", e.name, "--image", e.image, "--workers", "1", "--cidr", e.cidr, "--timings")
		created := time.Now()
		times := okTimes(out)
		up := max(times["all nodes are Ready"], times["CoreDNS is ready"])
		api = append(api, times["the API server is ready"])
		ready = append(ready, up)
		b.Logf("run %d: API %s, every node Ready and CoreDNS ready %s", i+1, times["the API server is ready"], up)
		if _, table, ok := strings.Cut(out, "timings, in seconds"); ok {
			b.Logf("run %d timings, in seconds%s", i+1, table)
		}
		measureIdle(b, e, created, nodes, i+1)
		if i < runs-1 {
			e.must(3*time.Minute, e.plinthctl, "cluster", "destroy", "--name", e.name)
		} else {
			last = e
		}
	}
	b.ReportMetric(benchutil.Median(api).Seconds(), "api-s")
	b.ReportMetric(benchutil.Median(ready).Seconds(), "ready-s")
	b.Log(benchutil.Aim("1+1 create to every node Ready and CoreDNS ready", benchutil.Summary(ready), "under 20 s (kind: API healthy at 12-17 s)", benchutil.Median(ready) < 20*time.Second))
	b.Log(benchutil.Aim("1+1 create to the API server ready", benchutil.Summary(api), "-", true))
	for _, n := range nodes {
		cpu := benchutil.Median(n.cpu)
		b.ReportMetric(cpu, n.role+"-idle-cpu-%")
		b.Log(benchutil.Aim(n.role+" idle CPU (cgroup, 30 s windows from 90 s after create)", benchutil.SummaryFloat(n.cpu, " %", "windows"), fmt.Sprintf("under %g %% of one core", n.aimCPU), cpu < n.aimCPU))
		pss := benchutil.Median(n.pss)
		b.ReportMetric(pss, n.role+"-pss-MiB")
		b.Log(benchutil.Aim(n.role+" idle memory, every process", benchutil.SummaryFloat(n.pss, " MiB PSS", "runs")+fmt.Sprintf(", %.0f MiB RSS", benchutil.Median(n.rss)), fmt.Sprintf("under %g MiB PSS", n.aimMem), pss < n.aimMem))
	}
	for _, s := range []struct{ what, path string }{{"payload binaries", "../../_out/payload/bin"}, {"image bundle", "../../_out/images/bundle.tar"}} {
		if out, err := exec.Command("du", "-sh", "-L", s.path).Output(); err == nil {
			b.Logf("size of %s: %s", s.what, strings.Fields(string(out))[0])
		}
	}
	if out, err := exec.Command("docker", "image", "inspect", "--format", "{{.Size}}", last.image).Output(); err == nil {
		n, _ := strconv.ParseFloat(strings.TrimSpace(string(out)), 64)
		b.ReportMetric(n/1e6, "image-MB")
		b.Log(benchutil.Aim("node image "+last.image, fmt.Sprintf("%.0f MB", n/1e6), "under 250 MB", n < 250e6))
	}
}

// BenchmarkClusterCreateHA creates a cluster of three control planes three times and
// reports the median time, with its spread, from `cluster create` to the cluster healthy
// with every etcd member voting (create's health wait). It asserts nothing.
func BenchmarkClusterCreateHA(b *testing.B) {
	var healthy []time.Duration
	const runs = 3
	for i := range runs {
		e := setup(b, "bench-ha", "10.5.77.0/24")
		start := time.Now()
		out := e.must(15*time.Minute, e.plinthctl, "cluster", "create", "--isolated", "--name", e.name, "--image", e.image, "--controlplanes", "3", "--workers", "0", "--cidr", e.cidr)
		var last time.Duration
		for _, d := range okTimes(out) {
			last = max(last, d)
		}
		healthy = append(healthy, last)
		b.Logf("run %d: healthy, every etcd member voting, after %s (the command took %s)", i+1, last, time.Since(start).Round(100*time.Millisecond))
		e.must(3*time.Minute, e.plinthctl, "cluster", "destroy", "--name", e.name)
	}
	b.ReportMetric(benchutil.Median(healthy).Seconds(), "healthy-s")
	b.Log(benchutil.Aim("3 control planes: create to healthy, etcd members voting", benchutil.Summary(healthy), "under 45 s", benchutil.Median(healthy) < 45*time.Second))
}

// okTimes reads the health wait's "OK: CHECK (DURATION)" lines of cluster create.
func okTimes(out string) map[string]time.Duration {
	times := map[string]time.Duration{}
	for _, m := range okLine.FindAllStringSubmatch(out, -1) {
		if d, err := time.ParseDuration(m[2]); err == nil {
			times[m[1]] = d
		}
	}
	return times
}

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

// idleNode is a node of the create benchmark's cluster, its aims, and what the runs measured.
type idleNode struct {
	role, ip       string
	aimCPU, aimMem float64
	cpu            []float64 // % of one core, one per 30 s window of every run
	pss, rss       []float64 // MiB, one per run
}

// measureIdle measures the nodes of a cluster created at created, idle: from 90 s after
// the create, each node's cgroup CPU over four windows of about 30 s (one window moved by
// 1-2 points between runs of the same tree), each divided by the time between its own
// samples, with each component's share over all four; then the memory of every process,
// from the processes table taken after the last window (no table is taken within a
// window: machined's reading of every process's memory would count in it).
func measureIdle(b *testing.B, e *env, created time.Time, nodes []idleNode, run int) {
	b.Helper()
	time.Sleep(time.Until(created.Add(90 * time.Second)))
	const window, windows = 30 * time.Second, 4
	ids := make([]string, len(nodes))
	cpu := make([][]time.Duration, len(nodes)) // each node's cgroup CPU at each window's bounds
	at := make([][]time.Time, len(nodes))      // when each was read
	procs := make([][]string, len(nodes))      // each node's processes table at the bounds of all
	procsAt := make([][]time.Time, len(nodes))
	sample := func(i int) {
		used, err := benchutil.ContainerCPU(ids[i])
		if err != nil {
			b.Fatal(err)
		}
		cpu[i], at[i] = append(cpu[i], used), append(at[i], time.Now())
	}
	table := func(i int) {
		procs[i] = append(procs[i], e.must(time.Minute, e.plinthctl, "-n", nodes[i].ip, "processes"))
		procsAt[i] = append(procsAt[i], time.Now())
	}
	for i, n := range nodes {
		id, err := exec.Command("docker", "inspect", "-f", "{{.Id}}", e.name+"-"+n.role).Output()
		if err != nil {
			b.Fatalf("docker inspect %s-%s: %v", e.name, n.role, err)
		}
		ids[i] = strings.TrimSpace(string(id))
		table(i)
		sample(i)
	}
	start := time.Now()
	for w := 1; w <= windows; w++ {
		time.Sleep(time.Until(start.Add(time.Duration(w) * window)))
		for i := range nodes {
			sample(i)
		}
	}
	for i := range nodes {
		n := &nodes[i]
		table(i)
		mem := benchutil.MemByComponent(procs[i][1])
		var names []string
		var total benchutil.Mem
		for k, v := range mem {
			names = append(names, fmt.Sprintf("%s %.1f/%.1f", k, v.RSS, v.PSS))
			total.RSS += v.RSS
			total.PSS += v.PSS
		}
		sort.Strings(names)
		n.pss, n.rss = append(n.pss, total.PSS), append(n.rss, total.RSS)
		b.Logf("run %d: %s idle memory %.0f MiB PSS (%.0f RSS); by component, RSS/PSS MiB: %s", run, n.role, total.PSS, total.RSS, strings.Join(names, ", "))

		var pcts []string
		for w := 1; w < len(cpu[i]); w++ {
			pct := 100 * float64(cpu[i][w]-cpu[i][w-1]) / float64(at[i][w].Sub(at[i][w-1]))
			n.cpu = append(n.cpu, pct)
			pcts = append(pcts, fmt.Sprintf("%.1f", pct))
		}
		cpuBy := benchutil.CPUByComponent(procs[i][0], procs[i][1], procsAt[i][1].Sub(procsAt[i][0]))
		names = slices.SortedFunc(maps.Keys(cpuBy), func(x, y string) int { return cmp.Compare(cpuBy[y], cpuBy[x]) })
		var parts []string
		for _, k := range names {
			parts = append(parts, fmt.Sprintf("%s %.2f", k, cpuBy[k]))
		}
		b.Logf("run %d: %s idle CPU %s %% in the %d windows; by component over them, %% of one core: %s", run, n.role, strings.Join(pcts, ", "), windows, strings.Join(parts, ", "))
	}
}
