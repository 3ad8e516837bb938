package render

import (
	"cmp"
	"fmt"
	"maps"
	"net/netip"
	"slices"
	"strings"

	"github.com/plinthos/plinth/internal/k8s/paths"
	"github.com/plinthos/plinth/internal/yamlx"
	"github.com/plinthos/plinth/pkg/config"
)

// KubeletOptions are the facts about the node that KubeletConfig needs besides its
// configuration.
type KubeletOptions struct {
	// CgroupV1 says the node runs on cgroup v1, which kubelet refuses unless told otherwise.
	CgroupV1 bool
	// ClusterDNS is the cluster DNS Service's address. Empty means ClusterDNSIP.
	ClusterDNS string
	// ControlPlane makes kubelet run the static pods in paths.ManifestsDir.
	ControlPlane bool
	// ResolvConf is the resolv.conf pods with dnsPolicy Default (CoreDNS) get. Empty means
	// /etc/resolv.conf.
	ResolvConf string
}

// The KubeletConfiguration fields this package sets (kubelet.config.k8s.io/v1beta1), in
// the order they are written.
type (
	kubeletConfiguration struct {
		APIVersion                  string            `yaml:"apiVersion"`
		Kind                        string            `yaml:"kind"`
		Authentication              kubeletAuthn      `yaml:"authentication"`
		Authorization               kubeletAuthz      `yaml:"authorization"`
		CgroupDriver                string            `yaml:"cgroupDriver"`
		FailCgroupV1                *bool             `yaml:"failCgroupV1,omitempty"`
		ClusterDNS                  []string          `yaml:"clusterDNS"`
		ClusterDomain               string            `yaml:"clusterDomain"`
		ContainerRuntimeEndpoint    string            `yaml:"containerRuntimeEndpoint"`
		StaticPodPath               string            `yaml:"staticPodPath,omitempty"`
		ResolvConf                  string            `yaml:"resolvConf"`
		RotateCertificates          bool              `yaml:"rotateCertificates"`
		ServerTLSBootstrap          bool              `yaml:"serverTLSBootstrap"`
		FailSwapOn                  bool              `yaml:"failSwapOn"`
		ProtectKernelDefaults       bool              `yaml:"protectKernelDefaults"`
		EvictionHard                map[string]string `yaml:"evictionHard"`
		ImageGCHighThresholdPercent int               `yaml:"imageGCHighThresholdPercent"`
		ImageGCLowThresholdPercent  int               `yaml:"imageGCLowThresholdPercent"`
	}
	kubeletAuthn struct {
		X509      kubeletX509 `yaml:"x509"`
		Webhook   enabled     `yaml:"webhook"`
		Anonymous enabled     `yaml:"anonymous"`
	}
	kubeletX509 struct {
		ClientCAFile string `yaml:"clientCAFile"`
	}
	enabled struct {
		Enabled bool `yaml:"enabled"`
	}
	kubeletAuthz struct {
		Mode string `yaml:"mode"`
	}
)

// Eviction and image garbage collection. Test machines have small disks shared with their
// host (a Docker volume, a small VM disk) and little memory headroom, so the hard eviction
// thresholds are lower than kubelet's defaults (memory 100Mi, nodefs 10%, imagefs 15%),
// which would evict pods on a disk that is merely fairly full. Every signal kubelet has a
// default for is listed: when some are given, kubelet sets the others to zero.
//
// Disk-usage image GC is off (high threshold 100, which kubelet treats as disabled, and no
// maximum age): the bundled images are imported at boot and cannot be pulled again on an
// offline node, so deleting one that is unused for the moment (coredns on a worker, an
// etcd image between restarts) would break the next pod that needs it. Images are still
// reclaimed when the disk really runs out: kubelet deletes unused images before evicting
// pods once nodefs/imagefs.available falls below the thresholds below.
var evictionHard = map[string]string{
	"memory.available":  "100Mi",
	"nodefs.available":  "5%",
	"nodefs.inodesFree": "5%",
	"imagefs.available": "5%",
}

const (
	imageGCHigh = 100
	imageGCLow  = 95
)

// KubeletConfig returns kubelet's configuration file (KubeletConfigFile). Control planes
// get staticPodPath; on cgroup v1 it sets failCgroupV1: false.
func KubeletConfig(cfg *config.MachineConfig, node Node, opts KubeletOptions) ([]byte, error) {
	if _, err := checkNode(node); err != nil {
		return nil, err
	}
	cl := effective(cfg)
	dns := opts.ClusterDNS
	if dns == "" {
		var err error
		if dns, err = ClusterDNSIP(cfg); err != nil {
			return nil, err
		}
	} else if _, err := netip.ParseAddr(dns); err != nil {
		return nil, fmt.Errorf("cluster DNS address %q: %w", dns, err)
	}
	kc := kubeletConfiguration{
		APIVersion:                  "kubelet.config.k8s.io/v1beta1",
		Kind:                        "KubeletConfiguration",
		Authorization:               kubeletAuthz{Mode: "Webhook"},
		CgroupDriver:                "cgroupfs",
		ClusterDNS:                  []string{dns},
		ClusterDomain:               cl.Network.DNSDomain,
		ContainerRuntimeEndpoint:    ContainerRuntimeEndpoint,
		ResolvConf:                  cmp.Or(opts.ResolvConf, "/etc/resolv.conf"),
		RotateCertificates:          true,
		ServerTLSBootstrap:          true,
		FailSwapOn:                  false,
		ProtectKernelDefaults:       false,
		EvictionHard:                evictionHard,
		ImageGCHighThresholdPercent: imageGCHigh,
		ImageGCLowThresholdPercent:  imageGCLow,
	}
	kc.Authentication = kubeletAuthn{
		X509:      kubeletX509{ClientCAFile: paths.PKIFile(paths.CACert)},
		Webhook:   enabled{Enabled: true},
		Anonymous: enabled{Enabled: false},
	}
	if opts.CgroupV1 {
		f := false
		kc.FailCgroupV1 = &f
	}
	if opts.ControlPlane {
		kc.StaticPodPath = paths.ManifestsDir
	}
	return yamlx.Marshal(kc)
}

