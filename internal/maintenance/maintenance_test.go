package maintenance

import (
	"context"
	"errors"
	"net"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"

	"github.com/plinthos/plinth/pkg/api/machine"
	"github.com/plinthos/plinth/pkg/pki"
	"github.com/plinthos/plinth/pkg/role"
)

func newCA(t *testing.T) *pki.KeyPair {
	t.Helper()
	ca, err := pki.NewCA(pki.CAOptions{CommonName: "node api", Validity: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	return ca
}

func issue(t *testing.T, ca *pki.KeyPair, org string, usage pki.Usage) *pki.KeyPair {
	t.Helper()
	kp, err := pki.Issue(ca, pki.CertOptions{CommonName: "user", Organization: []string{org}, Usage: usage, Validity: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	return kp
}

func TestAnchor(t *testing.T) {
	ca := newCA(t)
	a, err := AnchorOfPEM(ca.CertPEM)
	if err != nil {
		t.Fatal(err)
	}
	back, err := ParseAnchor(a.String())
	if err != nil || back != a || a != AnchorOf(ca.Cert) {
		t.Errorf("round trip: %v, %v", back, err)
	}
	for _, bad := range []string{"", "abc", "sha256:xyz", "sha256:" + strings.Repeat("0", 63), "sha1:" + strings.Repeat("0", 64)} {
		if _, err := ParseAnchor(bad); err == nil {
			t.Errorf("ParseAnchor(%q) accepted", bad)
		}
	}
}

func TestVerifyClientRevoked(t *testing.T) {
	ca := newCA(t)
	admin := issue(t, ca, role.Admin, pki.UsageClient)
	serial := admin.Cert.SerialNumber.Text(16)
	_, err := VerifyClient(AnchorOf(ca.Cert), []string{"deadbeef", strings.ToUpper(serial)}, [][]byte{admin.Cert.Raw, ca.Cert.Raw}, time.Now())
	if err == nil || !strings.Contains(err.Error(), "revoked") {
		t.Errorf("a revoked admin: %v", err)
	}
}

func TestVerifyClient(t *testing.T) {
	ca, other := newCA(t), newCA(t)
	anchor := AnchorOf(ca.Cert)
	admin := issue(t, ca, role.Admin, pki.UsageClient)
	now := time.Now()
	if _, err := VerifyClient(anchor, nil, [][]byte{admin.Cert.Raw, ca.Cert.Raw}, now); err != nil {
		t.Fatalf("the cluster's admin: %v", err)
	}
	for name, tc := range map[string]struct {
		chain [][]byte
		want  string
	}{
		"no CA sent":         {[][]byte{admin.Cert.Raw}, "no CA certificate"},
		"another CA":         {[][]byte{issue(t, other, role.Admin, pki.UsageClient).Cert.Raw, other.Cert.Raw}, "not from the CA this node trusts"},
		"the CA, forged":     {[][]byte{issue(t, other, role.Admin, pki.UsageClient).Cert.Raw, ca.Cert.Raw}, "client certificate"},
		"a reader":           {[][]byte{issue(t, ca, role.Reader, pki.UsageClient).Cert.Raw, ca.Cert.Raw}, "needs the os:admin role"},
		"a server cert":      {[][]byte{issue(t, ca, role.Admin, pki.UsageServer).Cert.Raw, ca.Cert.Raw}, "client certificate"},
		"expired (an hour)":  {[][]byte{admin.Cert.Raw, ca.Cert.Raw}, "client certificate"},
		"the CA as the leaf": {[][]byte{ca.Cert.Raw, ca.Cert.Raw}, "client certificate"},
	} {
		t.Run(name, func(t *testing.T) {
			at := now
			if name == "expired (an hour)" {
				at = now.Add(2 * time.Hour)
			}
			_, err := VerifyClient(anchor, []string{"abc123"}, tc.chain, at)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("got %v, want an error with %q", err, tc.want)
			}
		})
	}
}

// serve runs a maintenance server on loopback and returns its address and fingerprint,
// and what it was asked to apply.
func serve(t *testing.T, anchor *Anchor) (addr, fingerprint string, applied chan []byte) {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	applied = make(chan []byte, 1)
	s := &Server{Anchor: anchor,
		VersionInfo: func() *machine.VersionResponse { return &machine.VersionResponse{Tag: "maintenance"} },
		Apply: func(_ context.Context, data []byte) (string, error) {
			if string(data) == "bad" {
				return "", errors.New("invalid configuration")
			}
			applied <- data
			return "stored; the machine reboots to use it", nil
		}}
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan string, 1)
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := s.Serve(ctx, l, []string{"127.0.0.1"}, func(fp string) { ready <- fp }); err != nil {
			t.Error(err)
		}
	}()
	t.Cleanup(func() { cancel(); <-done })
	return l.Addr().String(), <-ready, applied
}

func dial(t *testing.T, addr string, ca, user *pki.KeyPair, fingerprint string) machine.MachineServiceClient {
	t.Helper()
	tlsCfg, err := ClientTLS(ca.CertPEM, user.CertPEM, user.KeyPEM, fingerprint)
	if err != nil {
		t.Fatal(err)
	}
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(credentials.NewTLS(tlsCfg)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return machine.NewMachineServiceClient(conn)
}

func call(c machine.MachineServiceClient, data string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err := c.ApplyConfiguration(ctx, &machine.ApplyConfigurationRequest{Data: []byte(data)})
	return err
}

func TestOnlyTheAnchorsAdminConfigures(t *testing.T) {
	ca, other := newCA(t), newCA(t)
	anchor := AnchorOf(ca.Cert)
	addr, fp, applied := serve(t, &anchor)

	// Another cluster's admin, and this cluster's reader, are refused by the node.
	if err := call(dial(t, addr, other, issue(t, other, role.Admin, pki.UsageClient), fp), "cfg"); err == nil {
		t.Error("another CA's admin configured the node")
	}
	if err := call(dial(t, addr, ca, issue(t, ca, role.Reader, pki.UsageClient), fp), "cfg"); err == nil {
		t.Error("a reader configured the node")
	}
	admin := issue(t, ca, role.Admin, pki.UsageClient)
	// The right admin with the wrong fingerprint: the client refuses the node.
	wrong := "sha256:" + strings.Repeat("ab", 32)
	if err := call(dial(t, addr, ca, admin, wrong), "cfg"); err == nil || !strings.Contains(err.Error(), "fingerprint") {
		t.Errorf("a node with another fingerprint was trusted: %v", err)
	}
	select {
	case got := <-applied:
		t.Fatalf("applied %q from a refused client", got)
	default:
	}
	c := dial(t, addr, ca, admin, fp)
	if err := call(c, "bad"); err == nil || !strings.Contains(err.Error(), "invalid configuration") {
		t.Errorf("an invalid configuration: %v", err)
	}
	if err := call(c, "cfg"); err != nil {
		t.Fatal(err)
	}
	if got := <-applied; string(got) != "cfg" {
		t.Errorf("applied %q", got)
	}
	// What is not needed to configure the machine is not served.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := c.ServiceList(ctx, &machine.ServiceListRequest{}); err == nil {
		t.Error("ServiceList answered in maintenance mode")
	}
	if v, err := c.Version(ctx, &machine.VersionRequest{}); err != nil || v.GetTag() != "maintenance" {
		t.Errorf("Version: %v, %v", v, err)
	}
}

func TestNoAnchorRefusesEveryone(t *testing.T) {
	ca := newCA(t)
	addr, fp, _ := serve(t, nil)
	if err := call(dial(t, addr, ca, issue(t, ca, role.Admin, pki.UsageClient), fp), "cfg"); err == nil {
		t.Error("a node without a trust anchor accepted a configuration")
	}
}
