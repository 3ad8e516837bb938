// Package resources defines machined's resource types: their specs, namespaces, ids and
// the definitions clients see with `plinthctl get rd`.
package resources

import (
	"github.com/plinthos/plinth/internal/resource"
	"github.com/plinthos/plinth/pkg/config"
)

// Namespaces.
const (
	NamespaceConfig  = "config"
	NamespaceNetwork = "network"
	NamespaceRuntime = "runtime"
	NamespaceSecrets = "secrets"
	NamespaceCluster = "cluster"
	NamespaceK8s     = "k8s"
	NamespaceEtcd    = "etcd"
	NamespaceBlock   = "block"
)

// Type names.
const (
	MachineConfigType  = "MachineConfigs.config.plinth.dev"
	HostnameType       = "Hostnames.network.plinth.dev"
	NodeAddressType    = "NodeAddresses.network.plinth.dev"
	NodeIdentityType   = "NodeIdentities.cluster.plinth.dev"
	VersionType        = "Versions.runtime.plinth.dev"
	ServiceType        = "Services.runtime.plinth.dev"
	APICertificateType = "APICertificates.secrets.plinth.dev"
	KubeletSpecType    = "KubeletSpecs.k8s.plinth.dev"
	EtcdStateType      = "EtcdStates.etcd.plinth.dev"
	StaticPodsType     = "StaticPodSets.k8s.plinth.dev"
	LinkStatusType     = "LinkStatuses.network.plinth.dev"
	AddressStatusType  = "AddressStatuses.network.plinth.dev"
	RouteStatusType    = "RouteStatuses.network.plinth.dev"
	DiskStatusType     = "DiskStatuses.block.plinth.dev"
	TimeStatusType     = "TimeStatuses.runtime.plinth.dev"
	DHCPLeaseType      = "DHCPLeases.network.plinth.dev"
	UpgradeStatusType  = "UpgradeStatuses.runtime.plinth.dev"
)

// Well-known ids.
const (
	ActiveID   = "active"
	HostnameID = "hostname"
	DefaultID  = "default"
	LocalID    = "local"
	VersionID  = "version"
	APIID      = "api"
)

// MachineConfigSpec is the active machine configuration.
type MachineConfigSpec struct {
	Config *config.MachineConfig `yaml:"config"`
}

// HostnameSpec is the node's host name.
type HostnameSpec struct {
	Hostname   string `yaml:"hostname"`
	Domainname string `yaml:"domainname,omitempty"`
}

// FQDN returns hostname.domainname, or the hostname alone.
func (h HostnameSpec) FQDN() string {
	if h.Domainname == "" {
		return h.Hostname
	}
	return h.Hostname + "." + h.Domainname
}

// NodeAddressSpec lists the addresses under which the node is reached.
type NodeAddressSpec struct {
	Addresses []string `yaml:"addresses"`
}

// NodeIdentitySpec is the node's stable random identity.
type NodeIdentitySpec struct {
	NodeID string `yaml:"nodeId"`
}

// VersionSpec is the running OS version.
type VersionSpec struct {
	Tag       string `yaml:"tag"`
	GoVersion string `yaml:"goVersion"`
	OS        string `yaml:"os"`
	Arch      string `yaml:"arch"`
	Platform  string `yaml:"platform"`
}

// ServiceSpec mirrors a supervised service's state.
type ServiceSpec struct {
	State   string `yaml:"state"`
	Running bool   `yaml:"running"`
	Healthy bool   `yaml:"healthy"`
	// HealthUnknown is set when the service has no health check (or none ran yet).
	HealthUnknown bool   `yaml:"healthUnknown"`
	Message       string `yaml:"message,omitempty"`
}

// APICertificateSpec is the node API identity used by apid.
type APICertificateSpec struct {
	CA  []byte `yaml:"ca"`
	Crt []byte `yaml:"crt"`
	Key []byte `yaml:"key"`
}

