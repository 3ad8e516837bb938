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
	}
	for _, d := range defs {
		if err := r.Register(d); err != nil {
			return nil, err
		}
	}
	return r, nil
}
