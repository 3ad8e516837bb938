package apid

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/plinthos/plinth/internal/authz"
	"github.com/plinthos/plinth/pkg/api/machine"
	"github.com/plinthos/plinth/pkg/api/resource"
	"github.com/plinthos/plinth/pkg/pki"
	"github.com/plinthos/plinth/pkg/role"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// backend is a stand-in machined: it answers every call with the roles it was given, so
// the test sees what apid forwarded. Unimplemented calls answer Unimplemented, which is
// enough to tell "reached the backend" from "refused by apid".
type backend struct {
	machine.UnimplementedMachineServiceServer
	name string
}

func (b *backend) Version(ctx context.Context, _ *machine.VersionRequest) (*machine.VersionResponse, error) {
	md, _ := metadata.FromIncomingContext(ctx)
	return &machine.VersionResponse{Hostname: b.name, Tag: strings.Join(md.Get(role.MetadataKey), ";")}, nil
}

// Logs sends one message, then blocks until the caller goes away: a follow stream.
func (b *backend) Logs(_ *machine.LogsRequest, s grpc.ServerStreamingServer[machine.LogsResponse]) error {
	if err := s.Send(&machine.LogsResponse{}); err != nil {
		return err
	}
	<-s.Context().Done()
	return nil
}

func (b *backend) Events(_ *machine.EventsRequest, s grpc.ServerStreamingServer[machine.EventsResponse]) error {
	for i := range 3 {
		if err := s.Send(&machine.EventsResponse{Id: string(rune('a' + i)), Message: b.name}); err != nil {
			return err
		}
	}
	return nil
}

type node struct {
	dir    string
	addr   string
	server *Server
	stop   func()
}

type pkiSet struct {
	ca, otherCA *pki.KeyPair
}

