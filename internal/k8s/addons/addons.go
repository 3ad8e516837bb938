// Package addons renders what is applied to a cluster's API once it is bootstrapped: the
// RBAC and bootstrap token with which kubelets join, kube-proxy, the flannel pod network,
// CoreDNS, and the configuration's inline manifests. It also renders the CNI configuration
// that machined writes on each node once flanneld has leased the node's pod subnet (see
// CNIConfig).
//
// Every function here is pure: it turns a configuration into file contents, and the caller
// applies or writes them. docs/cluster-addons.md explains the choices.
package addons

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/url"
	"regexp"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/plinthos/plinth/internal/yamlx"
	"github.com/plinthos/plinth/pkg/config"
)

// The file names Manifests returns, in the order they are to be applied (the order of
// their names). Inline manifests follow as InlinePrefix + name + ".yaml".
const (
	RBACFile           = "00-rbac.yaml"
	BootstrapTokenFile = "10-bootstrap-token.yaml"
	KubeProxyFile      = "20-kube-proxy.yaml"
	FlannelFile        = "30-flannel.yaml"
	PodNetworkFile     = "30-pod-network.yaml"
	CoreDNSFile        = "40-coredns.yaml"
	InlinePrefix       = "90-"
)

// The CNI names of cluster.network.cni.name.
const (
	CNIFlannel = "flannel"
	CNIPlinth  = "plinth"
	CNICustom  = "custom"
	CNINone    = "none"
)

// serviceAccountDir is where kubelet mounts a pod's service account token and the cluster
// CA (the kube-root-ca.crt ConfigMap).
const serviceAccountDir = "/var/run/secrets/kubernetes.io/serviceaccount"

// Manifests returns the add-on manifests by file name, each holding one or more YAML
// documents: RBACFile and BootstrapTokenFile always; KubeProxyFile unless
// cluster.proxy.disabled; FlannelFile when cluster.network.cni.name is flannel (or empty),
// PodNetworkFile when it is plinth;
// CoreDNSFile unless cluster.coreDNS.disabled; and one InlinePrefix+NAME+".yaml" per
// inline manifest, its contents as given. Apply them in the order of their names.
//
// The manifests carry the bootstrap token: treat them as secret (do not log them, write
// them only where the cluster CA key may be).
func Manifests(cfg *config.MachineConfig) (map[string][]byte, error) {
	cl := effective(cfg)
	docs := map[string][]object{}

	docs[RBACFile] = bootstrapRBAC()
	token, err := bootstrapTokenSecret(cl.Token)
	if err != nil {
		return nil, err
	}
	docs[BootstrapTokenFile] = []object{token}

	if !cl.Proxy.Disabled {
		if docs[KubeProxyFile], err = kubeProxy(cl); err != nil {
			return nil, fmt.Errorf("kube-proxy: %w", err)
		}
	}
	switch cl.Network.CNI.Name {
	case CNIFlannel:
		if docs[FlannelFile], err = flannel(cl); err != nil {
			return nil, fmt.Errorf("flannel: %w", err)
		}
	case CNIPlinth: // machined on each node (package podnet)
		docs[PodNetworkFile] = podNetworkRBAC()
	case CNICustom, CNINone:
	default:
		return nil, fmt.Errorf("cluster.network.cni.name %q must be flannel, plinth, custom or none", cl.Network.CNI.Name)
	}
	if !cl.CoreDNS.Disabled {
		if docs[CoreDNSFile], err = coreDNS(cfg, cl); err != nil {
			return nil, fmt.Errorf("coredns: %w", err)
		}
	}

	out := make(map[string][]byte, len(docs)+len(cl.InlineManifests))
	for name, objs := range docs {
		data, err := marshalAll(objs)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		out[name] = data
	}
	for _, m := range cl.InlineManifests {
		name, data, err := inlineManifest(m)
		if err != nil {
			return nil, err
		}
		if _, dup := out[name]; dup {
			return nil, fmt.Errorf("inline manifest %q: another inline manifest has the file name %s", m.Name, name)
		}
		out[name] = data
	}
	return out, nil
}

// ExtraManifestURLs returns the URLs of the manifests applied after bootstrap besides those
// of Manifests, in order: a custom CNI's (cluster.network.cni.urls, when its name is custom)
// first, since pods need the network, then cluster.extraManifests. They are not fetched
// here.
func ExtraManifestURLs(cfg *config.MachineConfig) []string {
	var out []string
	if cfg.Cluster.Network.CNI.Name == CNICustom {
		out = append(out, cfg.Cluster.Network.CNI.URLs...)
	}
	return append(out, cfg.Cluster.ExtraManifests...)
}