// KubeletSpecSpec is what kubelet runs with; the files it names are written when it is set.
type KubeletSpecSpec struct {
	// Args are kubelet's command-line arguments.
	Args []string `yaml:"args"`
	// ControlPlane is set on control-plane nodes.
	ControlPlane bool `yaml:"controlPlane"`
	// Image is machine.kubelet.image: the image whose kubelet program runs (the node's own
	// for the bundled image).
	Image string `yaml:"image,omitempty"`
	// Generation changes whenever what kubelet reads changes: its arguments, its
	// configuration file, its certificates and kubeconfigs, the pods' resolv.conf. kubelet
	// runs again when it changes.
	Generation string `yaml:"generation"`
	// ContainerdGeneration changes whenever containerd's configuration changes; containerd
	// runs again when it changes (running containers keep running).
	ContainerdGeneration string `yaml:"containerdGeneration"`
}

// EtcdStateSpec says whether and how this node runs etcd.
type EtcdStateSpec struct {
	// Role is the node's decision: bootstrap (a new cluster started here), join (added to
	// the cluster's etcd), member (holds etcd data from before), or empty (undecided).
	Role string `yaml:"role,omitempty"`
	// Run is set once the node should run etcd (bootstrapped here, or already a member).
	Run bool `yaml:"run"`
	// ClusterState is "new" for the bootstrap, "existing" otherwise.
	ClusterState string `yaml:"clusterState,omitempty"`
	// InitialCluster is etcd's --initial-cluster.
	InitialCluster string `yaml:"initialCluster,omitempty"`
}

// StaticPodSetSpec lists the static pod manifests written for kubelet.
type StaticPodSetSpec struct {
	Pods []string `yaml:"pods"`
}

// LinkStatusSpec is a network link as the kernel sees it. Its ID is the link's name.
type LinkStatusSpec struct {
	// Index is the kernel's interface index.
	Index int `yaml:"index"`
	// Type is the link layer: ether, loopback, none, ...
	Type string `yaml:"type"`
	// Kind is the driver kind of virtual links (veth, vlan, bond, bridge, dummy, ...); it is
	// empty for hardware devices and the loopback.
	Kind string `yaml:"kind,omitempty"`
	// HardwareAddr is the MAC address, when the link has one.
	HardwareAddr string `yaml:"hardwareAddr,omitempty"`
	// MTU in bytes.
	MTU int `yaml:"mtu"`
	// OperationalState is the RFC 2863 state: up, down, lower-layer-down, dormant, unknown, ...
	OperationalState string `yaml:"operationalState"`
	// Up is set when the link is administratively up.
	Up bool `yaml:"up"`
	// Parent is the link this one stacks on (the parent of a VLAN).
	Parent string `yaml:"parent,omitempty"`
	// Master is the bond or bridge the link is enslaved to.
	Master string `yaml:"master,omitempty"`
	// VLANID is the VLAN id of VLAN links.
	VLANID int `yaml:"vlanId,omitempty"`
}

// AddressStatusSpec is an address assigned to a link. Its ID is "link/address/prefix".
type AddressStatusSpec struct {
	// Link is the name of the link holding the address.
	Link string `yaml:"link"`
	// LinkIndex is the link's interface index.
	LinkIndex int `yaml:"linkIndex"`
	// Address with its prefix length, for example 10.5.0.2/24.
	Address string `yaml:"address"`
	// Family is ipv4 or ipv6.
	Family string `yaml:"family"`
	// Scope is universe (global), site, link or host.
	Scope string `yaml:"scope"`
	// Flags are the kernel's address flags of note: permanent, tentative, deprecated,
	// dadfailed, ...
	Flags []string `yaml:"flags,omitempty"`
}