// KubeletArgs returns kubelet's command line, without the binary. Control planes use the
// kubeconfig in the PKI directory; workers bootstrap with the bootstrap kubeconfig and keep
// the one kubelet writes under paths.KubeletDir. The machine's extraArgs replace flags of
// the same name and come last, sorted.
//
// Only the node labels kubelet may set on its own Node go to --node-labels: kubelet refuses
// to start with others in the kubernetes.io and k8s.io namespaces (such as
// ControlPlaneRoleLabel). APINodeLabels returns those, to be applied through the API once
// the node has registered.
func KubeletArgs(cfg *config.MachineConfig, node Node, controlPlane bool) []string {
	k := cfg.Machine.Kubelet
	f := flags{
		"config":                     KubeletConfigFile,
		"hostname-override":          node.Name,
		"container-runtime-endpoint": ContainerRuntimeEndpoint,
	}
	if ips := nodeIPs(node); ips != "" {
		f["node-ip"] = ips
	}
	if controlPlane {
		f["kubeconfig"] = paths.PKIFile(paths.KubeletKubeconfig)
	} else {
		f["bootstrap-kubeconfig"] = paths.PKIFile(paths.BootstrapKubeconfig)
		f["kubeconfig"] = WorkerKubeconfig
	}
	var labels []string
	for _, key := range slices.Sorted(maps.Keys(k.NodeLabels)) {
		if kubeletMaySetLabel(key) {
			labels = append(labels, key+"="+k.NodeLabels[key])
		}
	}
	if len(labels) > 0 {
		f["node-labels"] = strings.Join(labels, ",")
	}
	taints := map[string]string{}
	if controlPlane && !cfg.Cluster.AllowSchedulingOnControlPlanes {
		taints[ControlPlaneRoleLabel] = ":NoSchedule"
	}
	for key, v := range k.NodeTaints {
		taints[key] = v
	}
	var ts []string
	for _, key := range slices.Sorted(maps.Keys(taints)) {
		value, effect, ok := strings.Cut(taints[key], ":")
		switch {
		case !ok: // not VALUE:EFFECT; validation refuses it, kubelet will say why
			ts = append(ts, key+":"+value)
		case value == "":
			ts = append(ts, key+":"+effect)
		default:
			ts = append(ts, key+"="+value+":"+effect)
		}
	}
	if len(ts) > 0 {
		f["register-with-taints"] = strings.Join(ts, ",")
	}
	for key := range k.ExtraArgs {
		delete(f, strings.TrimLeft(key, "-"))
	}
	return append(f.args(), flags{}.with(k.ExtraArgs).args()...)
}

// APINodeLabels returns the node labels kubelet may not set on itself, to be set through
// the API: ControlPlaneRoleLabel (empty value) on control planes, and those of
// machine.kubelet.nodeLabels in the kubernetes.io and k8s.io namespaces that are not
// kubelet's own. Note that the NodeRestriction admission plugin keeps kubelets from setting
// them later too, so an administrator's credentials are needed.
func APINodeLabels(cfg *config.MachineConfig, controlPlane bool) map[string]string {
	out := map[string]string{}
	for k, v := range cfg.Machine.Kubelet.NodeLabels {
		if !kubeletMaySetLabel(k) {
			out[k] = v
		}
	}
	if controlPlane {
		out[ControlPlaneRoleLabel] = ""
	}
	return out
}

// kubeletMaySetLabel says whether kubelet accepts a label key in --node-labels: anything
// outside the kubernetes.io and k8s.io namespaces, the kubelet.kubernetes.io and
// node.kubernetes.io namespaces (and their subdomains), and a fixed set of well-known keys.
func kubeletMaySetLabel(key string) bool {
	ns, _, ok := strings.Cut(key, "/")
	if !ok {
		return true
	}
	under := func(domain string) bool { return ns == domain || strings.HasSuffix(ns, "."+domain) }
	if !under("kubernetes.io") && !under("k8s.io") {
		return true
	}
	if under("kubelet.kubernetes.io") || under("node.kubernetes.io") {
		return true
	}
	switch key {
	case "kubernetes.io/hostname", "kubernetes.io/os", "kubernetes.io/arch",
		"beta.kubernetes.io/os", "beta.kubernetes.io/arch", "beta.kubernetes.io/instance-type",
		"topology.kubernetes.io/zone", "topology.kubernetes.io/region",
		"failure-domain.beta.kubernetes.io/zone", "failure-domain.beta.kubernetes.io/region":
		return true
	}
	return false
}

// nodeIPs returns kubelet's --node-ip: the primary address, followed on a dual-stack node
// by the first address of the other family.
func nodeIPs(node Node) string {
	primary, err := netip.ParseAddr(node.IP)
	if err != nil {
		return node.IP
	}
	out := primary.String()
	for _, s := range node.IPs {
		if a, err := netip.ParseAddr(s); err == nil && a.Unmap().Is4() != primary.Unmap().Is4() {
			return out + "," + a.String()
		}
	}
	return out
}
