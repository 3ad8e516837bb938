// Package kubeclient is a small typed client of the Kubernetes API: the few reads and
// writes Plinth makes itself (Nodes, CertificateSigningRequests, EndpointSlices, the
// readiness endpoints), over HTTPS with a kubeconfig's credentials; Patch and Get serve
// the package apply, which applies manifests of any kind.
package kubeclient

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/plinthos/plinth/internal/kubeconfig"
)

const (
	// Timeout bounds each request, whatever its context says.
	Timeout = 30 * time.Second
	// maxBody is the most of a response body that is read.
	maxBody = 32 << 20
	// maxMessage is the most of an error body that goes into an error.
	maxMessage = 2 << 10
)

// Client talks to one API server with one user's credentials. It is safe for concurrent
// use.
type Client struct {
	server string
	token  string
	http   *http.Client
}

// New builds a client from kubeconfig bytes (its current context, see
// kubeconfig.Config.Selected); server, when set, replaces the kubeconfig's server URL.
func New(data []byte, server string) (*Client, error) {
	kc, err := kubeconfig.Parse(data)
	if err != nil {
		return nil, err
	}
	return FromConfig(kc, server)
}

// NewFromFile builds a client from the kubeconfig at path (read now; relative certificate
// files are relative to it); server, when set, replaces the kubeconfig's server URL. A
// missing file is an error that wraps fs.ErrNotExist.
func NewFromFile(path, server string) (*Client, error) {
	kc, err := kubeconfig.Load(path)
	if err != nil {
		return nil, err
	}
	c, err := FromConfig(kc, server)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return c, nil
}

// FromConfig builds a client from a parsed kubeconfig; server, when set, replaces the
// kubeconfig's server URL.
func FromConfig(kc *kubeconfig.Config, server string) (*Client, error) {
	ep, err := kc.Endpoint()
	if err != nil {
		return nil, err
	}
	if server != "" {
		ep.Server = strings.TrimSuffix(server, "/")
	}
	u, err := url.Parse(ep.Server)
	if err != nil || u.Scheme != "https" || u.Host == "" {
		return nil, fmt.Errorf("API server %q: not an https:// URL", ep.Server)
	}
	tr := &http.Transport{
		TLSClientConfig:     ep.TLS,
		TLSHandshakeTimeout: 10 * time.Second,
		// Clients are often built for a few requests: idle connections do not outlive
		// them for long.
		IdleConnTimeout: 10 * time.Second,
		MaxIdleConns:    4,
	}
	return &Client{server: ep.Server, token: ep.Token, http: &http.Client{Transport: tr, Timeout: Timeout}}, nil
}

// Server is the API server's URL.
func (c *Client) Server() string { return c.server }

// Close closes the client's idle connections.
func (c *Client) Close() { c.http.CloseIdleConnections() }

// APIError is an answer of the API server other than a success.
type APIError struct {
	Method, Path string
	// StatusCode is the HTTP status.
	StatusCode int
	// Reason is the reason of the API's Status object (NotFound, Forbidden...), if it
	// sent one.
	Reason string
	// Message is the API's message, or the start of the body.
	Message string
}

func (e *APIError) Error() string {
	s := fmt.Sprintf("%s %s: %d %s", e.Method, e.Path, e.StatusCode, http.StatusText(e.StatusCode))
	if e.Message != "" {
		s += ": " + e.Message
	}
	return s
}

// IsNotFound says whether err is the API's answer that the object does not exist.
func IsNotFound(err error) bool {
	var e *APIError
	return errors.As(err, &e) && e.StatusCode == http.StatusNotFound
}

// Get fetches path (with its query) and decodes the JSON answer into v; with v nil, only
// the status matters.
func (c *Client) Get(ctx context.Context, path string, v any) error {
	return c.do(ctx, http.MethodGet, path, "", nil, v)
}

// Patch sends a PATCH of path (with its query) with body of contentType (a merge patch,
// an apply configuration, ...) and decodes the JSON answer into v (v nil: discarded).
func (c *Client) Patch(ctx context.Context, path, contentType string, body []byte, v any) error {
	return c.do(ctx, http.MethodPatch, path, contentType, body, v)
}

// do sends a request and decodes a successful JSON answer into v (v nil: discarded).
func (c *Client) do(ctx context.Context, method, path, contentType string, body []byte, v any) error {
	resp, err := c.send(ctx, method, path, contentType, "application/json, */*", body)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxBody+1))
	if err != nil {
		return fmt.Errorf("%s %s: read the answer: %w", method, path, err)
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return apiError(method, path, resp.StatusCode, data)
	}
	if len(data) > maxBody {
		return fmt.Errorf("%s %s: the answer is larger than %d MiB", method, path, maxBody>>20)
	}
	if v == nil {
		return nil
	}
	if err := json.Unmarshal(data, v); err != nil {
		return fmt.Errorf("%s %s: decode the answer: %w", method, path, err)
	}
	return nil
}

// send sends a request with the client's credentials and returns the answer, whatever its
// status; the caller closes its body.
func (c *Client) send(ctx context.Context, method, path, contentType, accept string, body []byte) (*http.Response, error) {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.server+path, rd)
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", method, path, err)
	}
	req.Header.Set("Accept", accept)
	req.Header.Set("User-Agent", "plinth")
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return nil, fmt.Errorf("%s %s%s: %w", method, c.server, path, err)
	}
	return resp, nil
}

// MetricLines returns the lines of the API server's /metrics (Prometheus text) that begin
// with prefix, reading the answer as it comes: it may be larger than an object.
func (c *Client) MetricLines(ctx context.Context, prefix string) ([]string, error) {
	const path = "/metrics"
	resp, err := c.send(ctx, http.MethodGet, path, "", "text/plain", nil)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		data, _ := io.ReadAll(io.LimitReader(resp.Body, maxMessage))
		return nil, apiError(http.MethodGet, path, resp.StatusCode, data)
	}
	var lines []string
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		if l := sc.Text(); strings.HasPrefix(l, prefix) {
			lines = append(lines, l)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("GET %s: read the answer: %w", path, err)
	}
	return lines, nil
}

// apiError reads the API's Status object out of an error body, or keeps the start of the
// body as the message.
func apiError(method, path string, code int, body []byte) *APIError {
	e := &APIError{Method: method, Path: path, StatusCode: code}
	var st struct {
		Kind    string `json:"kind"`
		Reason  string `json:"reason"`
		Message string `json:"message"`
	}
	if json.Unmarshal(body, &st) == nil && st.Kind == "Status" {
		e.Reason, e.Message = st.Reason, st.Message
		return e
	}
	var lines []string
	for l := range strings.Lines(string(body[:min(len(body), maxMessage)])) {
		if l = strings.TrimSpace(l); l != "" {
			lines = append(lines, l)
		}
	}
	e.Message = strings.Join(lines, "; ")
	if len(body) > maxMessage {
		e.Message += "..."
	}
	return e
}
