package trustd

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"log/slog"
	"net"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/status"

	"github.com/plinthos/plinth/internal/clock"
	"github.com/plinthos/plinth/pkg/api/security"
	"github.com/plinthos/plinth/pkg/pki"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

const token = "abcdef.0123456789abcdef"

func start(t *testing.T) (addr string, ca *pki.KeyPair) {
	t.Helper()
	ca, err := pki.NewCA(pki.CAOptions{CommonName: "os", Validity: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	serverCert, err := pki.Issue(ca, pki.CertOptions{CommonName: "cp", IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, Usage: pki.UsageServer, Validity: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	cert, err := tls.X509KeyPair(serverCert.CertPEM, serverCert.KeyPEM)
	if err != nil {
		t.Fatal(err)
	}
	gs := grpc.NewServer(grpc.Creds(credentials.NewTLS(&tls.Config{MinVersion: tls.VersionTLS13, Certificates: []tls.Certificate{cert}})))
	security.RegisterSecurityServiceServer(gs, &Server{CA: ca, Token: func() string { return token }, Clock: clock.Real{}, Log: slog.New(slog.DiscardHandler)})
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = gs.Serve(l) }()
	t.Cleanup(gs.Stop)
	return l.Addr().String(), ca
}

// call requests a certificate from source address src (a loopback address).
func call(t *testing.T, addr string, ca *pki.KeyPair, src, tok string, ips []net.IP, dns []string) (*security.CertificateResponse, error) {
	t.Helper()
	pool := x509.NewCertPool()
	pool.AddCert(ca.Cert)
	dialer := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)}}
	conn, err := grpc.NewClient(addr,
		grpc.WithTransportCredentials(credentials.NewTLS(&tls.Config{MinVersion: tls.VersionTLS13, RootCAs: pool})),
		grpc.WithContextDialer(func(ctx context.Context, a string) (net.Conn, error) { return dialer.DialContext(ctx, "tcp", a) }))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	key, _, err := pki.NewKey()
	if err != nil {
		t.Fatal(err)
	}
	csr, err := pki.NewCSR(key, "node", nil, dns, ips)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return security.NewSecurityServiceClient(conn).Certificate(ctx, &security.CertificateRequest{Token: tok, Csr: csr})
}

func TestIssuesOnlyTheCallersAddress(t *testing.T) {
	addr, ca := start(t)
	resp, err := call(t, addr, ca, "127.0.0.2", token, []net.IP{net.ParseIP("127.0.0.2")}, nil)
	if err != nil {
		t.Fatalf("a node asking for its own address was refused: %v", err)
	}
	cert, err := pki.ParseCertPEM(resp.Crt)
	if err != nil {
		t.Fatal(err)
	}
	if err := pki.Verify(ca.Cert, cert, pki.UsageServer, time.Time{}); err != nil {
		t.Errorf("issued certificate does not verify: %v", err)
	}
	// A join token buys a server certificate only: no client usage, no role, nothing a
	// node API would honour from a client.
	if err := pki.Verify(ca.Cert, cert, pki.UsageClient, time.Time{}); err == nil {
		t.Error("the issued certificate is also a client certificate")
	}
	if len(cert.IPAddresses) != 1 || !cert.IPAddresses[0].Equal(net.ParseIP("127.0.0.2")) || len(cert.DNSNames) != 0 {
		t.Errorf("issued SANs %v %v, want only 127.0.0.2", cert.IPAddresses, cert.DNSNames)
	}
	if len(cert.Subject.Organization) != 0 {
		t.Errorf("issued organization %v, want none", cert.Subject.Organization)
	}
	if d := cert.NotAfter.Sub(cert.NotBefore); d > CertValidity+10*time.Minute {
		t.Errorf("issued certificate valid %v, want about %v", d, CertValidity)
	}

	cases := []struct {
		name, src, tok string
		ips            []net.IP
		dns            []string
		want           string
	}{
		{"wrong token", "127.0.0.2", "zzzzzz.0123456789abcdef", []net.IP{net.ParseIP("127.0.0.2")}, nil, "join token"},
		{"another node's address", "127.0.0.2", token, []net.IP{net.ParseIP("127.0.0.3")}, nil, "request came from 127.0.0.2"},
		{"own and another address", "127.0.0.2", token, []net.IP{net.ParseIP("127.0.0.2"), net.ParseIP("10.5.0.2")}, nil, "10.5.0.2"},
		{"a DNS name", "127.0.0.2", token, []net.IP{net.ParseIP("127.0.0.2")}, []string{"kubernetes.default"}, "not names"},
		{"no address", "127.0.0.2", token, nil, nil, "no IP address"},
	}
	for _, c := range cases {
		_, err := call(t, addr, ca, c.src, c.tok, c.ips, c.dns)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: err = %v, want it to mention %q", c.name, err, c.want)
		}
		if code := status.Code(err); code != codes.PermissionDenied && code != codes.InvalidArgument {
			t.Errorf("%s: code %v", c.name, code)
		}
	}
}
