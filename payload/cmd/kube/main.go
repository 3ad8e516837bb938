// Command kube is the multicall binary of Plinth's Kubernetes payload: kubelet,
// kube-apiserver, kube-controller-manager, kube-scheduler, kube-proxy, kubectl and etcd,
// built from the upstream Go modules pinned in payload/go.mod. Built with the tag
// plinth_noetcd it leaves etcd out: the previous Kubernetes version's build (prev.mod, for
// the upgrade-k8s test) carries only Kubernetes, and the cluster's etcd stays the bundled one.
//
// It picks the component from the base name it was started under (a symlink such as
// /usr/bin/kubelet -> kube), or else from its first argument (`kube kubelet --version`).
// In the second form the component name is dropped from os.Args before the component
// runs, so that each one sees the argv its upstream main would: flags, kubectl plugins and
// etcd's sub-commands behave as upstream.
package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	_ "time/tzdata" // CronJob time zones (kube-apiserver, kube-controller-manager)

	_ "k8s.io/client-go/plugin/pkg/client/auth" // kubectl's client auth plugins
	"k8s.io/component-base/cli"
	"k8s.io/component-base/logs"
	_ "k8s.io/component-base/logs/json/register"          // JSON log format
	_ "k8s.io/component-base/metrics/prometheus/clientgo" // client-go metrics
	_ "k8s.io/component-base/metrics/prometheus/version"  // version metric
	kubectlcmd "k8s.io/kubectl/pkg/cmd"
	kubectlutil "k8s.io/kubectl/pkg/cmd/util"
	apiserver "k8s.io/kubernetes/cmd/kube-apiserver/app"
	controllermanager "k8s.io/kubernetes/cmd/kube-controller-manager/app"
	proxy "k8s.io/kubernetes/cmd/kube-proxy/app"
	scheduler "k8s.io/kubernetes/cmd/kube-scheduler/app"
	kubelet "k8s.io/kubernetes/cmd/kubelet/app"
)

// components maps a component name to its entry point, which returns the exit code.
// Each entry does what the component's upstream main does.
var components = map[string]func() int{
	"kubelet":                 func() int { return cli.Run(kubelet.NewKubeletCommand(context.Background())) },
	"kube-apiserver":          func() int { return cli.Run(apiserver.NewAPIServerCommand()) },
	"kube-controller-manager": func() int { return cli.Run(controllermanager.NewControllerManagerCommand()) },
	"kube-scheduler":          func() int { return cli.Run(scheduler.NewSchedulerCommand()) },
	"kube-proxy":              func() int { return cli.Run(proxy.NewProxyCommand()) },
	"kubectl":                 kubectl,
}

func kubectl() int {
	// Set the verbosity before the command is built, as upstream kubectl does, so that
	// klog works while plugins and .kuberc are handled.
	logs.GlogSetter(kubectlcmd.GetLogVerbosity(os.Args)) //nolint:errcheck
	if err := cli.RunNoErrOutput(kubectlcmd.NewDefaultKubectlCommand()); err != nil {
		kubectlutil.CheckErr(err) // prints the error and exits non-zero
	}
	return 0
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
