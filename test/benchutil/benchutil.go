// Package benchutil reads the figures that benchmarks print out of plinthctl's output: the
// processes table summed by component, its human sizes, and medians.
package benchutil

import (
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
	for _, line := range strings.Split(out, "\n")[1:] {
		f := strings.Fields(line)
		if len(f) < 8 || ParseSize(f[5]) == 0 {
			continue
		}
		cmd := strings.Join(f[7:], " ")
		name := "other"
		for _, c := range components {
			if strings.Contains(cmd, c.key) {
				name = c.name
				break
			}
		}
		m := sums[name]
		m.RSS += ParseSize(f[5])
		m.PSS += ParseSize(f[6])
		sums[name] = m
	}
	return sums
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

// Median is the middle of ds (the upper one of an even count); 0 for none.
func Median(ds []time.Duration) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[len(s)/2]
}