// RouteStatusSpec is a route of one of the kernel's routing tables. Its ID is unique per
// route: "family/table/destination/gateway/link/metric", with "-" for a missing part.
type RouteStatusSpec struct {
	// Table is the routing table: main, local, default or its number.
	Table string `yaml:"table"`
	// Family is ipv4 or ipv6.
	Family string `yaml:"family"`
	// Type is unicast, local, broadcast, multicast, anycast, blackhole, unreachable, ...
	Type string `yaml:"type"`
	// Destination is the destination prefix, "default" for a default route.
	Destination string `yaml:"destination"`
	// Gateway is the next hop (nexthops of multipath routes are comma-separated).
	Gateway string `yaml:"gateway,omitempty"`
	// Link is the name of the output link (comma-separated for multipath routes).
	Link string `yaml:"link,omitempty"`
	// Source is the preferred source address.
	Source string `yaml:"source,omitempty"`
	// Metric is the route's priority; lower wins.
	Metric int `yaml:"metric"`
	// Scope is universe, site, link, host or nowhere.
	Scope string `yaml:"scope"`
	// Protocol is what installed the route: kernel, boot, static, dhcp, ra, ...
	Protocol string `yaml:"protocol"`
}

// DiskStatusSpec is a block device as sysfs shows it. Its ID is the device name (vda,
// nvme0n1, sda).
type DiskStatusSpec struct {
	// Size in bytes.
	Size uint64 `yaml:"size"`
	// Model and Serial, when the device reports them.
	Model  string `yaml:"model,omitempty"`
	Serial string `yaml:"serial,omitempty"`
	// Rotational is set for spinning disks.
	Rotational bool `yaml:"rotational"`
	// ReadOnly is set when the kernel refuses writes to the device.
	ReadOnly bool `yaml:"readOnly"`
	// Removable is set for removable media.
	Removable bool `yaml:"removable"`
	// Transport is the bus the device hangs off, when known: virtio, nvme, ata, scsi, usb,
	// mmc, virtual.
	Transport string `yaml:"transport,omitempty"`
	// Partitions in partition-number order.
	Partitions []DiskPartition `yaml:"partitions,omitempty"`
}

// DiskPartition is one partition of a disk.
type DiskPartition struct {
	// Name is the partition's device name, for example vda1.
	Name string `yaml:"name"`
	// Number is the partition number.
	Number int `yaml:"number"`
	// Label is the partition's name in its table (GPT PARTNAME), when it has one.
	Label string `yaml:"label,omitempty"`
	// Size in bytes.
	Size uint64 `yaml:"size"`
}

// Time synchronisation states of TimeStatusSpec.
const (
	TimeSynced   = "synced"
	TimeSyncing  = "syncing"
	TimeDisabled = "disabled"
)

// TimeStatusSpec says whether the system clock follows NTP servers. Its ID is "default".
type TimeStatusSpec struct {
	// State is synced (the last poll steered the clock), syncing (no server has answered
	// the last poll yet) or disabled (machine.time.disabled).
	State string `yaml:"state"`
	// Servers are the servers polled, in order.
	Servers []string `yaml:"servers,omitempty"`
	// Server is the server whose answer last steered the clock.
	Server string `yaml:"server,omitempty"`
	// Offset is how far off the clock was at that poll, before the correction (positive:
	// the clock was behind), as a Go duration such as 1.2ms.
	Offset string `yaml:"offset,omitempty"`
	// Stepped is set when that correction was a step rather than a slew.
	Stepped bool `yaml:"stepped,omitempty"`
	// LastSync is when that was, in RFC 3339.
	LastSync string `yaml:"lastSync,omitempty"`
	// Error says why the last poll failed.
	Error string `yaml:"error,omitempty"`
}

