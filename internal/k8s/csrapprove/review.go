package csrapprove

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"net/url"

	"github.com/plinthos/plinth/pkg/config"
)

// Kubectl runs kubectl (with a kubeconfig that may read nodes and CSRs and approve and deny
// CSRs) with args and returns its standard output.
type Kubectl func(ctx context.Context, args ...string) ([]byte, error)

// Review lists the certificate signing requests, approves the pending kubelet serving
// requests Decide accepts and denies the others, so that none waits for ever. It logs one
// line per request it approves or denies.
func Review(ctx context.Context, kubectl Kubectl, cluster ClusterInfo, logs io.Writer) error {
	out, err := kubectl(ctx, "get", "csr", "-o", "json")
	if err != nil {
		return fmt.Errorf("list certificate signing requests: %w", err)
	}
	reqs, err := ParseRequests(out)
	if err != nil {
		return err
	}
	var pending []Request
	for _, r := range reqs {
		if Pending(r) {
			pending = append(pending, r)
		}
	}
	if len(pending) == 0 {
		return nil
	}
	out, err = kubectl(ctx, "get", "nodes", "-o", "json")
	if err != nil {
		return fmt.Errorf("list nodes: %w", err)
	}
	nodes, err := ParseNodes(out)
	if err != nil {
		return err
	}
	var errs []error
	for _, r := range pending {
		approve, wait, reason := verdict(r, nodes, cluster)
		if wait {
			continue // the node may not have registered its addresses yet
		}
		if approve {
			if _, err := kubectl(ctx, "certificate", "approve", r.Name); err != nil {
				errs = append(errs, fmt.Errorf("approve %s: %w", r.Name, err))
				continue
			}
			fmt.Fprintf(logs, "approved kubelet serving certificate %s for %s\n", r.Name, r.Username)
			continue
		}
		if _, err := kubectl(ctx, "certificate", "deny", r.Name); err != nil {
			errs = append(errs, fmt.Errorf("deny %s (%s): %w", r.Name, reason, err))
			continue
		}
		fmt.Fprintf(logs, "denied kubelet serving certificate %s for %s: %s\n", r.Name, r.Username, reason)
	}
	return errors.Join(errs...)
}

// ParseRequests reads the output of `kubectl get csr -o json`.
func ParseRequests(data []byte) ([]Request, error) {
	var list struct {
		Items []struct {
			Metadata struct {
				Name string `json:"name"`
			} `json:"metadata"`
			Spec struct {
				SignerName string   `json:"signerName"`
				Username   string   `json:"username"`
				Groups     []string `json:"groups"`
				Usages     []string `json:"usages"`
				Request    string   `json:"request"`
			} `json:"spec"`
			Status struct {
				Conditions []struct {
					Type string `json:"type"`
				} `json:"conditions"`
			} `json:"status"`
		} `json:"items"`
	}
	if err := json.Unmarshal(data, &list); err != nil {
		return nil, fmt.Errorf("decode certificate signing requests: %w", err)
	}
	out := make([]Request, 0, len(list.Items))
	for _, it := range list.Items {
		r := Request{
			Name:       it.Metadata.Name,
			SignerName: it.Spec.SignerName,
			Username:   it.Spec.Username,
			Groups:     it.Spec.Groups,
			Usages:     it.Spec.Usages,
		}
		// A request that is not base64 keeps a nil PEM, which Decide refuses.
		if p, err := base64.StdEncoding.DecodeString(it.Spec.Request); err == nil {
			r.PEM = p
		}
		for _, c := range it.Status.Conditions {
			r.Conditions = append(r.Conditions, c.Type)
		}
		out = append(out, r)
	}
	return out, nil
}

// ParseNodes reads the output of `kubectl get nodes -o json`.
func ParseNodes(data []byte) ([]Node, error) {
	var list struct {
		Items []struct {
			Metadata struct {
				Name string `json:"name"`
			} `json:"metadata"`
			Status struct {
				Addresses []struct {
					Type    string `json:"type"`
					Address string `json:"address"`
				} `json:"addresses"`
			} `json:"status"`
		} `json:"items"`
	}
	if err := json.Unmarshal(data, &list); err != nil {
		return nil, fmt.Errorf("decode nodes: %w", err)
	}
	out := make([]Node, 0, len(list.Items))
	for _, it := range list.Items {
		n := Node{Name: it.Metadata.Name}
		for _, a := range it.Status.Addresses {
			n.Addresses = append(n.Addresses, Address{Type: a.Type, Address: a.Address})
		}
		out = append(out, n)
	}
	return out, nil
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
