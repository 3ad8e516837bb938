//go:build plinth_node

package main

import (
	"context"
	"os"

	_ "k8s.io/client-go/plugin/pkg/client/auth" // kubectl's client auth plugins
	"k8s.io/component-base/cli"
	"k8s.io/component-base/logs"
	kubectlcmd "k8s.io/kubectl/pkg/cmd"
	kubectlutil "k8s.io/kubectl/pkg/cmd/util"
	proxy "k8s.io/kubernetes/cmd/kube-proxy/app"
	kubelet "k8s.io/kubernetes/cmd/kubelet/app"
)

// The node's components: kubelet, kube-proxy and kubectl. Another Kubernetes version's
// multicall (prev.mod) carries them; the node's own version builds them alone.
func init() {
	components["kubelet"] = func() int { return cli.Run(kubelet.NewKubeletCommand(context.Background())) }
	components["kube-proxy"] = func() int { return cli.Run(proxy.NewProxyCommand()) }
	components["kubectl"] = kubectl
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
