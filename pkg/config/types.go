// Package config holds the machine configuration of a Plinth node: its Go types, strict
// decoding from YAML, defaults, validation and encoding (optionally with explanatory
// comments).
//
// A configuration file holds one YAML document of kind MachineConfig:
//
//	apiVersion: plinth.dev/v1alpha1
//	kind: MachineConfig
//	machine: {...}
//	cluster: {...}
//
// The doc comments of the types below are the source of the reference page
// docs/reference/config.md and of the comments written by `plinthctl gen config --with-docs`;
// run `make generate` after changing them.
//
// Every field that holds text also carries a `plinth` struct tag saying whether it may hold
// a secret (`secret`), is a URL that may carry credentials (`url`) or is never secret
// (`public`); Redact masks secrets by these tags alone (see TagKey). A new text field must
// be tagged: a test fails otherwise.
package config

// APIVersion is the only configuration API version this release understands.
const APIVersion = "plinth.dev/v1alpha1"

// KindMachineConfig is the kind of the machine configuration document.
const KindMachineConfig = "MachineConfig"

// MachineConfig is the whole configuration of one machine: what the machine is and
// which cluster it belongs to.
type MachineConfig struct {
	// APIVersion is the version of this document's schema. Always `plinth.dev/v1alpha1`.
	APIVersion string `yaml:"apiVersion" plinth:"public"`
	// Kind is the kind of this document. Always `MachineConfig`.
	Kind string `yaml:"kind" plinth:"public"`
	// Machine describes this machine: its role, its node API identity, disks, network
	// and the settings of the services it runs.
	Machine MachineSpec `yaml:"machine"`
	// Cluster describes the Kubernetes cluster the machine belongs to. Control-plane and
	// worker machines of one cluster share it, except that workers carry no CA keys.
	Cluster ClusterSpec `yaml:"cluster"`
}

// MachineType is the role of a machine in its cluster.
type MachineType string

// The machine types.
const (
	TypeControlPlane MachineType = "controlplane"
	TypeWorker       MachineType = "worker"
)

// MachineSpec is the machine part of the configuration.
type MachineSpec struct {
	// Type is the role of the machine: `controlplane` (runs etcd and the Kubernetes
	// control plane) or `worker`.
	Type MachineType `yaml:"type" plinth:"public"`
	// Token is the join token. A machine presents it to trustd on a control-plane node to
	// obtain its node API server certificate. Format: six and sixteen characters of
	// `[a-z0-9]` joined by a dot.
	Token string `yaml:"token" plinth:"secret"`
	// CA is the certificate authority of the node API (apid). Control-plane machines hold
	// the certificate and the key; workers hold only the certificate.
	CA CertAndKey `yaml:"ca"`
	// CertSANs are extra DNS names and IP addresses put in the node API server certificate,
	// besides the machine's own hostname and addresses.
	CertSANs []string `yaml:"certSANs,omitempty" plinth:"public"`
	// RevokedCertificates are the serial numbers, in hexadecimal as `plinthctl config info`
	// prints them, of node API client certificates that this machine refuses, whether they
	// connect to it directly or reach it forwarded by another node. Put the same list on
	// every machine of the cluster; a change takes effect without a reboot.
	RevokedCertificates []string `yaml:"revokedCertificates,omitempty" plinth:"public"`
	// Install says where and how the OS is installed: the installer reads it. Required in
	// `metal` mode. In Docker the node image is the installed OS: nothing reads it there,
	// and a change of it applies without a reboot (elsewhere it needs one).
	Install InstallSpec `yaml:"install,omitempty"`
	// Kubelet holds the settings of the kubelet on this machine.
	Kubelet KubeletSpec `yaml:"kubelet,omitempty"`
	// Network holds the machine's host name, interfaces, routes and name servers.
	Network NetworkSpec `yaml:"network,omitempty"`
	// Time holds the time synchronisation settings.
	Time TimeSpec `yaml:"time,omitempty"`
	// Sysctls are kernel parameters to set at boot and whenever they change, by their
	// dotted name (for example `net.ipv4.ip_forward: "1"`). In Docker only the sysctls of
	// the node container's own namespaces may be set: `net.*`, `kernel.shm*`, `kernel.msg*`,
	// `kernel.sem` and `fs.mqueue.*`.
	Sysctls map[string]string `yaml:"sysctls,omitempty" plinth:"public"`
	// Files are files written on the machine at boot, before containerd and kubelet start,
	// and whenever they change. Only paths under `/var` and `/etc/cri/conf.d` may be
	// written: the rest of the root file system is read-only. containerd imports
	// `/etc/cri/conf.d/*.toml`.
	Files []File `yaml:"files,omitempty"`
	// Env is the environment given to the machine's services, containerd and kubelet (for
	// example `HTTPS_PROXY`); a change restarts them.
	Env map[string]string `yaml:"env,omitempty" plinth:"secret"`
	// Registries configures how container images are pulled: mirrors per registry.
	Registries RegistriesSpec `yaml:"registries,omitempty"`
	// Logging configures where service and kernel logs are sent besides the node's own
	// log store.
	Logging LoggingSpec `yaml:"logging,omitempty"`
	// Metrics configures machined's Prometheus metrics.
	Metrics MetricsSpec `yaml:"metrics,omitempty"`
}

