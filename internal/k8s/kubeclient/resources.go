package kubeclient

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/plinthos/plinth/internal/k8s/objects"
)

const csrPath = "/apis/certificates.k8s.io/v1/certificatesigningrequests"

// list is the part of a list answer Plinth reads.
type list[T any] struct {
	Items []T `json:"items"`
}

// withSelector appends a label selector query to path ("" for none).
func withSelector(path, selector string) string {
	if selector == "" {
		return path
	}
	return path + "?" + url.Values{"labelSelector": {selector}}.Encode()
}

// Readyz asks the API server whether it is ready (GET /readyz). The error of a server not
// ready names the checks that fail.
func (c *Client) Readyz(ctx context.Context) error {
	err := c.Get(ctx, "/readyz", nil)
	if e := (*APIError)(nil); errors.As(err, &e) {
		var failed []string
		for l := range strings.SplitSeq(e.Message, "; ") {
			if strings.HasPrefix(l, "[-]") {
				failed = append(failed, strings.TrimPrefix(l, "[-]"))
			}
		}
		if len(failed) > 0 {
			e.Message = "failed: " + strings.Join(failed, "; ")
		}
	}
	return err
}

// ListNodes lists the Nodes that match a label selector ("" for all).
func (c *Client) ListNodes(ctx context.Context, selector string) ([]objects.Node, error) {
	var l list[objects.Node]
	if err := c.Get(ctx, withSelector("/api/v1/nodes", selector), &l); err != nil {
		return nil, err
	}
	return l.Items, nil
}

// GetNode reads the Node name; IsNotFound tells a node not registered (yet).
func (c *Client) GetNode(ctx context.Context, name string) (*objects.Node, error) {
	var n objects.Node
	if err := c.Get(ctx, "/api/v1/nodes/"+url.PathEscape(name), &n); err != nil {
		return nil, err
	}
	return &n, nil
}

// MergePatchNode applies a JSON merge patch (RFC 7386) to the Node name.
func (c *Client) MergePatchNode(ctx context.Context, name string, patch []byte) error {
	return c.do(ctx, http.MethodPatch, "/api/v1/nodes/"+url.PathEscape(name), "application/merge-patch+json", patch, nil)
}

// LabelNode sets labels on the Node name (a merge patch of its labels).
func (c *Client) LabelNode(ctx context.Context, name string, labels map[string]string) error {
	patch, err := json.Marshal(map[string]any{"metadata": map[string]any{"labels": labels}})
	if err != nil {
		return err
	}
	return c.MergePatchNode(ctx, name, patch)
}

// ListCSRs lists the certificate signing requests.
func (c *Client) ListCSRs(ctx context.Context) ([]objects.CertificateSigningRequest, error) {
	var l list[objects.CertificateSigningRequest]
	if err := c.Get(ctx, csrPath, &l); err != nil {
		return nil, err
	}
	return l.Items, nil
}

// CreateCSR creates a certificate signing request for the PEM request csrPEM, to be signed
// by signer with usages, named with the prefix generateName; it returns the name given.
func (c *Client) CreateCSR(ctx context.Context, generateName string, csrPEM []byte, signer string, usages []string) (string, error) {
	body, err := json.Marshal(map[string]any{
		"apiVersion": "certificates.k8s.io/v1",
		"kind":       "CertificateSigningRequest",
		"metadata":   map[string]any{"generateName": generateName},
		"spec":       map[string]any{"request": base64.StdEncoding.EncodeToString(csrPEM), "signerName": signer, "usages": usages},
	})
	if err != nil {
		return "", err
	}
	var created objects.CertificateSigningRequest
	if err := c.do(ctx, http.MethodPost, csrPath, "application/json", body, &created); err != nil {
		return "", err
	}
	return created.Metadata.Name, nil
}

// GetCSR reads the certificate signing request name.
func (c *Client) GetCSR(ctx context.Context, name string) (*objects.CertificateSigningRequest, error) {
	var csr objects.CertificateSigningRequest
	if err := c.Get(ctx, csrPath+"/"+url.PathEscape(name), &csr); err != nil {
		return nil, err
	}
	return &csr, nil
}

// ApproveCSR approves the certificate signing request name, saying why in message.
func (c *Client) ApproveCSR(ctx context.Context, name, message string) error {
	return c.decideCSR(ctx, name, "Approved", "PlinthApprove", message)
}

// DenyCSR denies the certificate signing request name, saying why in message.
func (c *Client) DenyCSR(ctx context.Context, name, message string) error {
	return c.decideCSR(ctx, name, "Denied", "PlinthDeny", message)
}