// DHCPLeaseSpec is the DHCPv4 lease a link holds. Its ID is the link's name.
type DHCPLeaseSpec struct {
	// Address is the leased address with its prefix length.
	Address string `yaml:"address"`
	// Server is the DHCP server that granted it.
	Server string `yaml:"server,omitempty"`
	// Gateway is the router of its default route, when it gives one.
	Gateway string `yaml:"gateway,omitempty"`
	// Routes are the other routes it gives, as DESTINATION or DESTINATION via GATEWAY.
	Routes []string `yaml:"routes,omitempty"`
	// DNS are its name servers; they go to /etc/resolv.conf unless
	// machine.network.nameservers is set.
	DNS []string `yaml:"dns,omitempty"`
	// Search are its domain name and search domains.
	Search []string `yaml:"search,omitempty"`
	// Acquired is when it was granted or last extended, Renew when it is renewed (T1),
	// Expires when it ends unless it is: RFC 3339.
	Acquired string `yaml:"acquired"`
	Renew    string `yaml:"renew"`
	Expires  string `yaml:"expires"`
}

// UpgradeStatusSpec is the node's OS slots and its last upgrade. Its ID is "default".
type UpgradeStatusSpec struct {
	// Booted is the slot running, A or B; Default the slot the machine boots.
	Booted  string `yaml:"booted"`
	Default string `yaml:"default"`
	// Armed is the slot of a trial boot armed for the next boot (upgrade --stage).
	Armed string `yaml:"armed,omitempty"`
	// Slots are the versions installed in A and B ("" when a slot holds nothing).
	Slots map[string]string `yaml:"slots"`
	// Last is the last upgrade or rollback.
	Last *UpgradeRecord `yaml:"last,omitempty"`
}

// UpgradeRecord is an upgrade (or rollback) as the node recorded it.
type UpgradeRecord struct {
	From     string `yaml:"from"`
	FromSlot string `yaml:"fromSlot"`
	To       string `yaml:"to"`
	Slot     string `yaml:"slot"`
	// State is armed, trying, gate-failed, committed, rolled-back, reverted or superseded.
	State string `yaml:"state"`
	// Reason says why the upgrade was rolled back.
	Reason  string `yaml:"reason,omitempty"`
	Updated string `yaml:"updated"`
}

