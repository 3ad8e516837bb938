package addons

import (
	"encoding/json"
	"fmt"
	"net/netip"

	"github.com/plinthos/plinth/internal/k8s/render"
	"github.com/plinthos/plinth/pkg/config"
)

// The flannel image, built and bundled with the node image (payload/images.lock). The
// configuration has no field for it.
const (
	FlannelVersion = "v0.28.10"
	FlannelImage   = config.DefaultImageRepository + "/flannel:" + FlannelVersion
)

// Where flanneld keeps its state on the node.
const (
	// FlannelRunDir is the host directory flanneld writes SubnetEnvFile in.
	FlannelRunDir = "/run/flannel"
	// SubnetEnvFile is the node's lease as flanneld writes it (FLANNEL_NETWORK,
	// FLANNEL_SUBNET, FLANNEL_MTU, FLANNEL_IPMASQ): the input of CNIConfig.
	SubnetEnvFile = FlannelRunDir + "/subnet.env"
)

const (
	flannelName = "flannel"
	// flannelConfigMap holds net-conf.json and the kubeconfig, mounted at flannelConfDir.
	flannelConfigMap  = "kube-flannel-cfg"
	flannelConfDir    = "/etc/kube-flannel"
	flannelNetConfKey = "net-conf.json"
	flannelKubeconfig = "kubeconfig"
	flannelBinary     = "/usr/bin/flanneld"
)

// flannelNetConf is flanneld's network configuration (net-conf.json).
type flannelNetConf struct {
	Network     string         `json:"Network,omitempty"`
	IPv6Network string         `json:"IPv6Network,omitempty"`
	EnableIPv4  *bool          `json:"EnableIPv4,omitempty"` // flanneld's default is true
	EnableIPv6  bool           `json:"EnableIPv6,omitempty"`
	Backend     flannelBackend `json:"Backend"`
}

type flannelBackend struct {
	Type string `json:"Type"`
}

// netConf returns net-conf.json for the pod subnets: the IPv4 one as Network, the IPv6 one
// as IPv6Network. The subnets must match kube-controller-manager's --cluster-cidr: flanneld
// takes each node's subnet from its Node's podCIDRs and checks it is in the network.
//
// The backend is host-gw unless the configuration says vxlan: flanneld routes each other
// node's pod subnet through that node's address, with no encapsulation. That needs the
// nodes on one L2 network, which they are in Docker (one bridge network per cluster), and
// needs no kernel module: vxlan needs the vxlan module, which a node that is a container
// cannot load (the Docker host must have it), and costs every packet 50 bytes of
// encapsulation. But a Docker internal network (cluster create --isolated) drops on the
// host whatever crosses its bridge without a node address at both ends, pod traffic
// between nodes included; vxlan carries that between the nodes' addresses.
func netConf(podSubnets []string, backend string) ([]byte, error) {
	if backend == "" {
		backend = config.FlannelHostGW
	}
	nc := flannelNetConf{Backend: flannelBackend{Type: backend}}
	for _, s := range podSubnets {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return nil, fmt.Errorf("pod subnet %q: %w", s, err)
		}
		switch {
		case p.Addr().Is4() && nc.Network == "":
			nc.Network = p.Masked().String()
		case p.Addr().Is6() && nc.IPv6Network == "":
			nc.IPv6Network = p.Masked().String()
			nc.EnableIPv6 = true
		}
	}
	if nc.Network == "" {
		nc.EnableIPv4 = ptr(false)
		if nc.IPv6Network == "" {
			return nil, fmt.Errorf("no pod subnet")
		}
	}
	return json.MarshalIndent(nc, "", "  ")
}

