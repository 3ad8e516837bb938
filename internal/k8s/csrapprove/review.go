package csrapprove

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"net/url"

	"github.com/plinthos/plinth/internal/k8s/objects"
	"github.com/plinthos/plinth/pkg/config"
)

// API is the part of the Kubernetes API a review uses, with credentials that may read
// nodes and CSRs and approve and deny CSRs (kubeclient.Client has it).
type API interface {
	ListCSRs(ctx context.Context) ([]objects.CertificateSigningRequest, error)
	ListNodes(ctx context.Context, selector string) ([]objects.Node, error)
	ApproveCSR(ctx context.Context, name, message string) error
	DenyCSR(ctx context.Context, name, message string) error
}

// Review lists the certificate signing requests, approves the pending kubelet serving
// requests Decide accepts and denies the others, so that none waits for ever. It logs one
// line per request it approves or denies.
func Review(ctx context.Context, api API, cluster ClusterInfo, logs io.Writer) error {
	csrs, err := api.ListCSRs(ctx)
	if err != nil {
		return fmt.Errorf("list certificate signing requests: %w", err)
	}
	var pending []Request
	for _, o := range csrs {
		if r := requestOf(o); Pending(r) {
			pending = append(pending, r)
		}
	}
	if len(pending) == 0 {
		return nil
	}
	objs, err := api.ListNodes(ctx, "")
	if err != nil {
		return fmt.Errorf("list nodes: %w", err)
	}
	nodes := make([]Node, 0, len(objs))
	for _, o := range objs {
		nodes = append(nodes, nodeOf(o))
	}
	var errs []error
	for _, r := range pending {
		approve, wait, reason := verdict(r, nodes, cluster)
		if wait {
			continue // the node may not have registered its addresses yet
		}
		if approve {
			if err := api.ApproveCSR(ctx, r.Name, "Plinth: a node's own names and addresses"); err != nil {
				errs = append(errs, fmt.Errorf("approve %s: %w", r.Name, err))
				continue
			}
			fmt.Fprintf(logs, "approved kubelet serving certificate %s for %s\n", r.Name, r.Username)
			continue
		}
		if err := api.DenyCSR(ctx, r.Name, "Plinth: "+reason); err != nil {
			errs = append(errs, fmt.Errorf("deny %s (%s): %w", r.Name, reason, err))
			continue
		}
		fmt.Fprintf(logs, "denied kubelet serving certificate %s for %s: %s\n", r.Name, r.Username, reason)
	}
	return errors.Join(errs...)
}

// requestOf is the part of a CertificateSigningRequest the approver looks at.
func requestOf(o objects.CertificateSigningRequest) Request {
	r := Request{
		Name:       o.Metadata.Name,
		SignerName: o.Spec.SignerName,
		Username:   o.Spec.Username,
		Groups:     o.Spec.Groups,
		Usages:     o.Spec.Usages,
	}
	// A request that is not base64 keeps a nil PEM, which Decide refuses.
	if p, err := base64.StdEncoding.DecodeString(o.Spec.Request); err == nil {
		r.PEM = p
	}
	for _, c := range o.Status.Conditions {
		r.Conditions = append(r.Conditions, c.Type)
	}
	return r
}

// nodeOf is the part of a Node the approver looks at.
func nodeOf(o objects.Node) Node {
	n := Node{Name: o.Metadata.Name}
	for _, a := range o.Status.Addresses {
		n.Addresses = append(n.Addresses, Address{Type: a.Type, Address: a.Address})
	}
	return n
}

// ClusterInfoFromConfig reads the cluster's networks, DNS domain and API server names from
// cfg (defaults applied); self is the name of the node running the approver.
func ClusterInfoFromConfig(cfg *config.MachineConfig, self string) (ClusterInfo, error) {
	c := config.MachineConfig{Cluster: cfg.Cluster}
	config.ApplyDefaults(&c)
	nw := c.Cluster.Network
	info := ClusterInfo{DNSDomain: nw.DNSDomain, Self: self}
	var err error
	if info.ServiceCIDRs, err = prefixes("cluster.network.serviceSubnets", nw.ServiceSubnets); err != nil {
		return ClusterInfo{}, err
	}
	if info.PodCIDRs, err = prefixes("cluster.network.podSubnets", nw.PodSubnets); err != nil {
		return ClusterInfo{}, err
	}
	u, err := url.Parse(c.Cluster.ControlPlane.Endpoint)
	if err != nil {
		return ClusterInfo{}, fmt.Errorf("cluster.controlPlane.endpoint: %w", err)
	}
	if h := u.Hostname(); h != "" {
		info.APIServerNames = append(info.APIServerNames, h)
	}
	info.APIServerNames = append(info.APIServerNames, c.Cluster.APIServer.CertSANs...)
	return info, nil
}

func prefixes(field string, cidrs []string) ([]netip.Prefix, error) {
	out := make([]netip.Prefix, 0, len(cidrs))
	for _, s := range cidrs {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", field, err)
		}
		out = append(out, p.Masked())
	}
	return out, nil
}