// decideCSR adds a condition to a request through its approval subresource: the request
// as read, resource version included (a concurrent change fails with a conflict), with one
// more condition. A request that already has the condition is left as it is.
func (c *Client) decideCSR(ctx context.Context, name, condition, reason, message string) error {
	path := csrPath + "/" + url.PathEscape(name)
	var raw json.RawMessage
	if err := c.Get(ctx, path, &raw); err != nil {
		return err
	}
	// Untyped, so that the fields this package does not know go back as they came.
	var obj map[string]any
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	if err := dec.Decode(&obj); err != nil {
		return fmt.Errorf("GET %s: decode the answer: %w", path, err)
	}
	status, _ := obj["status"].(map[string]any)
	if status == nil {
		status = map[string]any{}
		obj["status"] = status
	}
	conds, _ := status["conditions"].([]any)
	if slices.ContainsFunc(conds, func(c any) bool {
		m, _ := c.(map[string]any)
		return m["type"] == condition && m["status"] == "True"
	}) {
		return nil
	}
	status["conditions"] = append(conds, map[string]any{
		"type": condition, "status": "True", "reason": reason, "message": message,
		"lastUpdateTime": time.Now().UTC().Format(time.RFC3339),
	})
	body, err := json.Marshal(obj)
	if err != nil {
		return err
	}
	return c.do(ctx, http.MethodPut, path+"/approval", "application/json", body, nil)
}

// ListEndpointSlices lists the EndpointSlices of namespace that match a label selector.
func (c *Client) ListEndpointSlices(ctx context.Context, namespace, selector string) ([]objects.EndpointSlice, error) {
	var l list[objects.EndpointSlice]
	path := withSelector("/apis/discovery.k8s.io/v1/namespaces/"+url.PathEscape(namespace)+"/endpointslices", selector)
	if err := c.Get(ctx, path, &l); err != nil {
		return nil, err
	}
	return l.Items, nil
}

// APIServerAddresses returns the addresses of the cluster's API servers: those of the
// EndpointSlices of the default/kubernetes Service, each once, in the API's order.
func (c *Client) APIServerAddresses(ctx context.Context) ([]string, error) {
	eps, err := c.ListEndpointSlices(ctx, "default", "kubernetes.io/service-name=kubernetes")
	if err != nil {
		return nil, fmt.Errorf("list the API servers: %w", err)
	}
	var out []string
	for _, s := range eps {
		for _, e := range s.Endpoints {
			for _, a := range e.Addresses {
				if !slices.Contains(out, a) {
					out = append(out, a)
				}
			}
		}
	}
	return out, nil
}

// APIServerAddresses returns the addresses of the cluster's API servers, asked with the
// kubeconfig at kubeconfigPath (read now) to the API server at server ("" for the
// kubeconfig's).
func APIServerAddresses(ctx context.Context, kubeconfigPath, server string) ([]string, error) {
	c, err := NewFromFile(kubeconfigPath, server)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	return c.APIServerAddresses(ctx)
}

// ListPodsOn lists the pods the scheduler put on the Node node, in every namespace.
func (c *Client) ListPodsOn(ctx context.Context, node string) ([]objects.RunningPod, error) {
	var l list[objects.RunningPod]
	q := url.Values{"fieldSelector": {"spec.nodeName=" + node}}.Encode()
	if err := c.Get(ctx, "/api/v1/pods?"+q, &l); err != nil {
		return nil, err
	}
	return l.Items, nil
}

// GetPod reads a pod; IsNotFound tells one that is gone.
func (c *Client) GetPod(ctx context.Context, namespace, name string) (*objects.RunningPod, error) {
	var p objects.RunningPod
	if err := c.Get(ctx, "/api/v1/namespaces/"+url.PathEscape(namespace)+"/pods/"+url.PathEscape(name), &p); err != nil {
		return nil, err
	}
	return &p, nil
}

// Evict asks the API to evict a pod (policy/v1 Eviction), which honours its
// PodDisruptionBudgets: IsTooManyRequests tells an eviction a budget refuses for now.
func (c *Client) Evict(ctx context.Context, namespace, name string) error {
	body, err := json.Marshal(map[string]any{"apiVersion": "policy/v1", "kind": "Eviction",
		"metadata": map[string]string{"name": name, "namespace": namespace}})
	if err != nil {
		return err
	}
	return c.do(ctx, http.MethodPost, "/api/v1/namespaces/"+url.PathEscape(namespace)+"/pods/"+url.PathEscape(name)+"/eviction",
		"application/json", body, nil)
}

// IsTooManyRequests says whether err is the API's 429: an eviction that a disruption
// budget does not allow yet.
func IsTooManyRequests(err error) bool {
	var e *APIError
	return errors.As(err, &e) && e.StatusCode == http.StatusTooManyRequests
}

// GetDaemonSet reads the DaemonSet namespace/name.
func (c *Client) GetDaemonSet(ctx context.Context, namespace, name string) (*objects.DaemonSet, error) {
	var ds objects.DaemonSet
	if err := c.Get(ctx, "/apis/apps/v1/namespaces/"+url.PathEscape(namespace)+"/daemonsets/"+url.PathEscape(name), &ds); err != nil {
		return nil, err
	}
	return &ds, nil
}

// Version is the API server's /version: its Kubernetes version (such as v1.37.2).
func (c *Client) Version(ctx context.Context) (string, error) {
	var v struct {
		GitVersion string `json:"gitVersion"`
	}
	if err := c.Get(ctx, "/version", &v); err != nil {
		return "", err
	}
	return v.GitVersion, nil
}
