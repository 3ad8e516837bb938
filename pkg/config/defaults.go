package config

// Defaults for fields left empty.
const (
	// DefaultKubernetesVersion is the Kubernetes version this release bundles.
	DefaultKubernetesVersion = "v1.37.2"
	// DefaultImageRepository prefixes the images bundled in the node image. The name is
	// ours: the images are built here, not pulled from any registry.
	DefaultImageRepository = "plinth.local"
	// DefaultEtcdVersion is the etcd version this release bundles.
	DefaultEtcdVersion = "v3.7.3"
	// DefaultCoreDNSVersion is the CoreDNS version this release bundles.
	DefaultCoreDNSVersion = "v1.15.0"

	DefaultDNSDomain     = "cluster.local"
	DefaultPodSubnet     = "10.244.0.0/16"
	DefaultServiceSubnet = "10.96.0.0/12"
	DefaultCNI           = "plinth"
	// DefaultEtcdSnapshotsKeep is cluster.etcd.snapshots.keep when it is 0.
	DefaultEtcdSnapshotsKeep = 24
	// FlannelHostGW and FlannelVXLAN are the values of cluster.network.cni.backend (and of
	// its older name flannelBackend); empty means FlannelHostGW.
	FlannelHostGW    = "host-gw"
	FlannelVXLAN     = "vxlan"
	DefaultProxyMode = "iptables"
	DefaultFileMode  = FileMode(0o644)
	DefaultFileOp    = "create"
	DefaultLogFormat = "json_lines"
	DefaultMountType = "bind"
	// DefaultTimeServer is polled when machine.time.servers is empty (and time
	// synchronisation is not disabled).
	DefaultTimeServer = "pool.ntp.org"
)

// Images names the container images of one Kubernetes version.
type Images struct {
	APIServer, ControllerManager, Scheduler, Proxy, Kubelet, Etcd, CoreDNS string
}

// ImagesFor returns the bundled image names for a Kubernetes version (such as `v1.37.2`).
func ImagesFor(kubernetesVersion string) Images {
	k := func(name string) string { return DefaultImageRepository + "/" + name + ":" + kubernetesVersion }
	return Images{
		APIServer:         k("kube-apiserver"),
		ControllerManager: k("kube-controller-manager"),
		Scheduler:         k("kube-scheduler"),
		Proxy:             k("kube-proxy"),
		Kubelet:           k("kubelet"),
		Etcd:              DefaultImageRepository + "/etcd:" + DefaultEtcdVersion,
		CoreDNS:           DefaultImageRepository + "/coredns:" + DefaultCoreDNSVersion,
	}
}

// ApplyDefaults fills every empty field that has a default. It does not touch secrets.
func ApplyDefaults(c *MachineConfig) {
	setDefault := func(s *string, v string) {
		if *s == "" {
			*s = v
		}
	}
	images := ImagesFor(DefaultKubernetesVersion)
	cl := &c.Cluster
	setDefault(&cl.Network.DNSDomain, DefaultDNSDomain)
	if len(cl.Network.PodSubnets) == 0 {
		cl.Network.PodSubnets = []string{DefaultPodSubnet}
	}
	if len(cl.Network.ServiceSubnets) == 0 {
		cl.Network.ServiceSubnets = []string{DefaultServiceSubnet}
	}
	setDefault(&cl.Network.CNI.Name, DefaultCNI)
	setDefault(&cl.APIServer.Image, images.APIServer)
	setDefault(&cl.ControllerManager.Image, images.ControllerManager)
	setDefault(&cl.Scheduler.Image, images.Scheduler)
	setDefault(&cl.Proxy.Image, images.Proxy)
	setDefault(&cl.Proxy.Mode, DefaultProxyMode)
	setDefault(&cl.Etcd.Image, images.Etcd)
	setDefault(&cl.CoreDNS.Image, images.CoreDNS)
	setDefault(&c.Machine.Kubelet.Image, images.Kubelet)
	for i := range c.Machine.Files {
		f := &c.Machine.Files[i]
		if f.Permissions == 0 {
			f.Permissions = DefaultFileMode
		}
		setDefault(&f.Op, DefaultFileOp)
	}
	for i := range c.Machine.Kubelet.ExtraMounts {
		setDefault(&c.Machine.Kubelet.ExtraMounts[i].Type, DefaultMountType)
	}
	for i := range c.Machine.Logging.Destinations {
		setDefault(&c.Machine.Logging.Destinations[i].Format, DefaultLogFormat)
	}
}
