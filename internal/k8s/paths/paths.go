// Package paths names where a Kubernetes node's files live on a Plinth node, in one place,
// so that the certificate writer, the static pod renderer, the kubelet and containerd
// configuration all agree. Every path is relative to a root (the node's "/"; a test's
// temporary directory) through Layout.
package paths

import "path/filepath"

// Layout locates a node's Kubernetes files under Root.
type Layout struct {
	Root string
}

func (l Layout) join(parts ...string) string {
	return filepath.Join(append([]string{l.Root}, parts...)...)
}

// Image paths, as containers see them (static pods mount these host paths at the same place).
const (
	// PKIDir holds the Kubernetes and etcd certificates and keys (tmpfs on a real node).
	PKIDir = "/system/secrets/kubernetes"
	// ManifestsDir is where kubelet reads static pod manifests.
	ManifestsDir = "/etc/kubernetes/manifests"
	// KubeletDir is kubelet's state.
	KubeletDir = "/var/lib/kubelet"
	// EtcdDataDir is etcd's data.
	EtcdDataDir = "/var/lib/etcd"
	// ContainerdDir is containerd's state (root).
	ContainerdDir = "/var/lib/containerd"
	// ContainerdRunDir is containerd's runtime state.
	ContainerdRunDir = "/run/containerd"
	// ContainerdConfig is containerd's configuration file.
	ContainerdConfig = "/etc/containerd/config.toml"
	// CNIConfDir and CNIBinDir are the CNI configuration and plugins.
	CNIConfDir = "/etc/cni/net.d"
	CNIBinDir  = "/opt/cni/bin"
	// PodResolvConf is the resolv.conf kubelet gives pods that use the node's DNS settings
	// (CoreDNS): upstream servers pods can reach.
	PodResolvConf = "/system/resolv.conf"
	// ImageBundleDir holds the image tarballs imported into containerd at boot.
	ImageBundleDir = "/usr/share/plinth/images"
	// BuiltinImagesFile lists the bundle's images that the node image carries as its own
	// programs instead (kubelet's), left out of the bundle it imports (package bundle).
	BuiltinImagesFile = "/usr/share/plinth/builtin-images.json"
)

// Host returns where an image path lives under the layout's root.
func (l Layout) Host(imagePath string) string { return l.join(filepath.FromSlash(imagePath)) }

// PKI returns the host path of a file in the PKI directory.
func (l Layout) PKI(name string) string { return l.join(PKIDir, name) }

// PKIFile returns the image path of a file in the PKI directory.
func PKIFile(name string) string { return PKIDir + "/" + name }

// The PKI file names.
const (
	CACert                 = "ca.crt"
	CAKey                  = "ca.key"
	APIServerCert          = "apiserver.crt"
	APIServerKey           = "apiserver.key"
	APIServerKubeletCert   = "apiserver-kubelet-client.crt"
	APIServerKubeletKey    = "apiserver-kubelet-client.key"
	APIServerEtcdCert      = "apiserver-etcd-client.crt"
	APIServerEtcdKey       = "apiserver-etcd-client.key"
	FrontProxyCACert       = "front-proxy-ca.crt"
	FrontProxyClientCert   = "front-proxy-client.crt"
	FrontProxyClientKey    = "front-proxy-client.key"
	EtcdCACert             = "etcd-ca.crt"
	EtcdServerCert         = "etcd-server.crt"
	EtcdServerKey          = "etcd-server.key"
	EtcdPeerCert           = "etcd-peer.crt"
	EtcdPeerKey            = "etcd-peer.key"
	EtcdHealthcheckCert    = "etcd-healthcheck-client.crt"
	EtcdHealthcheckKey     = "etcd-healthcheck-client.key"
	ServiceAccountKey      = "sa.key"
	ServiceAccountPub      = "sa.pub"
	EncryptionConfig       = "encryption-config.yaml"
	AdminKubeconfig        = "admin.conf"
	ControllerManagerKubec = "controller-manager.conf"
	SchedulerKubeconfig    = "scheduler.conf"
	KubeletKubeconfig      = "kubelet.conf"
	BootstrapKubeconfig    = "bootstrap-kubelet.conf"
)