// effective returns the cluster part of cfg with defaults filled in, without touching cfg:
// only the cluster part is copied, and ApplyDefaults only sets empty strings and replaces
// empty slices there.
func effective(cfg *config.MachineConfig) config.ClusterSpec {
	c := config.MachineConfig{Cluster: cfg.Cluster}
	config.ApplyDefaults(&c)
	return c.Cluster
}

// marshalAll renders objects as one multi-document YAML stream.
func marshalAll(objs []object) ([]byte, error) {
	var buf bytes.Buffer
	for i, o := range objs {
		data, err := yamlx.Marshal(o)
		if err != nil {
			return nil, fmt.Errorf("%s %s: %w", o.Kind, o.Metadata.Name, err)
		}
		if i > 0 {
			buf.WriteString("---\n")
		}
		buf.Write(data)
	}
	return buf.Bytes(), nil
}

// unsafeFileChars are the characters an inline manifest's name may not bring into a file
// name.
var unsafeFileChars = regexp.MustCompile(`[^A-Za-z0-9._-]+`)

// inlineManifest checks that an inline manifest is a YAML stream of Kubernetes objects and
// returns its file name and contents (as given, with a final newline).
func inlineManifest(m config.InlineManifest) (string, []byte, error) {
	base := strings.Trim(unsafeFileChars.ReplaceAllString(m.Name, "-"), "-.")
	if base == "" {
		return "", nil, fmt.Errorf("inline manifest %q: the name gives no usable file name", m.Name)
	}
	dec := yaml.NewDecoder(strings.NewReader(m.Contents))
	n := 0
	for i := 0; ; i++ {
		var doc map[string]any
		err := dec.Decode(&doc)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return "", nil, fmt.Errorf("inline manifest %q, document %d: %w", m.Name, i+1, err)
		}
		if doc == nil { // an empty document, as between two "---"
			continue
		}
		if s, _ := doc["apiVersion"].(string); s == "" {
			return "", nil, fmt.Errorf("inline manifest %q, document %d: no apiVersion", m.Name, i+1)
		}
		if s, _ := doc["kind"].(string); s == "" {
			return "", nil, fmt.Errorf("inline manifest %q, document %d: no kind", m.Name, i+1)
		}
		n++
	}
	if n == 0 {
		return "", nil, fmt.Errorf("inline manifest %q holds no object", m.Name)
	}
	data := []byte(m.Contents)
	if !bytes.HasSuffix(data, []byte("\n")) {
		data = append(data, '\n')
	}
	return InlinePrefix + base + ".yaml", data, nil
}

// apiEndpoint checks the control-plane endpoint, which kube-proxy and flanneld use directly.
func apiEndpoint(cl config.ClusterSpec) (string, error) {
	ep := cl.ControlPlane.Endpoint
	u, err := url.Parse(ep)
	if err != nil || u.Scheme != "https" || u.Host == "" {
		return "", fmt.Errorf("cluster.controlPlane.endpoint %q is not an https://HOST:PORT URL", ep)
	}
	return ep, nil
}

// inClusterKubeconfig is a kubeconfig that authenticates with the pod's service account
// token and trusts the cluster CA, as in-cluster clients do, but reaches the API server at
// server instead of the kubernetes Service. kube-proxy and flanneld need that: the Service
// address only works once kube-proxy has programmed it, and pod traffic to it only once the
// pod network is up. client-go rereads the token file, so the rotated projected token is
// picked up.
func inClusterKubeconfig(server string) (string, error) {
	data, err := yamlx.Marshal(map[string]any{
		"apiVersion": "v1",
		"kind":       "Config",
		"clusters": []any{map[string]any{"name": "default", "cluster": map[string]any{
			"server":                server,
			"certificate-authority": serviceAccountDir + "/ca.crt",
		}}},
		"users": []any{map[string]any{"name": "default", "user": map[string]any{
			"tokenFile": serviceAccountDir + "/token",
		}}},
		"contexts":        []any{map[string]any{"name": "default", "context": map[string]any{"cluster": "default", "user": "default"}}},
		"current-context": "default",
	})
	return string(data), err
}