// flannel returns flanneld's ServiceAccount, ClusterRole and binding, ConfigMap and
// DaemonSet, in kube-system. Nothing installs a CNI plugin or configuration from the
// DaemonSet: machined writes the node's CNI configuration (CNIConfig) once flanneld has
// written SubnetEnvFile, and the bridge, host-local and portmap plugins are in the node
// image.
func flannel(cl config.ClusterSpec) ([]object, error) {
	endpoint, err := apiEndpoint(cl)
	if err != nil {
		return nil, err
	}
	nc, err := netConf(cl.Network.PodSubnets, cl.Network.CNI.EffectiveBackend())
	if err != nil {
		return nil, err
	}
	kubeconfig, err := inClusterKubeconfig(endpoint)
	if err != nil {
		return nil, err
	}
	command := []string{
		flannelBinary,
		// Lease the node's subnet from its Node object (podCIDRs, set by
		// kube-controller-manager's --allocate-node-cidrs) instead of from etcd.
		"--kube-subnet-mgr",
		// Reach the API server at the control-plane endpoint, not through the kubernetes
		// Service, which needs kube-proxy running.
		"--kubeconfig-file=" + flannelConfDir + "/" + flannelKubeconfig,
		"--net-config-path=" + flannelConfDir + "/" + flannelNetConfKey,
		"--subnet-file=" + SubnetEnvFile,
		// Masquerade pod traffic that leaves the pod network (FLANNEL_IPMASQ=true, so the
		// bridge plugin does not).
		"--ip-masq",
		// Route through the address kubelet reports for the node (status.hostIP), so that
		// flanneld's next hops and the Node's InternalIP agree on a node with several
		// interfaces.
		"--iface=$(NODE_IP)",
	}
	labels := map[string]string{"k8s-app": flannelName}
	runVol, runMount := hostVolume("run-flannel", FlannelRunDir, "DirectoryOrCreate", false)
	lockVol, lockMount := hostVolume("xtables-lock", XtablesLock, "FileOrCreate", false)
	cfgVol := volume{Name: flannelConfigMap, ConfigMap: &configMapSource{Name: flannelConfigMap}}
	cfgMount := volumeMount{Name: flannelConfigMap, MountPath: flannelConfDir, ReadOnly: true}

	ds := object{
		APIVersion: "apps/v1",
		Kind:       "DaemonSet",
		Metadata:   objectMeta{Name: "kube-flannel", Namespace: namespace, Labels: labels},
		Spec: workloadSpec{
			Selector:       labelSelector{MatchLabels: labels},
			UpdateStrategy: &updateStrategy{Type: "RollingUpdate", RollingUpdate: &rollingUpdate{MaxUnavailable: 1}},
			Template: podTemplate{
				Metadata: objectMeta{Labels: labels},
				Spec: podSpec{
					ServiceAccountName: flannelName,
					PriorityClassName:  "system-node-critical",
					HostNetwork:        true,
					NodeSelector:       map[string]string{osLabel: "linux"},
					Tolerations:        tolerateAll,
					Containers: []container{{
						Name:            "kube-flannel",
						Image:           FlannelImage,
						ImagePullPolicy: render.PullPolicy(FlannelImage),
						Command:         command,
						Env: []envVar{
							// NODE_NAME spares flanneld reading its own Pod to find its node
							// (and the permission to).
							fieldEnv("NODE_NAME", "spec.nodeName"),
							fieldEnv("NODE_IP", "status.hostIP"),
							fieldEnv("POD_NAME", "metadata.name"),
							fieldEnv("POD_NAMESPACE", "metadata.namespace"),
						},
						Resources: resources{Requests: map[string]string{"cpu": "50m", "memory": "50Mi"}},
						// Routes and iptables rules in the node's network namespace.
						SecurityContext: &securityContext{
							Privileged:   ptr(false),
							Capabilities: &capabilities{Add: []string{"NET_ADMIN", "NET_RAW"}},
						},
						VolumeMounts: []volumeMount{runMount, cfgMount, lockMount},
					}},
					Volumes: []volume{runVol, cfgVol, lockVol},
				},
			},
		},
	}
	return []object{
		serviceAccount(flannelName),
		clusterRole("plinth:flannel",
			// Watch the Nodes for the other nodes' subnets and addresses.
			policyRule{APIGroups: []string{""}, Resources: []string{"nodes"}, Verbs: []string{"get", "list", "watch"}},
			// Annotate its own Node with its address and clear NetworkUnavailable.
			policyRule{APIGroups: []string{""}, Resources: []string{"nodes/status"}, Verbs: []string{"patch"}},
		),
		clusterRoleBinding("plinth:flannel", "plinth:flannel", serviceAccountSubject(flannelName)),
		configMap(flannelConfigMap, map[string]string{flannelNetConfKey: string(nc) + "\n", flannelKubeconfig: kubeconfig}),
		ds,
	}, nil
}
