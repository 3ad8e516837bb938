package addons

import (
	"maps"
	"slices"
	"strings"

	"github.com/plinthos/plinth/internal/k8s/render"
	"github.com/plinthos/plinth/internal/yamlx"
	"github.com/plinthos/plinth/pkg/config"
)

const (
	kubeProxyName = "kube-proxy"
	// kubeProxyDir is where the kube-proxy ConfigMap is mounted.
	kubeProxyDir       = "/var/lib/kube-proxy"
	kubeProxyConfigKey = "config.conf"
	// ProxyBinary is kube-proxy in its image: the binary built alone in the bundled image,
	// a link to the multicall binary in the Kubernetes images of another version
	// (imagebuild.KubeImages), which picks the component from the name it runs under.
	ProxyBinary         = "/usr/bin/kube-proxy"
	kubeProxyKubeconfig = "kubeconfig.conf"
	// XtablesLock is the lock iptables takes, shared with the node (kubelet, flanneld).
	XtablesLock = "/run/xtables.lock"
)

// The KubeProxyConfiguration fields set here (kubeproxy.config.k8s.io/v1alpha1).
type (
	kubeProxyConfiguration struct {
		APIVersion       string           `yaml:"apiVersion"`
		Kind             string           `yaml:"kind"`
		ClientConnection clientConnection `yaml:"clientConnection"`
		ClusterCIDR      string           `yaml:"clusterCIDR"`
		Mode             string           `yaml:"mode"`
		Conntrack        conntrack        `yaml:"conntrack"`
	}
	clientConnection struct {
		Kubeconfig string `yaml:"kubeconfig"`
	}
	conntrack struct {
		MaxPerCore *int `yaml:"maxPerCore"`
	}
)

// kubeProxyConfig is kube-proxy's configuration file.
//
// conntrack.maxPerCore is 0, which makes kube-proxy leave nf_conntrack_max (and the
// conntrack hash size) alone. Otherwise it raises nf_conntrack_max to 32768 per CPU at
// start, and fails if it cannot: inside a Docker container (a node in docker mode) it
// cannot, since nf_conntrack_max is read-only outside the host's initial network namespace
// and the hash size is a module parameter under /sys, which Docker mounts read-only. Both
// are host-wide settings anyway, which a node that is a container has no business changing.
// The per-namespace conntrack timeouts kube-proxy also sets are left at its defaults.
func kubeProxyConfig(cl config.ClusterSpec) ([]byte, error) {
	return yamlx.Marshal(kubeProxyConfiguration{
		APIVersion:       "kubeproxy.config.k8s.io/v1alpha1",
		Kind:             "KubeProxyConfiguration",
		ClientConnection: clientConnection{Kubeconfig: kubeProxyDir + "/" + kubeProxyKubeconfig},
		ClusterCIDR:      strings.Join(cl.Network.PodSubnets, ","),
		Mode:             cl.Proxy.Mode,
		Conntrack:        conntrack{MaxPerCore: ptr(0)},
	})
}

// kubeProxy returns kube-proxy's ServiceAccount, its binding to the API server's
// system:node-proxier role, its ConfigMap (configuration and kubeconfig) and DaemonSet.
//
// kube-proxy reaches the API server at the control-plane endpoint (see
// inClusterKubeconfig): it is what makes the kubernetes Service address work.
//
// cluster.proxy.extraArgs are passed as flags after --config. Note that kube-proxy, given a
// configuration file, ignores its other flags except the logging ones (such as -v) and
// --hostname-override.
func kubeProxy(cl config.ClusterSpec) ([]object, error) {
	endpoint, err := apiEndpoint(cl)
	if err != nil {
		return nil, err
	}
	conf, err := kubeProxyConfig(cl)
	if err != nil {
		return nil, err
	}
	kubeconfig, err := inClusterKubeconfig(endpoint)
	if err != nil {
		return nil, err
	}
	args := map[string]string{
		"config": kubeProxyDir + "/" + kubeProxyConfigKey,
		// The Node's name, which need not be the host name kube-proxy sees.
		"hostname-override": "$(NODE_NAME)",
	}
	for k, v := range cl.Proxy.ExtraArgs {
		args[strings.TrimLeft(k, "-")] = v
	}
	command := []string{ProxyBinary}
	for _, k := range slices.Sorted(maps.Keys(args)) {
		command = append(command, "--"+k+"="+args[k])
	}

	labels := map[string]string{"k8s-app": kubeProxyName}
	cmVol := volume{Name: kubeProxyName, ConfigMap: &configMapSource{Name: kubeProxyName}}
	cmMount := volumeMount{Name: kubeProxyName, MountPath: kubeProxyDir, ReadOnly: true}
	lockVol, lockMount := hostVolume("xtables-lock", XtablesLock, "FileOrCreate", false)
	// kube-proxy looks for kernel modules there (ipvs and nftables modes). No type: a
	// node that has none (a container) gets an empty directory.
	modVol, modMount := hostVolume("lib-modules", "/lib/modules", "", true)

	ds := object{
		APIVersion: "apps/v1",
		Kind:       "DaemonSet",
		Metadata:   objectMeta{Name: kubeProxyName, Namespace: namespace, Labels: labels},
		Spec: workloadSpec{
			Selector:       labelSelector{MatchLabels: labels},
			UpdateStrategy: &updateStrategy{Type: "RollingUpdate", RollingUpdate: &rollingUpdate{MaxUnavailable: 1}},
			Template: podTemplate{
				Metadata: objectMeta{Labels: labels},
				Spec: podSpec{
					ServiceAccountName: kubeProxyName,
					PriorityClassName:  "system-node-critical",
					HostNetwork:        true,
					NodeSelector:       map[string]string{osLabel: "linux"},
					Tolerations:        tolerateAll,
					Containers: []container{{
						Name:            kubeProxyName,
						Image:           cl.Proxy.Image,
						ImagePullPolicy: render.PullPolicy(cl.Proxy.Image),
						Command:         command,
						Env:             []envVar{fieldEnv("NODE_NAME", "spec.nodeName")},
						Resources:       resources{Requests: map[string]string{"cpu": "50m", "memory": "32Mi"}},
						// iptables, sysctls (route_localnet, conntrack timeouts).
						SecurityContext: &securityContext{Privileged: ptr(true)},
						VolumeMounts:    []volumeMount{cmMount, lockMount, modMount},
					}},
					Volumes: []volume{cmVol, lockVol, modVol},
				},
			},
		},
	}
	return []object{
		serviceAccount(kubeProxyName),
		clusterRoleBinding("plinth:kube-proxy", "system:node-proxier", serviceAccountSubject(kubeProxyName)),
		configMap(kubeProxyName, map[string]string{kubeProxyConfigKey: string(conf), kubeProxyKubeconfig: kubeconfig}),
		ds,
	}, nil
}
