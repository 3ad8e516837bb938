// Package etcdgw is a small client of etcd's JSON gateway (the grpc-gateway etcd serves on
// its client port): member list, status, snapshot, member removal and leadership transfer,
// over HTTPS with a client certificate. It avoids a dependency on etcd's client library.
//
// The gateway speaks protojson with the proto field names (header.cluster_id, members[].ID,
// dbSize, ...); 64-bit integers are JSON strings. Streams (snapshot) are a sequence of
// JSON objects, each {"result": {...}} or {"error": {...}}.
package etcdgw

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"
)

// Client talks to one etcd member's gateway.
type Client struct {
	// Endpoint is the member's client URL, such as https://127.0.0.1:2379.
	Endpoint string
	// HTTP sends the requests; its transport carries the TLS configuration.
	HTTP *http.Client
}

// New returns a client of endpoint trusting caFile and authenticating with certFile/keyFile.
// The files are read on every connection, so rotated certificates are picked up.
func New(endpoint, caFile, certFile, keyFile string) *Client {
	host := endpoint
	if u, err := url.Parse(endpoint); err == nil && u.Hostname() != "" {
		host = u.Hostname()
	}
	tr := &http.Transport{
		Proxy: nil,
		TLSClientConfig: &tls.Config{
			MinVersion: tls.VersionTLS12,
			// The CA may not exist yet when the client is built (before the node has its
			// PKI): verification happens per connection, with the CA read then.
			InsecureSkipVerify: true, //nolint:gosec // verified in VerifyConnection below
			GetClientCertificate: func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
				c, err := tls.LoadX509KeyPair(certFile, keyFile)
				if err != nil {
					return nil, err
				}
				return &c, nil
			},
			VerifyConnection: func(cs tls.ConnectionState) error {
				pem, err := os.ReadFile(caFile)
				if err != nil {
					return err
				}
				return verify(cs, pem, host)
			},
		},
		ForceAttemptHTTP2:   true,
		TLSHandshakeTimeout: 10 * time.Second,
	}
	return &Client{Endpoint: endpoint, HTTP: &http.Client{Transport: tr}}
}

