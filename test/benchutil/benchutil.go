// Package benchutil reads the figures that benchmarks print out of plinthctl's output: the
// processes table summed by component, its human sizes, and medians.
package benchutil

import (
	"cmp"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Mem is a component's resident and proportional set sizes, in MiB.
type Mem struct{ RSS, PSS float64 }

// components name a process by a part of its command line; the first match wins.
var components = []struct{ key, name string }{
	{"machined apid", "apid"}, {"machined trustd", "trustd"}, {"/usr/bin/machined", "machined"},
	{"containerd-shim", "containerd shims"}, {"/usr/bin/containerd", "containerd"}, {"/usr/bin/kubelet", "kubelet"},
	{"kube-apiserver", "kube-apiserver"}, {"kube-controller-manager", "kube-controller-manager"},
	{"kube-scheduler", "kube-scheduler"}, {"etcd", "etcd"}, {"kube-proxy", "kube-proxy"}, {"flanneld", "flanneld"},
	{"coredns", "coredns"}, {"/pause", "pause"},
}

// MemByComponent sums the RSS and PSS columns of `plinthctl processes` by component; a
// process it does not know is counted as "other". Kernel threads (no RSS) are left out.
func MemByComponent(out string) map[string]Mem {
	sums := map[string]Mem{}
	for _, p := range parseProcesses(out) {
		if p.rss == 0 {
			continue
		}
		m := sums[p.component]
		m.RSS += p.rss
		m.PSS += p.pss
		sums[p.component] = m
	}
	return sums
}

// CPUByComponent is the CPU each component used between two `plinthctl processes` tables
// of one node taken window apart, in percent of one core; a process that started in
// between counts from zero, one that ended is not counted.
func CPUByComponent(before, after string, window time.Duration) map[string]float64 {
	was := map[string]float64{}
	for _, p := range parseProcesses(before) {
		was[p.pid+" "+p.cmd] = p.cpu
	}
	sums := map[string]float64{}
	for _, p := range parseProcesses(after) {
		if used := p.cpu - was[p.pid+" "+p.cmd]; used > 0 {
			sums[p.component] += 100 * used / window.Seconds()
		}
	}
	return sums
}

// process is a row of `plinthctl processes`.
type process struct {
	pid, cmd, component string
	cpu                 float64 // seconds
	rss, pss            float64 // MiB
}

// parseProcesses reads the rows of `plinthctl processes` (PID PPID STATE THREADS CPU-TIME
// RSS PSS COMMAND) and names each process's component.
func parseProcesses(out string) []process {
	var ps []process
	for _, line := range strings.Split(out, "\n")[1:] {
		f := strings.Fields(line)
		if len(f) < 8 {
			continue
		}
		p := process{pid: f[0], cmd: strings.Join(f[7:], " "), component: "other", rss: ParseSize(f[5]), pss: ParseSize(f[6])}
		p.cpu, _ = strconv.ParseFloat(strings.TrimSuffix(f[4], "s"), 64)
		for _, c := range components {
			if strings.Contains(p.cmd, c.key) {
				p.component = c.name
				break
			}
		}
		ps = append(ps, p)
	}
	return ps
}

// ParseSize reads plinthctl's human sizes (12.3Mi, 512.0Ki, 1.1Gi, 800B) in MiB; anything
// else ("-") is 0.
func ParseSize(s string) float64 {
	for _, u := range []struct {
		suffix string
		mib    float64
	}{{"Gi", 1024}, {"Mi", 1}, {"Ki", 1.0 / 1024}, {"B", 1.0 / (1 << 20)}} {
		if strings.HasSuffix(s, u.suffix) {
			v, _ := strconv.ParseFloat(strings.TrimSuffix(s, u.suffix), 64)
			return v * u.mib
		}
	}
	return 0
}

// Median is the middle of vs (the upper one of an even count); 0 for none.
func Median[T cmp.Ordered](vs []T) T {
	var zero T
	if len(vs) == 0 {
		return zero
	}
	return slices.Sorted(slices.Values(vs))[len(vs)/2]
}

// Summary is the median of ds with its spread, such as "29.3 s (28.1-31.0 s over 3
// runs)".
func Summary(ds []time.Duration) string {
	if len(ds) == 0 {
		return "no runs"
	}
	lo, hi := slices.Min(ds), slices.Max(ds)
	return fmt.Sprintf("%.1f s (%.1f-%.1f s over %d runs)", Median(ds).Seconds(), lo.Seconds(), hi.Seconds(), len(ds))
}

// SummaryFloat is the median of vs with its spread, such as "8.1 % (7.8-8.3 % over 4
// windows)"; unit and what follow each number and the count.
func SummaryFloat(vs []float64, unit, what string) string {
	if len(vs) == 0 {
		return "no " + what
	}
	return fmt.Sprintf("%.1f%s (%.1f-%.1f%s over %d %s)", Median(vs), unit, slices.Min(vs), slices.Max(vs), unit, len(vs), what)
}

// Aim prints a figure beside its aim: "what: figure; aim: aim (met|NOT met)".
func Aim(what, figure, aim string, met bool) string {
	verdict := "met"
	if !met {
		verdict = "NOT met"
	}
	return fmt.Sprintf("%-58s %-36s aim: %s (%s)", what+":", figure, aim, verdict)
}

// ContainerCPU is the CPU time a Docker container's processes used so far, from its
// cgroup on this host: cgroup v1 (cpuacct) or v2 (cpu.stat), cgroupfs or systemd driver.
func ContainerCPU(id string) (time.Duration, error) {
	for _, p := range []string{"/sys/fs/cgroup/cpuacct/docker/" + id + "/cpuacct.usage", "/sys/fs/cgroup/cpu,cpuacct/docker/" + id + "/cpuacct.usage"} {
		if data, err := os.ReadFile(p); err == nil {
			ns, err := strconv.ParseInt(strings.TrimSpace(string(data)), 10, 64)
			return time.Duration(ns), err
		}
	}
	for _, p := range []string{"/sys/fs/cgroup/docker/" + id + "/cpu.stat", "/sys/fs/cgroup/system.slice/docker-" + id + ".scope/cpu.stat"} {
		data, err := os.ReadFile(p)
		if err != nil {
			continue
		}
		for _, line := range strings.Split(string(data), "\n") {
			if v, ok := strings.CutPrefix(line, "usage_usec "); ok {
				us, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
				return time.Duration(us) * time.Microsecond, err
			}
		}
	}
	return 0, fmt.Errorf("no CPU accounting found for container %s under /sys/fs/cgroup", id)
}
