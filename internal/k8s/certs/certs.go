// Package certs issues the certificates, keys and kubeconfigs a Kubernetes node needs, from
// the CAs in its machine configuration: the API server's serving and client certificates,
// etcd's server and peer certificates, the components' kubeconfigs, and the kubelet's
// bootstrap kubeconfig on workers.
package certs

import (
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"slices"
	"time"

	"github.com/plinthos/plinth/internal/k8s/paths"
	"github.com/plinthos/plinth/internal/kubeconfig"
	"github.com/plinthos/plinth/internal/yamlx"
	"github.com/plinthos/plinth/pkg/config"
	"github.com/plinthos/plinth/pkg/pki"
)

// Validity of the certificates issued here; the node reissues them well before expiry.
const Validity = 365 * 24 * time.Hour

// Node is what the certificates say about the node.
type Node struct {
	// Name is the Kubernetes node name (the host name).
	Name string
	// IPs are the node's addresses.
	IPs []net.IP
}

// Files maps PKI file names (paths.*) to their contents.
type Files map[string][]byte

// LocalAPIServer is the address control-plane components use to reach their own API server.
const LocalAPIServer = "https://127.0.0.1:6443"

// APIServerSANs lists the names and addresses the API server's certificate carries.
func APIServerSANs(cfg *config.MachineConfig, node Node) ([]string, []net.IP, error) {
	domain := cfg.Cluster.Network.DNSDomain
	if domain == "" {
		domain = config.DefaultDNSDomain
	}
	dns := []string{"kubernetes", "kubernetes.default", "kubernetes.default.svc", "kubernetes.default.svc." + domain, "localhost", node.Name}
	ips := append([]net.IP{net.ParseIP("127.0.0.1")}, node.IPs...)
	subnets := cfg.Cluster.Network.ServiceSubnets
	if len(subnets) == 0 {
		subnets = []string{config.DefaultServiceSubnet}
	}
	for _, s := range subnets {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return nil, nil, fmt.Errorf("service subnet %q: %w", s, err)
		}
		ips = append(ips, p.Masked().Addr().Next().AsSlice())
	}
	u, err := url.Parse(cfg.Cluster.ControlPlane.Endpoint)
	if err != nil {
		return nil, nil, fmt.Errorf("control-plane endpoint: %w", err)
	}
	for _, san := range append([]string{u.Hostname()}, cfg.Cluster.APIServer.CertSANs...) {
		if ip := net.ParseIP(san); ip != nil {
			ips = append(ips, ip)
		} else if san != "" {
			dns = append(dns, san)
		}
	}
	slices.Sort(dns)
	return slices.Compact(dns), uniqueIPs(ips), nil
}

func uniqueIPs(ips []net.IP) []net.IP {
	var out []net.IP
	for _, ip := range ips {
		if !slices.ContainsFunc(out, ip.Equal) {
			out = append(out, ip)
		}
	}
	return out
}

// ControlPlane issues everything a control-plane node needs.
func ControlPlane(cfg *config.MachineConfig, node Node, now time.Time) (Files, error) {
	k8sCA, err := pki.LoadCA(cfg.Cluster.CA.Crt, cfg.Cluster.CA.Key)
	if err != nil {
		return nil, fmt.Errorf("kubernetes CA: %w", err)
	}
	etcdCA, err := pki.LoadCA(cfg.Cluster.Etcd.CA.Crt, cfg.Cluster.Etcd.CA.Key)
	if err != nil {
		return nil, fmt.Errorf("etcd CA: %w", err)
	}
	proxyCA, err := pki.LoadCA(cfg.Cluster.AggregatorCA.Crt, cfg.Cluster.AggregatorCA.Key)
	if err != nil {
		return nil, fmt.Errorf("front-proxy CA: %w", err)
	}
	saKey, err := pki.ParseKeyPEM(cfg.Cluster.ServiceAccount.Key)
	if err != nil {
		return nil, fmt.Errorf("service account key: %w", err)
	}
	saPub, err := pki.EncodePublicKeyPEM(saKey.Public())
	if err != nil {
		return nil, err
	}
	files := Files{
		paths.CACert:            cfg.Cluster.CA.Crt,
		paths.CAKey:             cfg.Cluster.CA.Key,
		paths.EtcdCACert:        cfg.Cluster.Etcd.CA.Crt,
		paths.FrontProxyCACert:  cfg.Cluster.AggregatorCA.Crt,
		paths.ServiceAccountKey: cfg.Cluster.ServiceAccount.Key,
		paths.ServiceAccountPub: saPub,
	}
	dns, ips, err := APIServerSANs(cfg, node)
	if err != nil {
		return nil, err
	}
	nodeIPs := append([]net.IP{net.ParseIP("127.0.0.1")}, node.IPs...)
	issue := []struct {
		ca   *pki.KeyPair
		cert string
		key  string
		opts pki.CertOptions
	}{
		{k8sCA, paths.APIServerCert, paths.APIServerKey, pki.CertOptions{CommonName: "kube-apiserver", DNSNames: dns, IPAddresses: ips, Usage: pki.UsageServer}},
		{k8sCA, paths.APIServerKubeletCert, paths.APIServerKubeletKey, pki.CertOptions{CommonName: "kube-apiserver-kubelet-client", Organization: []string{"system:masters"}, Usage: pki.UsageClient}},
		{etcdCA, paths.APIServerEtcdCert, paths.APIServerEtcdKey, pki.CertOptions{CommonName: "kube-apiserver-etcd-client", Usage: pki.UsageClient}},
		{proxyCA, paths.FrontProxyClientCert, paths.FrontProxyClientKey, pki.CertOptions{CommonName: "front-proxy-client", Usage: pki.UsageClient}},
		{etcdCA, paths.EtcdServerCert, paths.EtcdServerKey, pki.CertOptions{CommonName: node.Name, DNSNames: []string{"localhost", node.Name}, IPAddresses: nodeIPs, Usage: pki.UsageServer | pki.UsageClient}},
		{etcdCA, paths.EtcdPeerCert, paths.EtcdPeerKey, pki.CertOptions{CommonName: node.Name, DNSNames: []string{node.Name}, IPAddresses: nodeIPs, Usage: pki.UsageServer | pki.UsageClient}},
		{etcdCA, paths.EtcdHealthcheckCert, paths.EtcdHealthcheckKey, pki.CertOptions{CommonName: "kube-etcd-healthcheck-client", Usage: pki.UsageClient}},
	}
	for _, i := range issue {
		i.opts.Validity, i.opts.Now = Validity, now
		kp, err := pki.Issue(i.ca, i.opts)
		if err != nil {
			return nil, fmt.Errorf("issue %s: %w", i.cert, err)
		}
		files[i.cert], files[i.key] = kp.CertPEM, kp.KeyPEM
	}
	for _, kc := range []struct {
		file, cn string
		orgs     []string
		server   string
	}{
		{paths.AdminKubeconfig, "admin", []string{"system:masters"}, LocalAPIServer},
		{paths.ControllerManagerKubec, "system:kube-controller-manager", nil, LocalAPIServer},
		{paths.SchedulerKubeconfig, "system:kube-scheduler", nil, LocalAPIServer},
		{paths.KubeletKubeconfig, "system:node:" + node.Name, []string{"system:nodes"}, LocalAPIServer},
	} {
		kp, err := pki.Issue(k8sCA, pki.CertOptions{CommonName: kc.cn, Organization: kc.orgs, Usage: pki.UsageClient, Validity: Validity, Now: now})
		if err != nil {
			return nil, fmt.Errorf("issue %s: %w", kc.file, err)
		}
		data, err := Kubeconfig(cfg.Cluster.Name, kc.server, cfg.Cluster.CA.Crt, Credentials{Cert: kp.CertPEM, Key: kp.KeyPEM, User: kc.cn})
		if err != nil {
			return nil, err
		}
		files[kc.file] = data
	}
	enc, err := EncryptionConfig(cfg.Cluster.SecretboxEncryptionSecret)
	if err != nil {
		return nil, err
	}
	files[paths.EncryptionConfig] = enc
	return files, nil
}