// verify checks the server's chain against the CA certificates in caPEM and that the
// certificate is valid for host.
func verify(cs tls.ConnectionState, caPEM []byte, host string) error {
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(caPEM) {
		return errors.New("etcd CA file holds no certificate")
	}
	if len(cs.PeerCertificates) == 0 {
		return errors.New("etcd presented no certificate")
	}
	opts := x509.VerifyOptions{Roots: pool, Intermediates: x509.NewCertPool(), DNSName: host,
		KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	for _, c := range cs.PeerCertificates[1:] {
		opts.Intermediates.AddCert(c)
	}
	_, err := cs.PeerCertificates[0].Verify(opts)
	return err
}

// Member is one etcd cluster member.
type Member struct {
	ID         uint64
	Name       string
	PeerURLs   []string
	ClientURLs []string
	IsLearner  bool
}

// Header is the response header etcd puts on every answer.
type Header struct {
	ClusterID uint64
	MemberID  uint64
	Revision  int64
	RaftTerm  uint64
}

// Status is a member's status.
type Status struct {
	Header           Header
	Version          string
	DBSize           int64
	DBSizeInUse      int64
	Leader           uint64
	RaftIndex        uint64
	RaftTerm         uint64
	RaftAppliedIndex uint64
	Errors           []string
	IsLearner        bool
	StorageVersion   string
}

// The JSON shapes. protojson writes 64-bit integers as strings; num accepts either.
type num string

func (n *num) UnmarshalJSON(b []byte) error {
	s := strings.Trim(string(b), `"`)
	*n = num(s)
	return nil
}

func (n num) u64() (uint64, error) {
	if n == "" {
		return 0, nil
	}
	return strconv.ParseUint(string(n), 10, 64)
}

func (n num) i64() (int64, error) {
	if n == "" {
		return 0, nil
	}
	return strconv.ParseInt(string(n), 10, 64)
}

type jsonHeader struct {
	ClusterID num `json:"cluster_id"`
	MemberID  num `json:"member_id"`
	Revision  num `json:"revision"`
	RaftTerm  num `json:"raft_term"`
}

type jsonMember struct {
	ID         num      `json:"ID"`
	Name       string   `json:"name"`
	PeerURLs   []string `json:"peerURLs"`
	ClientURLs []string `json:"clientURLs"`
	IsLearner  bool     `json:"isLearner"`
}

type jsonMembers struct {
	Header  jsonHeader   `json:"header"`
	Members []jsonMember `json:"members"`
}

type jsonStatus struct {
	Header           jsonHeader `json:"header"`
	Version          string     `json:"version"`
	DBSize           num        `json:"dbSize"`
	DBSizeInUse      num        `json:"dbSizeInUse"`
	Leader           num        `json:"leader"`
	RaftIndex        num        `json:"raftIndex"`
	RaftTerm         num        `json:"raftTerm"`
	RaftAppliedIndex num        `json:"raftAppliedIndex"`
	Errors           []string   `json:"errors"`
	IsLearner        bool       `json:"isLearner"`
	StorageVersion   string     `json:"storageVersion"`
}

// gwError is the gateway's error body (a google.rpc.Status).
type gwError struct {
	Code    int    `json:"code"`
	Message string `json:"message"`
}

// Error is an error etcd returned.
type Error struct {
	// Code is the gRPC status code.
	Code    int
	Message string
}

func (e *Error) Error() string { return fmt.Sprintf("etcd: %s (code %d)", e.Message, e.Code) }

// parser accumulates the first conversion error.
type parser struct{ err error }

func (p *parser) u64(n num, field string) uint64 {
	v, err := n.u64()
	if err != nil && p.err == nil {
		p.err = fmt.Errorf("etcd answer: %s: %w", field, err)
	}
	return v
}

func (p *parser) i64(n num, field string) int64 {
	v, err := n.i64()
	if err != nil && p.err == nil {
		p.err = fmt.Errorf("etcd answer: %s: %w", field, err)
	}
	return v
}

func (p *parser) header(h jsonHeader) Header {
	return Header{ClusterID: p.u64(h.ClusterID, "cluster_id"), MemberID: p.u64(h.MemberID, "member_id"),
		Revision: p.i64(h.Revision, "revision"), RaftTerm: p.u64(h.RaftTerm, "raft_term")}
}

func (p *parser) members(ms []jsonMember) []Member {
	out := make([]Member, 0, len(ms))
	for _, m := range ms {
		out = append(out, Member{ID: p.u64(m.ID, "ID"), Name: m.Name, PeerURLs: m.PeerURLs, ClientURLs: m.ClientURLs, IsLearner: m.IsLearner})
	}
	return out
}

// post sends body as JSON to path and returns the response, which the caller closes. A
// non-200 answer is turned into an *Error.
func (c *Client) post(ctx context.Context, path string, body any) (*http.Response, error) {
	b, err := json.Marshal(body)
	if err != nil {
		return nil, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, strings.TrimSuffix(c.Endpoint, "/")+path, bytes.NewReader(b))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := c.HTTP.Do(req)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		defer resp.Body.Close()
		data, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
		var ge gwError
		if json.Unmarshal(data, &ge) == nil && ge.Message != "" {
			return nil, &Error{Code: ge.Code, Message: ge.Message}
		}
		return nil, fmt.Errorf("etcd %s: HTTP %s: %s", path, resp.Status, strings.TrimSpace(string(data)))
	}
	return resp, nil
}

// call posts body to path and decodes the answer into out.
func (c *Client) call(ctx context.Context, path string, body, out any) error {
	resp, err := c.post(ctx, path, body)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(io.LimitReader(resp.Body, 16<<20)).Decode(out); err != nil {
		return fmt.Errorf("etcd %s: decode answer: %w", path, err)
	}
	return nil
}

// MemberList lists the cluster's members (linearizably).
func (c *Client) MemberList(ctx context.Context) (Header, []Member, error) {
	var out jsonMembers
	if err := c.call(ctx, "/v3/cluster/member/list", map[string]any{"linearizable": true}, &out); err != nil {
		return Header{}, nil, err
	}
	var p parser
	h, ms := p.header(out.Header), p.members(out.Members)
	return h, ms, p.err
}