func newPKI(t *testing.T) *pkiSet {
	t.Helper()
	ca, err := pki.NewCA(pki.CAOptions{CommonName: "os", Validity: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	other, err := pki.NewCA(pki.CAOptions{CommonName: "other", Validity: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	return &pkiSet{ca: ca, otherCA: other}
}

// nodeOptions shape a test node: a control plane forwards and has a forwarder
// certificate; a worker has a server-only certificate without organization, as trustd
// issues it.
type nodeOptions struct {
	controlPlane bool
	policy       Policy
	limits       Limits
}

// startNode runs a backend on a unix socket and a control plane's apid in front of it on
// 127.0.0.1:port, which forwards to 127.0.0.1.
func startNode(t *testing.T, p *pkiSet, name string, l net.Listener, port string) *node {
	t.Helper()
	return startNodeWith(t, p, name, l, port, nodeOptions{controlPlane: true, policy: Policy{Members: []string{"127.0.0.1"}}})
}

func startNodeWith(t *testing.T, p *pkiSet, name string, l net.Listener, port string, o nodeOptions) *node {
	t.Helper()
	dir := t.TempDir()
	sock := filepath.Join(dir, "machined.sock")
	ul, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	bs := grpc.NewServer()
	machine.RegisterMachineServiceServer(bs, &backend{name: name})
	resource.RegisterResourceServiceServer(bs, resource.UnimplementedResourceServiceServer{})
	go func() { _ = bs.Serve(ul) }()

	opts := pki.CertOptions{CommonName: name, IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, Usage: pki.UsageServer, Validity: time.Hour}
	if o.controlPlane {
		opts.Organization, opts.Usage = []string{role.Forwarder}, pki.UsageServer|pki.UsageClient
	}
	serverCert, err := pki.Issue(p.ca, opts)
	if err != nil {
		t.Fatal(err)
	}
	files := FilesIn(dir)
	writePolicy(t, filepath.Join(dir, PolicyFileName), o.policy)
	for path, data := range map[string][]byte{files.CA: p.ca.CertPEM, files.Cert: serverCert.CertPEM, files.Key: serverCert.KeyPEM} {
		if err := os.WriteFile(path, data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	srv, err := New(Config{Identity: files, MachinedSocket: sock, Self: []string{name}, Port: port, Forward: o.controlPlane, Limits: o.limits})
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = srv.Serve(l) }()
	n := &node{addr: l.Addr().String(), server: srv, dir: dir}
	n.stop = func() { srv.Stop(); bs.Stop() }
	t.Cleanup(n.stop)
	return n
}

// clientConn dials apid at addr with a client certificate (nil for none).
func clientConn(t *testing.T, p *pkiSet, addr string, cert *pki.KeyPair) *grpc.ClientConn {
	t.Helper()
	pool := x509.NewCertPool()
	pool.AddCert(p.ca.Cert)
	cfg := &tls.Config{MinVersion: tls.VersionTLS13, RootCAs: pool}
	if cert != nil {
		c, err := tls.X509KeyPair(cert.CertPEM, cert.KeyPEM)
		if err != nil {
			t.Fatal(err)
		}
		cfg.Certificates = []tls.Certificate{c}
	}
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(credentials.NewTLS(cfg)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	return conn
}

func clientCert(t *testing.T, ca *pki.KeyPair, orgs []string, now time.Time) *pki.KeyPair {
	t.Helper()
	kp, err := pki.Issue(ca, pki.CertOptions{CommonName: "client", Organization: orgs, Usage: pki.UsageClient, Validity: time.Hour, Now: now})
	if err != nil {
		t.Fatal(err)
	}
	return kp
}

func listen(t *testing.T) net.Listener {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func ctxTimeout(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// TestEveryRPCEveryRole calls every RPC of the API with every role and checks that exactly
// what the table allows reaches machined.
func TestEveryRPCEveryRole(t *testing.T) {
	p := newPKI(t)
	n := startNode(t, p, "node-a", listen(t), "")
	roles := [][]string{{role.Admin}, {role.Operator}, {role.Reader}, {role.EtcdBackup}, {"os:unknown"}, nil}
	for _, r := range roles {
		conn := clientConn(t, p, n.addr, clientCert(t, p.ca, r, time.Time{}))
		for method, level := range authz.Table {
			ctx := ctxTimeout(t)
			cs, err := conn.NewStream(ctx, &grpc.StreamDesc{ServerStreams: true, ClientStreams: true}, method, grpc.ForceCodecV2(rawCodec{}))
			if err != nil {
				t.Fatal(err)
			}
			_ = cs.SendMsg(&frame{})
			_ = cs.CloseSend()
			err = cs.RecvMsg(&frame{})
			code := status.Code(err)
			allowed := authz.Holds(r, level)
			switch {
			case allowed && code == codes.PermissionDenied:
				t.Errorf("roles %v: %s refused, but the table allows it: %v", r, method, err)
			case !allowed && code != codes.PermissionDenied:
				t.Errorf("roles %v: %s not refused (code %v), but the table needs %v", r, method, code, level)
			}
		}
	}
}

func TestAuthentication(t *testing.T) {
	p := newPKI(t)
	n := startNode(t, p, "node-a", listen(t), "")
	version := func(conn *grpc.ClientConn) error {
		_, err := machine.NewMachineServiceClient(conn).Version(ctxTimeout(t), &machine.VersionRequest{})
		return err
	}
	if err := version(clientConn(t, p, n.addr, clientCert(t, p.ca, []string{role.Reader}, time.Time{}))); err != nil {
		t.Fatalf("a reader could not call Version: %v", err)
	}
	cases := map[string]*pki.KeyPair{
		"no client certificate":        nil,
		"certificate from another CA":  clientCert(t, p.otherCA, []string{role.Admin}, time.Time{}),
		"expired certificate":          clientCert(t, p.ca, []string{role.Admin}, time.Now().Add(-3*time.Hour)),
		"certificate without any role": clientCert(t, p.ca, nil, time.Time{}),
	}
	for name, cert := range cases {
		err := version(clientConn(t, p, n.addr, cert))
		if err == nil {
			t.Errorf("%s: Version succeeded", name)
			continue
		}
		if code := status.Code(err); code != codes.Unavailable && code != codes.PermissionDenied && code != codes.Unauthenticated {
			t.Errorf("%s: unexpected code %v: %v", name, code, err)
		}
	}
}

// TestRolesCannotBeForged: a client may not claim roles in metadata; only another node's
// certificate may carry forwarded roles.
func TestRolesCannotBeForged(t *testing.T) {
	p := newPKI(t)
	n := startNode(t, p, "node-a", listen(t), "")
	conn := clientConn(t, p, n.addr, clientCert(t, p.ca, []string{role.Reader}, time.Time{}))
	ctx := metadata.AppendToOutgoingContext(ctxTimeout(t), role.MetadataKey, role.Admin)
	resp, err := machine.NewMachineServiceClient(conn).Version(ctx, &machine.VersionRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if resp.Tag != role.Reader {
		t.Errorf("machined saw roles %q, want only %q", resp.Tag, role.Reader)
	}
	_, err = machine.NewMachineServiceClient(conn).Reboot(ctx, &machine.RebootRequest{})
	if status.Code(err) != codes.PermissionDenied || !strings.Contains(err.Error(), "needs role os:operator") {
		t.Errorf("reader with forged admin metadata: Reboot = %v", err)
	}
}

// TestForwardToAnotherNode sends requests to node A naming node B: B answers, with the
// caller's roles, and streaming calls are forwarded too.
func TestForwardToAnotherNode(t *testing.T) {
	p := newPKI(t)
	lb := listen(t)
	_, port, _ := net.SplitHostPort(lb.Addr().String())
	a := startNode(t, p, "node-a", listen(t), port)
	startNode(t, p, "node-b", lb, port)

	conn := clientConn(t, p, a.addr, clientCert(t, p.ca, []string{role.Operator}, time.Time{}))
	mc := machine.NewMachineServiceClient(conn)
	ctx := metadata.AppendToOutgoingContext(ctxTimeout(t), NodeMetadataKey, "127.0.0.1")
	resp, err := mc.Version(ctx, &machine.VersionRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if resp.Hostname != "node-b" || resp.Tag != role.Operator {
		t.Errorf("forwarded Version answered by %q with roles %q; want node-b with %q", resp.Hostname, resp.Tag, role.Operator)
	}
	stream, err := mc.Events(ctx, &machine.EventsRequest{})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for {
		ev, err := stream.Recv()
		if err != nil {
			break
		}
		got = append(got, ev.Id+"@"+ev.Message)
	}
	if strings.Join(got, ",") != "a@node-b,b@node-b,c@node-b" {
		t.Errorf("forwarded stream got %v", got)
	}
	local, err := mc.Version(ctxTimeout(t), &machine.VersionRequest{})
	if err != nil || local.Hostname != "node-a" {
		t.Errorf("a request without a node went to %v (%v), want node-a", local.GetHostname(), err)
	}
	self := metadata.AppendToOutgoingContext(ctxTimeout(t), NodeMetadataKey, "node-a")
	if r, err := mc.Version(self, &machine.VersionRequest{}); err != nil || r.Hostname != "node-a" {
		t.Errorf("a request naming node-a itself went to %v (%v)", r.GetHostname(), err)
	}
}
