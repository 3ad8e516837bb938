// Package configgen turns a secrets bundle and a few choices (cluster name, endpoint,
// versions) into the machine configurations of a cluster and an admin client config.
package configgen

import (
	"fmt"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/plinthos/plinth/pkg/clientconfig"
	"github.com/plinthos/plinth/pkg/config"
	"github.com/plinthos/plinth/pkg/pki"
	"github.com/plinthos/plinth/pkg/role"
	"github.com/plinthos/plinth/pkg/secrets"
)

// AdminCertValidity is how long the admin client certificate of `gen config` (the
// cluster's first credential) is valid.
const AdminCertValidity = 365 * 24 * time.Hour

// DefaultClientCertValidity is how long a client certificate minted by a node for
// `plinthctl config new` is valid when the request names no lifetime.
const DefaultClientCertValidity = 30 * 24 * time.Hour

// MaxClientCertValidity caps every client certificate's lifetime: a stolen client config
// stops working within a year even if nobody revokes it.
const MaxClientCertValidity = 365 * 24 * time.Hour

// DefaultInstallDisk is the install disk written when none is given.
const DefaultInstallDisk = "/dev/sda"

// Options are the choices that, with a secrets bundle, make a cluster's configuration.
type Options struct {
	ClusterName       string
	Endpoint          string // https://HOST:PORT of the Kubernetes API
	KubernetesVersion string // empty: config.DefaultKubernetesVersion
	InstallDisk       string // empty: DefaultInstallDisk
	DNSDomain         string // empty: config.DefaultDNSDomain
	AdditionalSANs    []string
}

// Configs are a cluster's generated configurations.
type Configs struct {
	ControlPlane *config.MachineConfig
	Worker       *config.MachineConfig
}

// NormalizeVersion accepts 1.37.2 or v1.37.2 and returns v1.37.2.
func NormalizeVersion(v string) (string, error) {
	v = strings.TrimSpace(v)
	if v == "" {
		return config.DefaultKubernetesVersion, nil
	}
	if !strings.HasPrefix(v, "v") {
		v = "v" + v
	}
	parts := strings.Split(strings.TrimPrefix(v, "v"), ".")
	if len(parts) != 3 {
		return "", fmt.Errorf("kubernetes version %q must be MAJOR.MINOR.PATCH, such as %s", v, config.DefaultKubernetesVersion)
	}
	for _, p := range parts {
		if p == "" || strings.Trim(p, "0123456789") != "" {
			return "", fmt.Errorf("kubernetes version %q must be MAJOR.MINOR.PATCH, such as %s", v, config.DefaultKubernetesVersion)
		}
	}
	return v, nil
}

// Generate builds the control-plane and worker configurations. Workers get no CA keys,
// no service account key, no etcd or aggregator CA and no encryption secret.
func Generate(b *secrets.Bundle, opts Options) (*Configs, error) {
	version, err := NormalizeVersion(opts.KubernetesVersion)
	if err != nil {
		return nil, err
	}
	disk := opts.InstallDisk
	if disk == "" {
		disk = DefaultInstallDisk
	}
	dnsDomain := opts.DNSDomain
	if dnsDomain == "" {
		dnsDomain = config.DefaultDNSDomain
	}
	images := config.ImagesFor(version)
	// build makes a fresh configuration each call, so the two configs share no slice or map.
	build := func(typ config.MachineType) *config.MachineConfig {
		return &config.MachineConfig{
			APIVersion: config.APIVersion,
			Kind:       config.KindMachineConfig,
			Machine: config.MachineSpec{
				Type:     typ,
				Token:    b.Tokens.Join,
				CA:       b.CAs.OS,
				CertSANs: slices.Clone(opts.AdditionalSANs),
				Install:  config.InstallSpec{Disk: disk},
				Kubelet:  config.KubeletSpec{Image: images.Kubelet},
			},
			Cluster: config.ClusterSpec{
				ID:           b.Cluster.ID,
				Secret:       b.Cluster.Secret,
				Name:         opts.ClusterName,
				ControlPlane: config.ControlPlaneSpec{Endpoint: opts.Endpoint},
				Network: config.ClusterNetworkSpec{
					DNSDomain:      dnsDomain,
					PodSubnets:     []string{config.DefaultPodSubnet},
					ServiceSubnets: []string{config.DefaultServiceSubnet},
					CNI:            config.CNISpec{Name: config.DefaultCNI},
				},
				Token:                     b.Tokens.Bootstrap,
				SecretboxEncryptionSecret: b.Tokens.SecretboxEncryptionSecret,
				CA:                        b.CAs.Kubernetes,
				AggregatorCA:              b.CAs.Aggregator,
				ServiceAccount:            config.ServiceAccountSpec{Key: b.ServiceAccountKey},
				APIServer:                 config.APIServerSpec{Image: images.APIServer, CertSANs: slices.Clone(opts.AdditionalSANs)},
				ControllerManager:         config.ComponentSpec{Image: images.ControllerManager},
				Scheduler:                 config.ComponentSpec{Image: images.Scheduler},
				Proxy:                     config.ProxySpec{Image: images.Proxy},
				Etcd:                      config.EtcdSpec{Image: images.Etcd, CA: b.CAs.Etcd},
				CoreDNS:                   config.CoreDNSSpec{Image: images.CoreDNS},
			},
		}
	}
	cp, w := build(config.TypeControlPlane), build(config.TypeWorker)
	stripSecrets(w)
	return &Configs{ControlPlane: cp, Worker: w}, nil
}