// Status reports the member's status.
func (c *Client) Status(ctx context.Context) (Status, error) {
	var out jsonStatus
	if err := c.call(ctx, "/v3/maintenance/status", struct{}{}, &out); err != nil {
		return Status{}, err
	}
	var p parser
	st := Status{Header: p.header(out.Header), Version: out.Version, DBSize: p.i64(out.DBSize, "dbSize"),
		DBSizeInUse: p.i64(out.DBSizeInUse, "dbSizeInUse"), Leader: p.u64(out.Leader, "leader"),
		RaftIndex: p.u64(out.RaftIndex, "raftIndex"), RaftTerm: p.u64(out.RaftTerm, "raftTerm"),
		RaftAppliedIndex: p.u64(out.RaftAppliedIndex, "raftAppliedIndex"), Errors: out.Errors,
		IsLearner: out.IsLearner, StorageVersion: out.StorageVersion}
	return st, p.err
}

// RemoveMember removes the member with id from the cluster and returns the members left.
func (c *Client) RemoveMember(ctx context.Context, id uint64) ([]Member, error) {
	var out jsonMembers
	if err := c.call(ctx, "/v3/cluster/member/remove", map[string]string{"ID": strconv.FormatUint(id, 10)}, &out); err != nil {
		return nil, err
	}
	var p parser
	ms := p.members(out.Members)
	return ms, p.err
}

// AddLearner adds a non-voting member that will serve at peerURLs and returns it with the
// cluster's members, itself included. The new member must then start with
// --initial-cluster-state=existing and be promoted once it caught up (PromoteMember).
func (c *Client) AddLearner(ctx context.Context, peerURLs []string) (Member, []Member, error) {
	var out struct {
		Header  jsonHeader   `json:"header"`
		Member  jsonMember   `json:"member"`
		Members []jsonMember `json:"members"`
	}
	if err := c.call(ctx, "/v3/cluster/member/add", map[string]any{"peerURLs": peerURLs, "isLearner": true}, &out); err != nil {
		return Member{}, nil, err
	}
	var p parser
	added := p.members([]jsonMember{out.Member})[0]
	ms := p.members(out.Members)
	return added, ms, p.err
}

// PromoteMember turns the learner id into a voting member. etcd refuses while the learner
// has not caught up with the leader (an *Error; try again later).
func (c *Client) PromoteMember(ctx context.Context, id uint64) ([]Member, error) {
	var out jsonMembers
	if err := c.call(ctx, "/v3/cluster/member/promote", map[string]string{"ID": strconv.FormatUint(id, 10)}, &out); err != nil {
		return nil, err
	}
	var p parser
	ms := p.members(out.Members)
	return ms, p.err
}

// MoveLeader hands leadership to the member targetID. It must be sent to the leader.
func (c *Client) MoveLeader(ctx context.Context, targetID uint64) error {
	var out struct {
		Header jsonHeader `json:"header"`
	}
	return c.call(ctx, "/v3/maintenance/transfer-leadership", map[string]string{"targetID": strconv.FormatUint(targetID, 10)}, &out)
}

// ErrIncompleteSnapshot is returned when the snapshot stream ends before etcd said that
// no bytes remain.
var ErrIncompleteSnapshot = errors.New("etcd snapshot stream ended early")

// Snapshot streams a snapshot of the member's database into w and returns the number of
// bytes written.
func (c *Client) Snapshot(ctx context.Context, w io.Writer) (int64, error) {
	resp, err := c.post(ctx, "/v3/maintenance/snapshot", struct{}{})
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	dec := json.NewDecoder(resp.Body)
	var total int64
	done := false
	for {
		var msg struct {
			Result *struct {
				RemainingBytes num    `json:"remaining_bytes"`
				Blob           []byte `json:"blob"` // base64 in JSON, as encoding/json expects
			} `json:"result"`
			Error *gwError `json:"error"`
		}
		err := dec.Decode(&msg)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return total, fmt.Errorf("etcd snapshot: decode: %w", err)
		}
		if msg.Error != nil {
			return total, &Error{Code: msg.Error.Code, Message: msg.Error.Message}
		}
		if msg.Result == nil {
			continue
		}
		if len(msg.Result.Blob) > 0 {
			n, err := w.Write(msg.Result.Blob)
			total += int64(n)
			if err != nil {
				return total, err
			}
		}
		rem, err := msg.Result.RemainingBytes.u64()
		if err != nil {
			return total, fmt.Errorf("etcd snapshot: remaining_bytes: %w", err)
		}
		// The data chunks count down to 0; etcd then sends the database's sha256 (also
		// with 0 remaining), which belongs in the file: etcdutl checks it on restore.
		done = rem == 0
	}
	if !done || total == 0 {
		return total, ErrIncompleteSnapshot
	}
	return total, nil
}
