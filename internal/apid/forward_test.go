package apid

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/connectivity"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/plinthos/plinth/pkg/api/machine"
	"github.com/plinthos/plinth/pkg/pki"
	"github.com/plinthos/plinth/pkg/role"
)

func writePolicy(t *testing.T, path string, p Policy) {
	t.Helper()
	data, err := json.Marshal(p)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	// The policy is reread at most once per second, on a change of time or size.
	future := time.Now().Add(time.Duration(len(data)) * time.Millisecond)
	_ = os.Chtimes(path, future, future)
}

// nodeCert issues a node API certificate as the node PKI does: orgs and usage given.
func nodeCert(t *testing.T, ca *pki.KeyPair, orgs []string, usage pki.Usage) *pki.KeyPair {
	t.Helper()
	kp, err := pki.Issue(ca, pki.CertOptions{CommonName: "10.5.0.9", Organization: orgs, IPAddresses: []net.IP{net.ParseIP("10.5.0.9")},
		Usage: usage, Validity: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	return kp
}

func version(t *testing.T, conn *grpc.ClientConn, kv ...string) (*machine.VersionResponse, error) {
	t.Helper()
	ctx := ctxTimeout(t)
	if len(kv) > 0 {
		ctx = metadata.AppendToOutgoingContext(ctx, kv...)
	}
	return machine.NewMachineServiceClient(conn).Version(ctx, &machine.VersionRequest{})
}

func reboot(t *testing.T, conn *grpc.ClientConn, kv ...string) error {
	t.Helper()
	ctx := ctxTimeout(t)
	if len(kv) > 0 {
		ctx = metadata.AppendToOutgoingContext(ctx, kv...)
	}
	_, err := machine.NewMachineServiceClient(conn).Reboot(ctx, &machine.RebootRequest{})
	return err
}

func chainValue(certs ...*pki.KeyPair) string {
	var parts []string
	for _, c := range certs {
		parts = append(parts, base64.StdEncoding.EncodeToString(c.Cert.Raw))
	}
	return strings.Join(parts, ",")
}

// TestJoinTokenCertificateIsNoRole is the regression test of finding 2: trustd gave every
// join-token holder an "os:impersonator" certificate with client usage, and apid took any
// roles such a certificate stated in metadata. A certificate as trustd issued it then, and
// one as it issues it now (server usage only, no organization), get nothing.
func TestJoinTokenCertificateIsNoRole(t *testing.T) {
	p := newPKI(t)
	n := startNode(t, p, "node-a", listen(t), "")
	old := nodeCert(t, p.ca, []string{"os:impersonator"}, pki.UsageServer|pki.UsageClient)
	conn := clientConn(t, p, n.addr, old)
	if _, err := version(t, conn, role.MetadataKey, role.Admin); status.Code(err) != codes.PermissionDenied {
		t.Errorf("an old impersonator certificate stating os:admin: Version = %v, want PermissionDenied", err)
	}
	if err := reboot(t, conn, role.MetadataKey, role.Admin); status.Code(err) != codes.PermissionDenied {
		t.Errorf("an old impersonator certificate stating os:admin: Reboot = %v, want PermissionDenied", err)
	}
	// A worker's certificate now serves only: TLS refuses it as a client certificate.
	worker := nodeCert(t, p.ca, nil, pki.UsageServer)
	if _, err := version(t, clientConn(t, p, n.addr, worker), role.MetadataKey, role.Admin); err == nil {
		t.Error("a server-only worker certificate was accepted as a client")
	}
}

// TestForwarderCannotAddRoles: a control plane's forwarder certificate carries no role; a
// forwarded call has exactly the roles of the client certificate it passes on, which the
// receiving node verifies itself.
func TestForwarderCannotAddRoles(t *testing.T) {
	p := newPKI(t)
	n := startNode(t, p, "node-b", listen(t), "")
	fwd := clientConn(t, p, n.addr, nodeCert(t, p.ca, []string{role.Forwarder}, pki.UsageServer|pki.UsageClient))
	reader := clientCert(t, p.ca, []string{role.Reader}, time.Time{})

	// Forwarding a reader while stating os:admin gets a reader.
	resp, err := version(t, fwd, role.ForwardedCertKey, chainValue(reader), role.MetadataKey, role.Admin)
	if err != nil || resp.Tag != role.Reader {
		t.Errorf("forwarded reader: Version = %v, %v; want roles %q", resp.GetTag(), err, role.Reader)
	}
	if err := reboot(t, fwd, role.ForwardedCertKey, chainValue(reader), role.MetadataKey, role.Admin); status.Code(err) != codes.PermissionDenied {
		t.Errorf("forwarded reader stating os:admin: Reboot = %v, want PermissionDenied", err)
	}
	for name, kv := range map[string][]string{
		"no forwarded certificate":                  {role.MetadataKey, role.Admin},
		"a certificate of another CA":               {role.ForwardedCertKey, chainValue(clientCert(t, p.otherCA, []string{role.Admin}, time.Time{}))},
		"an expired admin certificate":              {role.ForwardedCertKey, chainValue(clientCert(t, p.ca, []string{role.Admin}, time.Now().Add(-3*time.Hour)))},
		"a node certificate as the client's":        {role.ForwardedCertKey, chainValue(nodeCert(t, p.ca, []string{role.Forwarder, role.Admin}, pki.UsageServer|pki.UsageClient))},
		"a server-only certificate as the client's": {role.ForwardedCertKey, chainValue(nodeCert(t, p.ca, []string{role.Admin}, pki.UsageServer))},
		"garbage": {role.ForwardedCertKey, "not base64!"},
	} {
		if _, err := version(t, fwd, kv...); status.Code(err) != codes.Unauthenticated {
			t.Errorf("forwarder with %s: Version = %v, want Unauthenticated", name, err)
		}
	}
	// A client certificate cannot pass on another certificate: its own roles count.
	conn := clientConn(t, p, n.addr, reader)
	admin := clientCert(t, p.ca, []string{role.Admin}, time.Time{})
	if resp, err := version(t, conn, role.ForwardedCertKey, chainValue(admin)); err != nil || resp.Tag != role.Reader {
		t.Errorf("a reader passing on an admin certificate: Version = %v, %v; want roles %q", resp.GetTag(), err, role.Reader)
	}
}

// TestWorkersDoNotForward: a worker's apid refuses a request for another node, and a
// control plane forwards only to known members, without dialling anything else.
func TestWorkersDoNotForward(t *testing.T) {
	p := newPKI(t)
	lb := listen(t)
	_, port, _ := net.SplitHostPort(lb.Addr().String())
	startNode(t, p, "node-b", lb, port)
	w := startNodeWith(t, p, "worker", listen(t), port, nodeOptions{policy: Policy{Members: []string{"127.0.0.1"}}})
	admin := clientCert(t, p.ca, []string{role.Admin}, time.Time{})
	_, err := version(t, clientConn(t, p, w.addr, admin), NodeMetadataKey, "127.0.0.1")
	if status.Code(err) != codes.FailedPrecondition || !strings.Contains(err.Error(), "only control-plane nodes forward") {
		t.Errorf("a worker asked to forward: %v", err)
	}

	cp := startNodeWith(t, p, "cp", listen(t), port, nodeOptions{controlPlane: true, policy: Policy{Members: []string{"10.5.0.3"}}})
	conn := clientConn(t, p, cp.addr, clientCert(t, p.ca, []string{role.Reader}, time.Time{}))
	for _, target := range []string{"127.0.0.1", "192.0.2.1", "localhost"} {
		_, err := version(t, conn, NodeMetadataKey, target)
		if status.Code(err) != codes.NotFound || !strings.Contains(err.Error(), "not a node of this cluster") {
			t.Errorf("forward to unknown %s: %v", target, err)
		}
	}
	cp.server.mu.Lock()
	dialled := len(cp.server.remotes)
	cp.server.mu.Unlock()
	if dialled != 0 {
		t.Errorf("%d connections made to unknown nodes", dialled)
	}
}

// TestRemoteConnectionsBounded is the regression test of apid keeping a connection per
// distinct node name forever: the cache holds at most Limits.Remotes.
func TestRemoteConnectionsBounded(t *testing.T) {
	p := newPKI(t)
	members := []string{"127.0.0.2", "127.0.0.3", "127.0.0.4", "127.0.0.5"}
	cp := startNodeWith(t, p, "cp", listen(t), "1", nodeOptions{controlPlane: true, policy: Policy{Members: members}, limits: Limits{Remotes: 2}})
	conn := clientConn(t, p, cp.addr, clientCert(t, p.ca, []string{role.Reader}, time.Time{}))
	for _, m := range members {
		_, _ = version(t, conn, NodeMetadataKey, m) // nothing listens: Unavailable
	}
	cp.server.mu.Lock()
	n := len(cp.server.remotes)
	cp.server.mu.Unlock()
	if n > 2 {
		t.Errorf("%d cached connections, limit 2", n)
	}
}

// TestEvictionSparesConnectionsInUse: making room in the connection cache never closes a
// connection that carries a call (another client's `logs -f` would die with it).
func TestEvictionSparesConnectionsInUse(t *testing.T) {
	p := newPKI(t)
	lb := listen(t)
	_, port, _ := net.SplitHostPort(lb.Addr().String())
	startNode(t, p, "node-b", lb, port)
	cp := startNodeWith(t, p, "cp", listen(t), port, nodeOptions{controlPlane: true,
		policy: Policy{Members: []string{"127.0.0.1", "127.0.0.2", "127.0.0.3"}}, limits: Limits{Remotes: 1}})
	conn := clientConn(t, p, cp.addr, clientCert(t, p.ca, []string{role.Reader}, time.Time{}))
	ctx := metadata.AppendToOutgoingContext(ctxTimeout(t), NodeMetadataKey, "127.0.0.1")
	follow, err := machine.NewMachineServiceClient(conn).Logs(ctx, &machine.LogsRequest{Service: "x", Follow: true})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := follow.Recv(); err != nil {
		t.Fatalf("forwarded follow stream: %v", err)
	}
	for _, m := range []string{"127.0.0.2", "127.0.0.3"} {
		_, _ = version(t, conn, NodeMetadataKey, m) // nothing listens there
	}
	cp.server.mu.Lock()
	rc := cp.server.remotes["127.0.0.1"]
	cp.server.mu.Unlock()
	if rc == nil || rc.conn.GetState() == connectivity.Shutdown {
		t.Fatal("the connection carrying a follow stream was closed to make room")
	}
}

// TestStreamsPerCallerBounded is the regression test of unbounded follow streams: one
// client's open calls are capped across its connections.
func TestStreamsPerCallerBounded(t *testing.T) {
	p := newPKI(t)
	n := startNodeWith(t, p, "node-a", listen(t), "", nodeOptions{controlPlane: true, limits: Limits{StreamsPerCaller: 3}})
	reader := clientCert(t, p.ca, []string{role.Reader}, time.Time{})
	ctx := ctxTimeout(t)
	var open int
	for i := range 5 {
		// A new connection each time: the limit is per certificate, not per connection.
		mc := machine.NewMachineServiceClient(clientConn(t, p, n.addr, reader))
		s, err := mc.Logs(ctx, &machine.LogsRequest{Service: "x", Follow: true})
		if err != nil {
			t.Fatal(err)
		}
		_, err = s.Recv()
		switch {
		case status.Code(err) == codes.ResourceExhausted:
			if i < 3 {
				t.Errorf("stream %d refused: %v", i, err)
			}
		case err != nil:
			t.Errorf("stream %d: %v", i, err)
		default:
			open++
		}
	}
	if open != 3 {
		t.Errorf("%d follow streams open, limit 3", open)
	}
	// Another client is not affected.
	if _, err := version(t, clientConn(t, p, n.addr, clientCert(t, p.ca, []string{role.Reader}, time.Time{}))); err != nil {
		t.Errorf("another client: %v", err)
	}
}

// TestRevokedCertificate: a serial in the policy is refused, directly and forwarded.
func TestRevokedCertificate(t *testing.T) {
	p := newPKI(t)
	n := startNode(t, p, "node-a", listen(t), "")
	reader := clientCert(t, p.ca, []string{role.Reader}, time.Time{})
	conn := clientConn(t, p, n.addr, reader)
	if _, err := version(t, conn); err != nil {
		t.Fatal(err)
	}
	serial := strings.ToUpper(SerialString(reader.Cert.SerialNumber))
	writePolicy(t, n.dir+"/"+PolicyFileName, Policy{Members: []string{"127.0.0.1"}, RevokedSerials: []string{"0x" + serial}})
	// The policy is reread at most once per second: the revocation takes effect within
	// that, and once it has, it holds.
	eventuallyOK(t, func() error {
		if _, err := version(t, conn); status.Code(err) != codes.Unauthenticated || !strings.Contains(err.Error(), "revoked") {
			return fmt.Errorf("revoked certificate: Version = %v", err)
		}
		return nil
	})
	fwd := clientConn(t, p, n.addr, nodeCert(t, p.ca, []string{role.Forwarder}, pki.UsageServer|pki.UsageClient))
	if _, err := version(t, fwd, role.ForwardedCertKey, chainValue(reader)); status.Code(err) != codes.Unauthenticated {
		t.Errorf("revoked certificate forwarded: Version = %v", err)
	}
}

func TestNormalizeSerial(t *testing.T) {
	for in, want := range map[string]string{"0x1A:2b": "1a2b", "00ff": "ff", " 7 ": "7"} {
		if got, err := NormalizeSerial(in); err != nil || got != want {
			t.Errorf("NormalizeSerial(%q) = %q, %v", in, got, err)
		}
	}
	for _, bad := range []string{"", "xyz", "0x"} {
		if _, err := NormalizeSerial(bad); err == nil {
			t.Errorf("NormalizeSerial(%q) accepted", bad)
		}
	}
}

// TestConnectionsPerSourceBounded: connections over the limit of one source address are
// closed at once, and a freed slot is usable again.
func TestConnectionsPerSourceBounded(t *testing.T) {
	p := newPKI(t)
	n := startNodeWith(t, p, "node-a", listen(t), "", nodeOptions{controlPlane: true, limits: Limits{ConnectionsPerSource: 2}})
	var held []net.Conn
	for range 2 {
		c, err := net.Dial("tcp", n.addr)
		if err != nil {
			t.Fatal(err)
		}
		held = append(held, c)
	}
	extra, err := net.Dial("tcp", n.addr)
	if err != nil {
		t.Fatal(err)
	}
	_ = extra.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := extra.Read(make([]byte, 1)); err == nil {
		t.Error("a third connection from the same address was served")
	}
	extra.Close()
	held[0].Close()
	reader := clientCert(t, p.ca, []string{role.Reader}, time.Time{})
	eventuallyOK(t, func() error { _, err := version(t, clientConn(t, p, n.addr, reader)); return err })
	held[1].Close()
}

func eventuallyOK(t *testing.T, f func() error) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		err := f()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal(err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
