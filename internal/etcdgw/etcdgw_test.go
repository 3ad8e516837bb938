package etcdgw

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/plinthos/plinth/pkg/pki"
)

// fakeEtcd mimics etcd's JSON gateway: protojson with proto field names, 64-bit integers
// as strings, zero values left out, streams as concatenated {"result": ...} objects.
type fakeEtcd struct {
	mu       sync.Mutex
	members  []map[string]any
	requests map[string]string // path -> last body
	snapshot []byte
	// snapshotError, when set, ends the stream with an error message after one chunk.
	snapshotError bool
	// truncate ends the stream before remaining_bytes reaches 0.
	truncate bool
}

func newFake() *fakeEtcd {
	return &fakeEtcd{
		members: []map[string]any{
			{"ID": "10501334649042878790", "name": "cp-1", "peerURLs": []string{"https://10.5.0.2:2380"}, "clientURLs": []string{"https://10.5.0.2:2379"}},
			{"ID": "2", "name": "cp-2", "peerURLs": []string{"https://10.5.0.3:2380"}, "isLearner": true},
		},
		requests: map[string]string{},
	}
}

var header = map[string]any{"cluster_id": "14841639068965178418", "member_id": "10501334649042878790", "revision": "42", "raft_term": "3"}

func (f *fakeEtcd) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	f.mu.Lock()
	defer f.mu.Unlock()
	f.requests[r.URL.Path] = string(body)
	if r.Method != http.MethodPost {
		http.Error(w, "method", http.StatusMethodNotAllowed)
		return
	}
	enc := json.NewEncoder(w)
	switch r.URL.Path {
	case "/v3/cluster/member/list":
		_ = enc.Encode(map[string]any{"header": header, "members": f.members})
	case "/v3/maintenance/status":
		_ = enc.Encode(map[string]any{"header": header, "version": "3.7.3", "dbSize": "20480", "leader": "10501334649042878790",
			"raftIndex": "77", "raftTerm": "3", "raftAppliedIndex": "77", "dbSizeInUse": "16384", "storageVersion": "3.7.0",
			"errors": []string{"NOSPACE"}})
	case "/v3/cluster/member/remove":
		var req struct {
			ID string `json:"ID"`
		}
		_ = json.Unmarshal(body, &req)
		var left []map[string]any
		found := false
		for _, m := range f.members {
			if m["ID"] == req.ID {
				found = true
				continue
			}
			left = append(left, m)
		}
		if !found {
			w.WriteHeader(http.StatusNotFound)
			_ = enc.Encode(map[string]any{"code": 5, "message": "etcdserver: member not found", "details": []any{}})
			return
		}
		f.members = left
		_ = enc.Encode(map[string]any{"header": header, "members": left})
	case "/v3/cluster/member/add":
		var req struct {
			PeerURLs  []string `json:"peerURLs"`
			IsLearner bool     `json:"isLearner"`
		}
		_ = json.Unmarshal(body, &req)
		m := map[string]any{"ID": "18446744073709551615", "peerURLs": req.PeerURLs, "isLearner": req.IsLearner}
		f.members = append(f.members, m)
		_ = enc.Encode(map[string]any{"header": header, "member": m, "members": f.members})
	case "/v3/cluster/member/promote":
		w.WriteHeader(http.StatusPreconditionFailed)
		_ = enc.Encode(map[string]any{"code": 9, "message": "etcdserver: can only promote a learner member which is in sync with leader"})
	case "/v3/maintenance/transfer-leadership":
		_ = enc.Encode(map[string]any{"header": header})
	case "/v3/maintenance/snapshot":
		// The first message carries only the version, like etcd 3.6+.
		total := len(f.snapshot)
		_ = enc.Encode(map[string]any{"result": map[string]any{"header": header, "remaining_bytes": fmt.Sprint(total), "version": "3.7.0"}})
		for sent := 0; sent < total; {
			n := min(7, total-sent)
			chunk := f.snapshot[sent : sent+n]
			sent += n
			res := map[string]any{"blob": base64.StdEncoding.EncodeToString(chunk), "version": "3.7.0"}
			if rem := total - sent; rem > 0 {
				res["remaining_bytes"] = fmt.Sprint(rem)
			} else if f.truncate {
				return
			}
			_ = enc.Encode(map[string]any{"result": res})
			if f.snapshotError {
				_ = enc.Encode(map[string]any{"error": map[string]any{"code": 14, "message": "etcdserver: leader changed"}})
				return
			}
		}
		// The checksum, with nothing remaining.
		_ = enc.Encode(map[string]any{"result": map[string]any{"blob": base64.StdEncoding.EncodeToString([]byte("SHA")), "version": "3.7.0"}})
	default:
		http.NotFound(w, r)
	}
}