// MetricsSpec configures machined's Prometheus metrics: its services, health, resources,
// controllers, node API calls and log store.
type MetricsSpec struct {
	// Enabled serves them over HTTPS on port 50002 of the node's address, at /metrics, to
	// clients whose certificate, signed by the node API CA, carries a role that may read
	// them: `os:metrics` (made for Prometheus: it may do nothing else), `os:reader`,
	// `os:operator` or `os:admin`. They are also read through the node API
	// (`plinthctl metrics`). Off by default; a change applies without a reboot.
	Enabled bool `yaml:"enabled,omitempty"`
}

// CertAndKey is a PEM certificate and, optionally, its PEM private key, both base64-encoded
// in YAML.
type CertAndKey struct {
	// Crt is the PEM-encoded certificate, base64-encoded.
	Crt Base64 `yaml:"crt,omitempty" plinth:"public"`
	// Key is the PEM-encoded private key, base64-encoded. Absent on machines that must not
	// hold it.
	Key Base64 `yaml:"key,omitempty" plinth:"secret"`
}

// InstallSpec says where and how the OS is installed on a machine.
type InstallSpec struct {
	// Disk is the block device the OS is installed to (for example `/dev/sda` or
	// `/dev/nvme0n1`). Give it or DiskSelector.
	Disk string `yaml:"disk,omitempty" plinth:"public"`
	// DiskSelector picks the disk to install to by its properties, when the device name is
	// not known in advance: the first whole, writable disk (by name) that matches every
	// field given.
	DiskSelector *DiskSelector `yaml:"diskSelector,omitempty"`
	// Image is the installer image used for installation and upgrades. Empty means the
	// one matching the running OS version. Refused on metal for now: the installer
	// installs the OS of the install media it booted.
	Image string `yaml:"image,omitempty" plinth:"public"`
	// Wipe erases the whole disk before installing, instead of only the Plinth partitions.
	// The metal installer always writes a new partition table (the whole disk is erased).
	Wipe bool `yaml:"wipe,omitempty"`
	// ExtraKernelArgs are appended to the kernel command line of the installed system.
	ExtraKernelArgs []string `yaml:"extraKernelArgs,omitempty" plinth:"public"`
}

// KubeletSpec holds the kubelet settings of a machine.
type KubeletSpec struct {
	// Image is the kubelet image. Empty means the one bundled with the OS, whose kubelet is
	// the node's own; for another image (another Kubernetes version), the node runs the
	// kubelet program of that image, which must be in its image store.
	Image string `yaml:"image,omitempty" plinth:"public"`
	// ExtraArgs are extra command-line flags for the kubelet, without the leading dashes
	// (for example `max-pods: "150"`).
	ExtraArgs map[string]string `yaml:"extraArgs,omitempty" plinth:"secret"`
	// ExtraMounts are extra bind mounts made visible to the kubelet. Refused in Docker,
	// where kubelet runs as a process of the node container and sees all of it.
	ExtraMounts []Mount `yaml:"extraMounts,omitempty"`
	// NodeLabels are labels put on this machine's Kubernetes Node.
	NodeLabels map[string]string `yaml:"nodeLabels,omitempty" plinth:"public"`
	// NodeTaints are taints put on this machine's Kubernetes Node, as `key: value:Effect`
	// (or `key: :Effect` without a value). Effect is `NoSchedule`, `PreferNoSchedule` or
	// `NoExecute`.
	NodeTaints map[string]string `yaml:"nodeTaints,omitempty" plinth:"public"`
}