// stripSecrets removes from a configuration what a worker must not hold: CA keys, the
// service account key, the etcd and front-proxy CAs and the secrets encryption key.
func stripSecrets(w *config.MachineConfig) {
	w.Machine.CA.Key = nil
	w.Cluster.CA.Key = nil
	w.Cluster.AggregatorCA = config.CertAndKey{}
	w.Cluster.ServiceAccount = config.ServiceAccountSpec{}
	w.Cluster.SecretboxEncryptionSecret = ""
	w.Cluster.Etcd.CA = config.CertAndKey{}
}

// ClientConfig builds a plinthconfig with one context, named after the cluster, holding a
// client certificate for roles signed by the node API CA. Its endpoints are the host of
// the control-plane endpoint unless endpoints are given.
func ClientConfig(b *secrets.Bundle, clusterName, endpoint string, endpoints []string, roles []string, now time.Time) (*clientconfig.Config, error) {
	if len(endpoints) == 0 {
		u, err := url.Parse(endpoint)
		if err != nil || u.Hostname() == "" {
			return nil, fmt.Errorf("control-plane endpoint %q is not a URL such as https://10.5.0.2:6443", endpoint)
		}
		endpoints = []string{u.Hostname()}
	}
	ctx, err := NewContext(b.CAs.OS, endpoints, roles, AdminCertValidity, now)
	if err != nil {
		return nil, err
	}
	return &clientconfig.Config{Context: clusterName, Contexts: map[string]*clientconfig.Context{clusterName: ctx}}, nil
}

// NewContext issues a client certificate carrying roles (as Subject Organization) from the
// node API CA and returns a context using it.
func NewContext(osCA config.CertAndKey, endpoints, roles []string, validity time.Duration, now time.Time) (*clientconfig.Context, error) {
	ca, err := pki.LoadCA(osCA.Crt, osCA.Key)
	if err != nil {
		return nil, fmt.Errorf("node API CA: %w", err)
	}
	parsed, err := role.Parse(strings.Join(roles, ","))
	if err != nil {
		return nil, err
	}
	for _, r := range roles {
		if strings.Contains(r, ",") {
			return nil, fmt.Errorf("role %q contains a comma; give each role as its own entry", r)
		}
	}
	if validity <= 0 || validity > MaxClientCertValidity {
		return nil, fmt.Errorf("a client certificate may be valid for more than 0 and at most %s (one year), not %s; ask for less (--crt-ttl)", MaxClientCertValidity, validity)
	}
	for _, e := range endpoints {
		if strings.TrimSpace(e) == "" {
			return nil, fmt.Errorf("an endpoint is empty; give node API addresses such as 10.5.0.2")
		}
	}
	kp, err := pki.Issue(ca, pki.CertOptions{
		CommonName:   strings.Join(parsed, ","),
		Organization: parsed,
		Usage:        pki.UsageClient,
		Validity:     validity,
		Now:          now,
	})
	if err != nil {
		return nil, fmt.Errorf("issue client certificate: %w", err)
	}
	return &clientconfig.Context{Endpoints: endpoints, CA: osCA.Crt, Crt: kp.CertPEM, Key: kp.KeyPEM}, nil
}
