// Package render writes what a Kubernetes node runs from its machine configuration: the
// control-plane static pod manifests that kubelet runs from paths.ManifestsDir, kubelet's
// configuration file and command line, and containerd's configuration with its registry
// hosts files.
//
// Every function here is pure except CanLowerOOMScoreAdj: it turns a configuration and a few
// facts about the node into file contents, and the caller writes them.
package render

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"

	"github.com/plinthos/plinth/internal/k8s/paths"
	"github.com/plinthos/plinth/pkg/config"
)

// Node is what the rendered files say about the node.
type Node struct {
	// Name is the Kubernetes node name (the host name).
	Name string
	// IP is the node's primary address: etcd and the API server advertise it, kubelet
	// reports it.
	IP string
	// IPs are all the node's addresses (IP among them).
	IPs []string
}

// Locations derived from the paths package.
const (
	// PauseImage is the sandbox (pause) image, bundled with the node image.
	PauseImage = config.DefaultImageRepository + "/pause:3.10"
	// ContainerdSocket is containerd's gRPC socket.
	ContainerdSocket = paths.ContainerdRunDir + "/containerd.sock"
	// ContainerdDebugSocket is containerd's debug server (Go's pprof and expvar), on
	// the node only: machined asks it for a garbage collection after the bundle's
	// import, and `ctr pprof` reads it.
	ContainerdDebugSocket = paths.ContainerdRunDir + "/debug.sock"
	// ContainerRuntimeEndpoint is the CRI endpoint kubelet uses.
	ContainerRuntimeEndpoint = "unix://" + ContainerdSocket
	// KubeletConfigFile is where KubeletConfig's output is written.
	KubeletConfigFile = paths.KubeletDir + "/config.yaml"
	// WorkerKubeconfig is the kubeconfig a worker's kubelet writes after TLS bootstrap.
	WorkerKubeconfig = paths.KubeletDir + "/kubeconfig"
	// RegistryHostsDir is containerd's registry configuration directory (config_path): one
	// directory per registry host holding a hosts.toml.
	RegistryHostsDir = "/etc/containerd/certs.d"
	// RuncPath is the runc binary containerd's runc runtime runs.
	RuncPath = "/usr/bin/runc"
	// ControlPlaneRoleLabel marks control-plane nodes. kubelet refuses to set it on itself
	// (it is in the kubernetes.io namespace), so it is in APINodeLabels, not in KubeletArgs.
	ControlPlaneRoleLabel = "node-role.kubernetes.io/control-plane"
)

// effective returns the cluster part of cfg with defaults filled in. Only the cluster part is
// copied, by value, so that ApplyDefaults cannot touch the caller's configuration: it only
// sets empty strings and replaces empty slices there.
func effective(cfg *config.MachineConfig) config.ClusterSpec {
	c := config.MachineConfig{Cluster: cfg.Cluster}
	config.ApplyDefaults(&c)
	return c.Cluster
}

// ClusterDNSIP returns the 10th address of the first service subnet (10.96.0.10 for
// 10.96.0.0/12): the cluster DNS Service's address.
func ClusterDNSIP(cfg *config.MachineConfig) (string, error) {
	subnet := effective(cfg).Network.ServiceSubnets[0]
	p, err := netip.ParsePrefix(subnet)
	if err != nil {
		return "", fmt.Errorf("service subnet %q: %w", subnet, err)
	}
	p = p.Masked()
	a := p.Addr()
	for range 10 {
		a = a.Next()
	}
	if !a.IsValid() || !p.Contains(a) {
		return "", fmt.Errorf("service subnet %q is too small for the cluster DNS address", subnet)
	}
	return a.String(), nil
}

// flags are a component's command-line flags by name (without dashes).
type flags map[string]string

// with returns f overridden and extended by extra (extraArgs from the configuration).
func (f flags) with(extra map[string]string) flags {
	for k, v := range extra {
		f[strings.TrimLeft(k, "-")] = v
	}
	return f
}

// args renders the flags as --name=value, sorted by name.
func (f flags) args() []string {
	names := make([]string, 0, len(f))
	for k := range f {
		names = append(names, k)
	}
	slices.Sort(names)
	out := make([]string, 0, len(names))
	for _, k := range names {
		out = append(out, "--"+k+"="+f[k])
	}
	return out
}

// checkNode checks the fields every renderer needs.
func checkNode(node Node) (netip.Addr, error) {
	if node.Name == "" {
		return netip.Addr{}, fmt.Errorf("node name is empty")
	}
	ip, err := netip.ParseAddr(node.IP)
	if err != nil {
		return netip.Addr{}, fmt.Errorf("node address %q: %w", node.IP, err)
	}
	return ip, nil
}