// Worker issues what a worker needs to join: the Kubernetes CA certificate and a bootstrap
// kubeconfig with the bootstrap token, pointing at the control-plane endpoint.
func Worker(cfg *config.MachineConfig) (Files, error) {
	data, err := Kubeconfig(cfg.Cluster.Name, cfg.Cluster.ControlPlane.Endpoint, cfg.Cluster.CA.Crt, Credentials{Token: cfg.Cluster.Token, User: "kubelet-bootstrap"})
	if err != nil {
		return nil, err
	}
	return Files{paths.CACert: cfg.Cluster.CA.Crt, paths.BootstrapKubeconfig: data}, nil
}

// Credentials are a kubeconfig user's: a client certificate and key, or a token.
type Credentials struct {
	User      string
	Cert, Key []byte
	Token     string
}

// Kubeconfig renders a kubeconfig with one cluster, user and context.
func Kubeconfig(clusterName, server string, ca []byte, c Credentials) ([]byte, error) {
	user := kubeconfig.User{Token: c.Token}
	if c.Token == "" {
		user.ClientCertificateData, user.ClientKeyData = c.Cert, c.Key
	}
	return kubeconfig.New(clusterName, kubeconfig.Cluster{Server: server, CertificateAuthorityData: ca}, c.User, user).Marshal()
}

// EncryptionConfig renders the API server's encryption configuration: Secrets encrypted
// with secretbox, with the identity provider to read data written before.
func EncryptionConfig(secret string) ([]byte, error) {
	if secret == "" {
		return nil, fmt.Errorf("cluster.secretboxEncryptionSecret is empty")
	}
	return yamlx.Marshal(map[string]any{
		"apiVersion": "apiserver.config.k8s.io/v1",
		"kind":       "EncryptionConfiguration",
		"resources": []any{map[string]any{
			"resources": []string{"secrets"},
			"providers": []any{
				map[string]any{"secretbox": map[string]any{"keys": []any{map[string]any{"name": "key1", "secret": secret}}}},
				map[string]any{"identity": map[string]any{}},
			},
		}},
	})
}

// AdminValidity is how long admin kubeconfigs handed to users are valid.
const AdminValidity = 365 * 24 * time.Hour

// AdminKubeconfig issues a cluster-admin client certificate and returns a kubeconfig for it
// pointing at the control-plane endpoint, with a context named after the cluster.
func AdminKubeconfig(cfg *config.MachineConfig, now time.Time) ([]byte, error) {
	ca, err := pki.LoadCA(cfg.Cluster.CA.Crt, cfg.Cluster.CA.Key)
	if err != nil {
		return nil, fmt.Errorf("kubernetes CA: %w", err)
	}
	kp, err := pki.Issue(ca, pki.CertOptions{CommonName: "plinth:admin", Organization: []string{"system:masters"},
		Usage: pki.UsageClient, Validity: AdminValidity, Now: now})
	if err != nil {
		return nil, err
	}
	return Kubeconfig(cfg.Cluster.Name, cfg.Cluster.ControlPlane.Endpoint, cfg.Cluster.CA.Crt,
		Credentials{User: "admin@" + cfg.Cluster.Name, Cert: kp.CertPEM, Key: kp.KeyPEM})
}
