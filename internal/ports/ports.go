// Package ports names the TCP ports of a Plinth node, and builds the URLs made of them, so
// that no number is spelled in more than one place.
package ports

import (
	"net"
	"strconv"
)

// The ports of a node.
const (
	// NodeAPI is apid's: the node API, mutual TLS.
	NodeAPI = 50000
	// Trustd is trustd's: nodes holding a join token get their API certificate there.
	Trustd = 50001
	// Metrics is machined's Prometheus metrics, over HTTPS with client certificates, when
	// machine.metrics.enabled.
	Metrics = 50002
	// KubeAPI is the Kubernetes API server's (control planes).
	KubeAPI = 6443
	// EtcdClient is etcd's client port (control planes).
	EtcdClient = 2379
	// EtcdPeer is etcd's peer port (control planes).
	EtcdPeer = 2380
	// EtcdMetrics is etcd's plain-HTTP metrics and health port, on loopback.
	EtcdMetrics = 2381
	// KubeletHealthz is kubelet's plain-HTTP health port, on loopback.
	KubeletHealthz = 10248
	// ControllerManager is kube-controller-manager's secure port.
	ControllerManager = 10257
	// Scheduler is kube-scheduler's secure port.
	Scheduler = 10259
)

// HostPort joins host and port, bracketing an IPv6 host.
func HostPort(host string, port int) string {
	return net.JoinHostPort(host, strconv.Itoa(port))
}

// EtcdPeerURL is the peer URL of the etcd member at host.
func EtcdPeerURL(host string) string { return "https://" + HostPort(host, EtcdPeer) }

// EtcdClientURL is the client URL of the etcd member at host.
func EtcdClientURL(host string) string { return "https://" + HostPort(host, EtcdClient) }

// KubeAPIURL is the URL of the Kubernetes API server at host.
func KubeAPIURL(host string) string { return "https://" + HostPort(host, KubeAPI) }