// Mount is a bind mount.
type Mount struct {
	// Source is the path on the machine.
	Source string `yaml:"source" plinth:"public"`
	// Destination is the path inside the kubelet's mount namespace. Must be absolute.
	Destination string `yaml:"destination" plinth:"public"`
	// Type is the file system type. Default `bind`.
	Type string `yaml:"type,omitempty" plinth:"public"`
	// Options are mount options (for example `rbind`, `rshared`, `ro`).
	Options []string `yaml:"options,omitempty" plinth:"public"`
}

// NetworkSpec holds the network settings of a machine.
type NetworkSpec struct {
	// Hostname is the machine's host name. Empty means one derived from the machine's
	// first address (or the container name in Docker).
	Hostname string `yaml:"hostname,omitempty" plinth:"public"`
	// Interfaces configures network links: physical ones by name, bonds, and VLANs on
	// top of them. Links not listed are left as they are. Refused in Docker, which gives a
	// node container its network.
	Interfaces []Interface `yaml:"interfaces,omitempty"`
	// Nameservers are the DNS servers used by the machine (/etc/resolv.conf), as IP
	// addresses. Empty means those learnt by DHCP.
	Nameservers []string `yaml:"nameservers,omitempty" plinth:"public"`
}

// Interface configures one network link.
type Interface struct {
	// Name is the link name (for example `eth0`, `enp3s0` or, for a bond, `bond0`).
	Name string `yaml:"name" plinth:"public"`
	// DHCP enables DHCPv4 on the link: the lease gives an address, routes (its classless
	// static routes, else a default route through its router, both shown as protocol
	// `dhcp`) and name servers. The lease is renewed while the machine runs and released
	// when it stops. The node's address is its first static address, else its first
	// lease's, chosen at boot: the server should keep giving the machine that address.
	DHCP bool `yaml:"dhcp,omitempty"`
	// Addresses are static addresses in CIDR notation (for example `192.168.1.10/24`).
	Addresses []string `yaml:"addresses,omitempty" plinth:"public"`
	// Routes are static routes through this link.
	Routes []Route `yaml:"routes,omitempty"`
	// MTU is the link's MTU in bytes (576 to 9216). Zero keeps the default.
	MTU int `yaml:"mtu,omitempty"`
	// VLANs are VLAN links created on top of this link.
	VLANs []VLAN `yaml:"vlans,omitempty"`
	// Bond makes this link a bond of other links.
	Bond *Bond `yaml:"bond,omitempty"`
	// Ignore leaves the link entirely alone.
	Ignore bool `yaml:"ignore,omitempty"`
}

// Route is a static route.
type Route struct {
	// Network is the destination in CIDR notation. Empty means the default route.
	Network string `yaml:"network,omitempty" plinth:"public"`
	// Gateway is the IP address of the next hop. Empty means an on-link route.
	Gateway string `yaml:"gateway,omitempty" plinth:"public"`
	// Source is the preferred source address for traffic on this route.
	Source string `yaml:"source,omitempty" plinth:"public"`
	// Metric is the route's priority; lower wins. Zero means the default of 1024.
	Metric uint32 `yaml:"metric,omitempty"`
}

// VLAN is a VLAN link on top of an interface.
type VLAN struct {
	// VLANID is the VLAN identifier, 1 to 4094.
	VLANID int `yaml:"vlanId"`
	// DHCP enables DHCPv4 on the VLAN link, as on an interface.
	DHCP bool `yaml:"dhcp,omitempty"`
	// Addresses are static addresses in CIDR notation.
	Addresses []string `yaml:"addresses,omitempty" plinth:"public"`
	// Routes are static routes through this VLAN link.
	Routes []Route `yaml:"routes,omitempty"`
	// MTU is the VLAN link's MTU in bytes. Zero keeps the parent's.
	MTU int `yaml:"mtu,omitempty"`
}

// Bond joins several links into one.
type Bond struct {
	// Interfaces are the names of the links that make up the bond.
	Interfaces []string `yaml:"interfaces" plinth:"public"`
	// Mode is the bonding mode: `balance-rr`, `active-backup`, `balance-xor`, `broadcast`,
	// `802.3ad`, `balance-tlb` or `balance-alb`.
	Mode string `yaml:"mode" plinth:"public"`
	// MIIMon is the link monitoring interval in milliseconds. Zero disables it.
	MIIMon uint32 `yaml:"miimon,omitempty"`
	// LACPRate is `slow` or `fast` (802.3ad only).
	LACPRate string `yaml:"lacpRate,omitempty" plinth:"public"`
}