func testClient(t *testing.T, f *fakeEtcd) *Client {
	t.Helper()
	srv := httptest.NewTLSServer(f)
	t.Cleanup(srv.Close)
	return &Client{Endpoint: srv.URL, HTTP: srv.Client()}
}

func TestMemberList(t *testing.T) {
	f := newFake()
	c := testClient(t, f)
	h, ms, err := c.MemberList(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if h.ClusterID != 14841639068965178418 || h.MemberID != 10501334649042878790 || h.Revision != 42 || h.RaftTerm != 3 {
		t.Errorf("header = %+v", h)
	}
	if len(ms) != 2 || ms[0].ID != 10501334649042878790 || ms[0].Name != "cp-1" || ms[0].PeerURLs[0] != "https://10.5.0.2:2380" ||
		ms[0].ClientURLs[0] != "https://10.5.0.2:2379" || ms[0].IsLearner || ms[1].ID != 2 || !ms[1].IsLearner || len(ms[1].ClientURLs) != 0 {
		t.Errorf("members = %+v", ms)
	}
	if got := f.requests["/v3/cluster/member/list"]; got != `{"linearizable":true}` {
		t.Errorf("request body = %s", got)
	}
}

func TestStatus(t *testing.T) {
	c := testClient(t, newFake())
	st, err := c.Status(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if st.Version != "3.7.3" || st.DBSize != 20480 || st.DBSizeInUse != 16384 || st.Leader != 10501334649042878790 ||
		st.RaftIndex != 77 || st.RaftTerm != 3 || st.RaftAppliedIndex != 77 || st.StorageVersion != "3.7.0" ||
		len(st.Errors) != 1 || st.Header.MemberID != 10501334649042878790 {
		t.Errorf("status = %+v", st)
	}
}

func TestRemoveMember(t *testing.T) {
	f := newFake()
	c := testClient(t, f)
	left, err := c.RemoveMember(context.Background(), 2)
	if err != nil {
		t.Fatal(err)
	}
	if len(left) != 1 || left[0].Name != "cp-1" {
		t.Errorf("left = %+v", left)
	}
	if got := f.requests["/v3/cluster/member/remove"]; got != `{"ID":"2"}` {
		t.Errorf("request body = %s", got)
	}
	// etcd's error comes back as an *Error with the gRPC code.
	_, err = c.RemoveMember(context.Background(), 99)
	var e *Error
	if !errors.As(err, &e) || e.Code != 5 || !strings.Contains(e.Message, "member not found") {
		t.Errorf("removing an unknown member: %v", err)
	}
}

func TestAddLearner(t *testing.T) {
	f := newFake()
	c := testClient(t, f)
	added, ms, err := c.AddLearner(context.Background(), []string{"https://10.5.0.4:2380"})
	if err != nil {
		t.Fatal(err)
	}
	if added.ID != 18446744073709551615 || !added.IsLearner || added.Name != "" || added.PeerURLs[0] != "https://10.5.0.4:2380" {
		t.Errorf("added = %+v", added)
	}
	if len(ms) != 3 || ms[2].ID != added.ID {
		t.Errorf("members = %+v", ms)
	}
	if got := f.requests["/v3/cluster/member/add"]; got != `{"isLearner":true,"peerURLs":["https://10.5.0.4:2380"]}` {
		t.Errorf("request body = %s", got)
	}
}

func TestPromoteMemberRefused(t *testing.T) {
	f := newFake()
	c := testClient(t, f)
	_, err := c.PromoteMember(context.Background(), 2)
	var e *Error
	if !errors.As(err, &e) || e.Code != 9 || !strings.Contains(e.Message, "in sync") {
		t.Errorf("PromoteMember = %v, want etcd's refusal", err)
	}
	if got := f.requests["/v3/cluster/member/promote"]; got != `{"ID":"2"}` {
		t.Errorf("request body = %s", got)
	}
}

func TestMoveLeader(t *testing.T) {
	f := newFake()
	c := testClient(t, f)
	if err := c.MoveLeader(context.Background(), 10501334649042878790); err != nil {
		t.Fatal(err)
	}
	if got := f.requests["/v3/maintenance/transfer-leadership"]; got != `{"targetID":"10501334649042878790"}` {
		t.Errorf("request body = %s", got)
	}
}

func TestSnapshot(t *testing.T) {
	f := newFake()
	f.snapshot = bytes.Repeat([]byte("bbolt-db-"), 10)
	c := testClient(t, f)
	var buf bytes.Buffer
	n, err := c.Snapshot(context.Background(), &buf)
	if err != nil {
		t.Fatal(err)
	}
	want := append(bytes.Clone(f.snapshot), "SHA"...)
	if !bytes.Equal(buf.Bytes(), want) || n != int64(len(want)) {
		t.Errorf("snapshot = %q (%d bytes), want %q", buf.Bytes(), n, want)
	}

	f.snapshotError = true
	buf.Reset()
	_, err = c.Snapshot(context.Background(), &buf)
	var e *Error
	if !errors.As(err, &e) || e.Code != 14 {
		t.Errorf("stream error: %v", err)
	}

	f.snapshotError, f.truncate = false, true
	if _, err := c.Snapshot(context.Background(), io.Discard); !errors.Is(err, ErrIncompleteSnapshot) {
		t.Errorf("truncated stream: %v", err)
	}
}

func TestHTTPErrorWithoutJSON(t *testing.T) {
	c := testClient(t, newFake())
	c.Endpoint += "/nope"
	if _, err := c.Status(context.Background()); err == nil || !strings.Contains(err.Error(), "404") {
		t.Errorf("error = %v", err)
	}
}

// TestNewVerifiesBothSides runs New's TLS configuration against a server that requires
// a client certificate from the same CA, and checks that a server from another CA is refused.
func TestNewVerifiesBothSides(t *testing.T) {
	dir := t.TempDir()
	ca := newCA(t, "etcd-ca")
	server := issue(t, ca, "etcd", pki.UsageServer)
	client := issue(t, ca, "kube-etcd-healthcheck-client", pki.UsageClient)
	write := func(name string, data []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, data, 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	caFile := write("ca.crt", ca.CertPEM)
	certFile, keyFile := write("c.crt", client.CertPEM), write("c.key", client.KeyPEM)

	srv := httptest.NewUnstartedServer(newFake())
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(ca.CertPEM)
	srvCert, err := tls.X509KeyPair(server.CertPEM, server.KeyPEM)
	if err != nil {
		t.Fatal(err)
	}
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{srvCert}, ClientAuth: tls.RequireAndVerifyClientCert, ClientCAs: pool}
	srv.StartTLS()
	defer srv.Close()

	c := New(srv.URL, caFile, certFile, keyFile)
	defer c.HTTP.CloseIdleConnections()
	if _, err := c.Status(context.Background()); err != nil {
		t.Fatalf("status over mutual TLS: %v", err)
	}

	// A server whose certificate another CA signed is refused.
	other := newCA(t, "other")
	write("ca.crt", other.CertPEM)
	c2 := New(srv.URL, caFile, certFile, keyFile)
	defer c2.HTTP.CloseIdleConnections()
	if _, err := c2.Status(context.Background()); err == nil {
		t.Error("a server signed by another CA was accepted")
	}
}

func newCA(t *testing.T, name string) *pki.KeyPair {
	t.Helper()
	ca, err := pki.NewCA(pki.CAOptions{CommonName: name, Validity: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	return ca
}

func issue(t *testing.T, ca *pki.KeyPair, cn string, usage pki.Usage) *pki.KeyPair {
	t.Helper()
	kp, err := pki.Issue(ca, pki.CertOptions{CommonName: cn, DNSNames: []string{"localhost"}, IPAddresses: []net.IP{net.ParseIP("127.0.0.1")},
		Usage: usage, Validity: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	return kp
}
