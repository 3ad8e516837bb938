// Command kube is the multicall binary of Plinth's Kubernetes payload: kube-apiserver,
// kube-controller-manager, kube-scheduler and etcd, built from the upstream Go modules
// pinned in payload/go.mod. The node's own version builds kubelet, kube-proxy and kubectl
// alone (payload/Makefile). Built with the tag plinth_node it also carries those three, and
// with the tag plinth_noetcd it leaves etcd out: the previous Kubernetes version's build
// (prev.mod, for the upgrade-k8s test) is so, and the cluster's etcd stays the bundled one.
// The node's own version needs no tag, so one `go build` makes it and the programs built
// alone (a tag applies to every program of a build).
//
// It picks the component from the base name it was started under (a symlink such as
// /usr/bin/kubelet -> kube), or else from its first argument (`kube kubelet --version`).
// In the second form the component name is dropped from os.Args before the component
// runs, so that each one sees the argv its upstream main would: flags, kubectl plugins and
// etcd's sub-commands behave as upstream.
package main

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	_ "time/tzdata" // CronJob time zones (kube-apiserver, kube-controller-manager)

	"k8s.io/component-base/cli"
	_ "k8s.io/component-base/logs/json/register"          // JSON log format
	_ "k8s.io/component-base/metrics/prometheus/clientgo" // client-go metrics
	_ "k8s.io/component-base/metrics/prometheus/version"  // version metric
	apiserver "k8s.io/kubernetes/cmd/kube-apiserver/app"
	controllermanager "k8s.io/kubernetes/cmd/kube-controller-manager/app"
	scheduler "k8s.io/kubernetes/cmd/kube-scheduler/app"
)

// components maps a component name to its entry point, which returns the exit code.
// Each entry does what the component's upstream main does.
var components = map[string]func() int{
	"kube-apiserver":          func() int { return cli.Run(apiserver.NewAPIServerCommand()) },
	"kube-controller-manager": func() int { return cli.Run(controllermanager.NewControllerManagerCommand()) },
	"kube-scheduler":          func() int { return cli.Run(scheduler.NewSchedulerCommand()) },
}

func main() {
	run, ok := components[filepath.Base(os.Args[0])]
	if !ok && len(os.Args) > 1 {
		if run, ok = components[os.Args[1]]; ok {
			os.Args = os.Args[1:]
		}
	}
	if !ok {
		names := make([]string, 0, len(components))
		for name := range components {
			names = append(names, name)
		}
		slices.Sort(names)
		fmt.Fprintf(os.Stderr, "usage: kube COMPONENT [ARGS...], or run it as a symlink named COMPONENT\ncomponents: %s\n",
			strings.Join(names, ", "))
		os.Exit(2)
	}
	os.Exit(run())
}