// TimeSpec holds the time synchronisation settings. On metal the servers are polled over
// NTP: a clock off by more than 0.5 s is stepped, a nearer one slewed by the kernel;
// `plinthctl get timestatus` shows the state.
type TimeSpec struct {
	// Disabled turns time synchronisation off (for example when a hypervisor keeps time).
	Disabled bool `yaml:"disabled,omitempty"`
	// Servers are the NTP servers, as host names or IP addresses, tried in order. Empty
	// means `pool.ntp.org`. Refused in Docker, where a node shares the host's clock.
	Servers []string `yaml:"servers,omitempty" plinth:"public"`
}

// DiskSelector matches a disk by its properties.
type DiskSelector struct {
	// Size compares the disk's size: `>= 32GB`, `<= 2TB`, `> 100GiB`, or a size alone for
	// an exact match. Units: B, KB, MB, GB, TB (powers of 1000) and KiB, MiB, GiB, TiB.
	Size string `yaml:"size,omitempty" plinth:"public"`
	// Model is a glob matched against the disk's model (/sys/block/NAME/device/model, spaces
	// trimmed), such as `Samsung*`.
	Model string `yaml:"model,omitempty" plinth:"public"`
	// Bus is the disk's bus: `virtio`, `nvme`, `scsi`, `ata` or `usb`.
	Bus string `yaml:"bus,omitempty" plinth:"public"`
}

// File is a file written on the machine at boot.
type File struct {
	// Path is the absolute path of the file. Must be under `/var` or `/etc/cri/conf.d`.
	Path string `yaml:"path" plinth:"public"`
	// Content is the text written to the file.
	Content string `yaml:"content" plinth:"secret"`
	// Permissions are the file's mode bits, in octal (for example `0o644`). Default `0o644`.
	Permissions FileMode `yaml:"permissions,omitempty"`
	// Op is what to do when the file exists: `create` (leave it as it is), `overwrite` or
	// `append` (add the content unless the file already ends with it). Default `create`.
	// Files are written at every boot and whenever the configuration changes.
	Op string `yaml:"op,omitempty" plinth:"public"`
}

// RegistriesSpec configures image pulls.
type RegistriesSpec struct {
	// Mirrors maps a registry host (for example `docker.io`, or `*` for every registry) to
	// the mirrors tried before it.
	Mirrors map[string]Mirror `yaml:"mirrors,omitempty"`
}

// Mirror lists the mirrors of one registry.
type Mirror struct {
	// Endpoints are mirror URLs (`https://` or `http://`), tried in order.
	Endpoints []string `yaml:"endpoints" plinth:"url"`
	// SkipFallback stops pulls from falling back to the original registry when every
	// mirror fails.
	SkipFallback bool `yaml:"skipFallback,omitempty"`
}

// LoggingSpec configures log forwarding.
type LoggingSpec struct {
	// Destinations receive every service's and the kernel's log lines. Not supported yet:
	// refused in Docker.
	Destinations []LogDestination `yaml:"destinations,omitempty"`
}

// LogDestination is one place logs are sent to.
type LogDestination struct {
	// Endpoint is where to send: `tcp://HOST:PORT` or `udp://HOST:PORT`.
	Endpoint string `yaml:"endpoint" plinth:"url"`
	// Format is the wire format. Only `json_lines` (one JSON object per line) for now.
	Format string `yaml:"format,omitempty" plinth:"public"`
}

