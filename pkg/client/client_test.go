package client

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"net"
	"testing"
	"time"

	"go.uber.org/goleak"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"

	"github.com/plinthos/plinth/pkg/api/machine"
	"github.com/plinthos/plinth/pkg/clientconfig"
	"github.com/plinthos/plinth/pkg/pki"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

type versionServer struct {
	machine.UnimplementedMachineServiceServer
	tag string
}

func (s versionServer) Version(context.Context, *machine.VersionRequest) (*machine.VersionResponse, error) {
	return &machine.VersionResponse{Tag: s.tag}, nil
}

// serve starts a node API answering Version with tag on a loopback port, over mTLS.
func serve(t *testing.T, ca *pki.KeyPair, tag string) (string, func()) {
	t.Helper()
	srvCert, err := pki.Issue(ca, pki.CertOptions{CommonName: "node", IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, Usage: pki.UsageServer, Validity: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	kp, err := tls.X509KeyPair(srvCert.CertPEM, srvCert.KeyPEM)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(ca.Cert)
	creds := credentials.NewTLS(&tls.Config{MinVersion: tls.VersionTLS13, Certificates: []tls.Certificate{kp}, ClientCAs: pool, ClientAuth: tls.RequireAndVerifyClientCert})
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := grpc.NewServer(grpc.Creds(creds))
	machine.RegisterMachineServiceServer(s, versionServer{tag: tag})
	done := make(chan struct{})
	go func() { defer close(done); _ = s.Serve(lis) }()
	stop := func() { s.Stop(); <-done }
	t.Cleanup(stop)
	return lis.Addr().String(), stop
}

// closedPort returns a loopback address where nothing listens.
func closedPort(t *testing.T) string {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := lis.Addr().String()
	_ = lis.Close()
	return addr
}

func TestEndpointsFailOver(t *testing.T) {
	ca, err := pki.NewCA(pki.CAOptions{CommonName: "test", Validity: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	admin, err := pki.Issue(ca, pki.CertOptions{CommonName: "admin", Organization: []string{"os:admin"}, Usage: pki.UsageClient, Validity: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	cc := &clientconfig.Context{CA: ca.CertPEM, Crt: admin.CertPEM, Key: admin.KeyPEM}
	first, stopFirst := serve(t, ca, "first")
	second, stopSecond := serve(t, ca, "second")

	c, err := NewWithEndpoints(cc, []string{closedPort(t), first, second})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	version := func() string {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		resp, err := c.Machine.Version(ctx, &machine.VersionRequest{}, grpc.WaitForReady(true))
		if err != nil {
			t.Fatal(err)
		}
		return resp.GetTag()
	}
	// pick_first tries the endpoints in order, but starts the next attempt when one is slow
	// to connect (gRPC's "happy eyeballs" delay, 250 ms): under load either listening
	// endpoint may win. Whichever answered, stopping it moves the client to the other.
	answered := version()
	stop, other := stopFirst, "second"
	switch answered {
	case "first":
	case "second":
		stop, other = stopSecond, "first"
	default:
		t.Fatalf("answered by %q", answered)
	}
	stop()
	// The call in flight when the connection breaks may fail (gRPC does not resend it);
	// the next ones go to the other endpoint.
	deadline := time.Now().Add(10 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		resp, err := c.Machine.Version(ctx, &machine.VersionRequest{}, grpc.WaitForReady(true))
		cancel()
		if err == nil {
			if got := resp.GetTag(); got != other {
				t.Errorf("after %s stopped, answered by %q, want %s", answered, got, other)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no answer after the first endpoint stopped: %v", err)
		}
	}
}

func TestNoEndpoints(t *testing.T) {
	if _, err := NewWithEndpoints(&clientconfig.Context{}, nil); err == nil {
		t.Error("no error without endpoints")
	}
}