// Definitions registers every type of this package.
func Definitions() (*resource.Registry, error) {
	r := resource.NewRegistry()
	defs := []resource.Definition{
		{Type: MachineConfigType, Aliases: []string{"machineconfig", "machineconfigs", "mc"}, DefaultNamespace: NamespaceConfig, Sensitive: true},
		{Type: HostnameType, Aliases: []string{"hostname", "hostnames"}, DefaultNamespace: NamespaceNetwork,
			PrintColumns: []resource.Column{{Name: "Hostname", JSONPath: "{.hostname}"}, {Name: "Domainname", JSONPath: "{.domainname}"}}},
		{Type: NodeAddressType, Aliases: []string{"nodeaddress", "nodeaddresses"}, DefaultNamespace: NamespaceNetwork,
			PrintColumns: []resource.Column{{Name: "Addresses", JSONPath: "{.addresses}"}}},
		{Type: NodeIdentityType, Aliases: []string{"nodeidentity", "nodeidentities"}, DefaultNamespace: NamespaceCluster,
			PrintColumns: []resource.Column{{Name: "ID", JSONPath: "{.nodeId}"}}},
		{Type: VersionType, Aliases: []string{"version", "versions"}, DefaultNamespace: NamespaceRuntime,
			PrintColumns: []resource.Column{{Name: "Version", JSONPath: "{.tag}"}, {Name: "Platform", JSONPath: "{.platform}"}}},
		{Type: ServiceType, Aliases: []string{"service", "services", "svc"}, DefaultNamespace: NamespaceRuntime,
			PrintColumns: []resource.Column{{Name: "State", JSONPath: "{.state}"}, {Name: "Running", JSONPath: "{.running}"}, {Name: "Healthy", JSONPath: "{.healthy}"}}},
		{Type: APICertificateType, Aliases: []string{"apicertificate", "apicertificates"}, DefaultNamespace: NamespaceSecrets, Sensitive: true},
		{Type: KubeletSpecType, Aliases: []string{"kubeletspec", "kubeletspecs"}, DefaultNamespace: NamespaceK8s},
		{Type: EtcdStateType, Aliases: []string{"etcdstate", "etcdstates"}, DefaultNamespace: NamespaceEtcd},
		{Type: StaticPodsType, Aliases: []string{"staticpods", "staticpodset", "staticpodsets"}, DefaultNamespace: NamespaceK8s},
		{Type: LinkStatusType, Aliases: []string{"links", "link", "linkstatus", "linkstatuses"}, DefaultNamespace: NamespaceNetwork,
			PrintColumns: []resource.Column{{Name: "Kind", JSONPath: "{.kind}"}, {Name: "MAC", JSONPath: "{.hardwareAddr}"},
				{Name: "MTU", JSONPath: "{.mtu}"}, {Name: "State", JSONPath: "{.operationalState}"}}},
		{Type: AddressStatusType, Aliases: []string{"addresses", "address", "addr", "addressstatus", "addressstatuses"}, DefaultNamespace: NamespaceNetwork,
			PrintColumns: []resource.Column{{Name: "Address", JSONPath: "{.address}"}, {Name: "Link", JSONPath: "{.link}"}, {Name: "Scope", JSONPath: "{.scope}"}}},
		{Type: RouteStatusType, Aliases: []string{"routes", "route", "routestatus", "routestatuses"}, DefaultNamespace: NamespaceNetwork,
			PrintColumns: []resource.Column{{Name: "Table", JSONPath: "{.table}"}, {Name: "Destination", JSONPath: "{.destination}"},
				{Name: "Gateway", JSONPath: "{.gateway}"}, {Name: "Link", JSONPath: "{.link}"}, {Name: "Metric", JSONPath: "{.metric}"}, {Name: "Protocol", JSONPath: "{.protocol}"}}},
		{Type: DiskStatusType, Aliases: []string{"disks", "disk", "diskstatus", "diskstatuses"}, DefaultNamespace: NamespaceBlock,
			PrintColumns: []resource.Column{{Name: "Size", JSONPath: "{.size}"}, {Name: "Model", JSONPath: "{.model}"},
				{Name: "Transport", JSONPath: "{.transport}"}, {Name: "Rotational", JSONPath: "{.rotational}"}}},
		{Type: TimeStatusType, Aliases: []string{"timestatus", "timestatuses", "time"}, DefaultNamespace: NamespaceRuntime,
			PrintColumns: []resource.Column{{Name: "State", JSONPath: "{.state}"}, {Name: "Server", JSONPath: "{.server}"},
				{Name: "Offset", JSONPath: "{.offset}"}, {Name: "LastSync", JSONPath: "{.lastSync}"}}},
		{Type: UpgradeStatusType, Aliases: []string{"upgradestatus", "upgradestatuses", "upgrade", "slots"}, DefaultNamespace: NamespaceRuntime,
			PrintColumns: []resource.Column{{Name: "Booted", JSONPath: "{.booted}"}, {Name: "Default", JSONPath: "{.default}"},
				{Name: "A", JSONPath: "{.slots.A}"}, {Name: "B", JSONPath: "{.slots.B}"}, {Name: "Last", JSONPath: "{.last.to}"},
				{Name: "State", JSONPath: "{.last.state}"}, {Name: "Reason", JSONPath: "{.last.reason}"}}},
		{Type: DHCPLeaseType, Aliases: []string{"dhcpleases", "dhcplease", "leases", "lease"}, DefaultNamespace: NamespaceNetwork,
			PrintColumns: []resource.Column{{Name: "Address", JSONPath: "{.address}"}, {Name: "Gateway", JSONPath: "{.gateway}"},
				{Name: "Server", JSONPath: "{.server}"}, {Name: "Expires", JSONPath: "{.expires}"}}},
	}
	for _, d := range defs {
		if err := r.Register(d); err != nil {
			return nil, err
		}
	}
	return r, nil
}