// ClusterSpec is the cluster part of the configuration.
type ClusterSpec struct {
	// ID is the cluster's unique identifier (random, base64), generated with the secrets.
	ID string `yaml:"id" plinth:"public"`
	// Secret is the cluster's shared secret (random, base64), used by machines of one
	// cluster to recognise each other. Generated with the secrets.
	Secret string `yaml:"secret" plinth:"secret"`
	// Name is the cluster's name: lower-case letters, digits and `-`, at most 63
	// characters. Used in kubeconfig and plinthconfig contexts.
	Name string `yaml:"name" plinth:"public"`
	// ControlPlane says how to reach the Kubernetes API of the cluster.
	ControlPlane ControlPlaneSpec `yaml:"controlPlane"`
	// Network holds the cluster's subnets, DNS domain and CNI.
	Network ClusterNetworkSpec `yaml:"network,omitempty"`
	// Token is the Kubernetes bootstrap token with which kubelets first join the cluster.
	// Format: six and sixteen characters of `[a-z0-9]` joined by a dot.
	Token string `yaml:"token" plinth:"secret"`
	// SecretboxEncryptionSecret is the key (32 random bytes, base64) with which the API
	// server encrypts Secrets in etcd. Control-plane only.
	SecretboxEncryptionSecret string `yaml:"secretboxEncryptionSecret,omitempty" plinth:"secret"`
	// CA is the Kubernetes certificate authority. Workers hold only the certificate.
	CA CertAndKey `yaml:"ca"`
	// AggregatorCA is the front-proxy certificate authority of the API aggregation layer.
	// Control-plane only.
	AggregatorCA CertAndKey `yaml:"aggregatorCA,omitempty"`
	// ServiceAccount holds the key that signs service account tokens. Control-plane only.
	ServiceAccount ServiceAccountSpec `yaml:"serviceAccount,omitempty"`
	// APIServer holds kube-apiserver settings.
	APIServer APIServerSpec `yaml:"apiServer,omitempty"`
	// ControllerManager holds kube-controller-manager settings.
	ControllerManager ComponentSpec `yaml:"controllerManager,omitempty"`
	// Scheduler holds kube-scheduler settings.
	Scheduler ComponentSpec `yaml:"scheduler,omitempty"`
	// Proxy holds kube-proxy settings.
	Proxy ProxySpec `yaml:"proxy,omitempty"`
	// Etcd holds etcd settings and its certificate authority (control-plane only).
	Etcd EtcdSpec `yaml:"etcd,omitempty"`
	// CoreDNS holds the cluster DNS settings.
	CoreDNS CoreDNSSpec `yaml:"coreDNS,omitempty"`
	// ExtraManifests are URLs of Kubernetes manifests applied after bootstrap.
	ExtraManifests []string `yaml:"extraManifests,omitempty" plinth:"url"`
	// InlineManifests are Kubernetes manifests carried in the configuration and applied
	// after bootstrap.
	InlineManifests []InlineManifest `yaml:"inlineManifests,omitempty"`
	// AllowSchedulingOnControlPlanes lets ordinary workloads run on control-plane nodes
	// (no `NoSchedule` taint on them). Useful for single-node clusters.
	AllowSchedulingOnControlPlanes bool `yaml:"allowSchedulingOnControlPlanes,omitempty"`
}

// ControlPlaneSpec says how to reach the Kubernetes API.
type ControlPlaneSpec struct {
	// Endpoint is the Kubernetes API URL: `https://HOST:PORT`, where HOST is a DNS name or
	// an IP address that reaches the control-plane nodes (a load balancer, a virtual IP or
	// one node's address).
	Endpoint string `yaml:"endpoint" plinth:"url"`
}

// ClusterNetworkSpec holds the cluster-wide network settings.
type ClusterNetworkSpec struct {
	// DNSDomain is the cluster's DNS domain. Default `cluster.local`.
	DNSDomain string `yaml:"dnsDomain,omitempty" plinth:"public"`
	// PodSubnets are the networks pod addresses come from, in CIDR notation (one per IP
	// family). Default `10.244.0.0/16`.
	PodSubnets []string `yaml:"podSubnets,omitempty" plinth:"public"`
	// ServiceSubnets are the networks Service addresses come from, in CIDR notation (one
	// per IP family). Default `10.96.0.0/12`.
	ServiceSubnets []string `yaml:"serviceSubnets,omitempty" plinth:"public"`
	// CNI is the pod network plugin.
	CNI CNISpec `yaml:"cni,omitempty"`
}

// CNISpec selects the pod network plugin.
type CNISpec struct {
	// Name is `plinth` (the default: built into machined, no pod of its own on the nodes),
	// `flannel` (bundled), `custom` (the manifests in URLs) or `none` (install one
	// yourself after bootstrap).
	Name string `yaml:"name,omitempty" plinth:"public"`
	// URLs are the manifests of a `custom` CNI.
	URLs []string `yaml:"urls,omitempty" plinth:"url"`
	// Backend is how the `plinth` or `flannel` CNI carries pod traffic between nodes:
	// `host-gw` (the default: routes through each node's address, no encapsulation; the
	// nodes share one L2 network) or `vxlan` (encapsulated in UDP between the nodes'
	// addresses, for networks that pass only traffic between those, such as the Docker
	// internal network of `cluster create --isolated`; needs the host's vxlan module).
	Backend string `yaml:"backend,omitempty" plinth:"public"`
	// FlannelBackend is the older name of Backend; set one of them.
	FlannelBackend string `yaml:"flannelBackend,omitempty" plinth:"public"`
}

// EffectiveBackend is the back end of the `plinth` or `flannel` CNI: Backend, else
// FlannelBackend, else host-gw.
func (c CNISpec) EffectiveBackend() string {
	switch {
	case c.Backend != "":
		return c.Backend
	case c.FlannelBackend != "":
		return c.FlannelBackend
	}
	return FlannelHostGW
}

// ServiceAccountSpec holds the service account signing key.
type ServiceAccountSpec struct {
	// Key is the PEM private key (base64) that signs service account tokens.
	Key Base64 `yaml:"key,omitempty" plinth:"secret"`
}

// ComponentSpec holds the settings shared by the Kubernetes control-plane components.
type ComponentSpec struct {
	// Image is the component's container image. Empty means the bundled one.
	Image string `yaml:"image,omitempty" plinth:"public"`
	// ExtraArgs are extra command-line flags, without the leading dashes.
	ExtraArgs map[string]string `yaml:"extraArgs,omitempty" plinth:"secret"`
}

// APIServerSpec holds kube-apiserver settings.
type APIServerSpec struct {
	// Image is the kube-apiserver container image. Empty means the bundled one.
	Image string `yaml:"image,omitempty" plinth:"public"`
	// ExtraArgs are extra command-line flags, without the leading dashes.
	ExtraArgs map[string]string `yaml:"extraArgs,omitempty" plinth:"secret"`
	// CertSANs are extra DNS names and IP addresses in the API server's certificate,
	// besides the control-plane endpoint's host and the nodes' addresses.
	CertSANs []string `yaml:"certSANs,omitempty" plinth:"public"`
}

// ProxySpec holds kube-proxy settings.
type ProxySpec struct {
	// Image is the kube-proxy container image. Empty means the bundled one.
	Image string `yaml:"image,omitempty" plinth:"public"`
	// ExtraArgs are extra command-line flags, without the leading dashes.
	ExtraArgs map[string]string `yaml:"extraArgs,omitempty" plinth:"secret"`
	// Mode is the proxy mode: `iptables` (default), `ipvs` or `nftables`.
	Mode string `yaml:"mode,omitempty" plinth:"public"`
	// Disabled leaves kube-proxy out (for a CNI that replaces it).
	Disabled bool `yaml:"disabled,omitempty"`
}

// EtcdSpec holds etcd settings.
type EtcdSpec struct {
	// Image is the etcd container image. Empty means the bundled one.
	Image string `yaml:"image,omitempty" plinth:"public"`
	// ExtraArgs are extra command-line flags, without the leading dashes.
	ExtraArgs map[string]string `yaml:"extraArgs,omitempty" plinth:"secret"`
	// CA is the etcd certificate authority. Control-plane only.
	CA CertAndKey `yaml:"ca,omitempty"`
	// Snapshots are snapshots of etcd that each control plane takes by itself, on its own
	// disk (/var/lib/plinth/etcd-snapshots). Off unless Interval is set; a change applies
	// without a reboot.
	Snapshots EtcdSnapshotsSpec `yaml:"snapshots,omitempty"`
}

// EtcdSnapshotsSpec schedules etcd snapshots.
type EtcdSnapshotsSpec struct {
	// Interval is the time between two snapshots, such as `6h` or `30m` (at least `1m`).
	// Empty means no scheduled snapshot.
	Interval string `yaml:"interval,omitempty" plinth:"public"`
	// Keep is how many snapshots are kept; the oldest go first. Default 24.
	Keep int `yaml:"keep,omitempty"`
}

// CoreDNSSpec holds the cluster DNS settings.
type CoreDNSSpec struct {
	// Image is the CoreDNS container image. Empty means the bundled one.
	Image string `yaml:"image,omitempty" plinth:"public"`
	// Disabled leaves CoreDNS out.
	Disabled bool `yaml:"disabled,omitempty"`
}

// InlineManifest is a Kubernetes manifest carried in the configuration.
type InlineManifest struct {
	// Name identifies the manifest (used in events and when patching).
	Name string `yaml:"name" plinth:"public"`
	// Contents is the manifest's YAML (one or more documents).
	Contents string `yaml:"contents" plinth:"secret"`
}
