// Package maintenance is the node API of a machine that has no configuration yet. It
// answers only what inspecting the machine and configuring it need (Version, Dmesg,
// ApplyConfiguration), and it takes a configuration only from a client that proves it may:
// a client certificate with the os:admin role, issued by the CA whose public key the
// operator gave the machine as its trust anchor (plinth.trust= on the kernel command
// line). Whoever reaches the machine first gets nothing without that certificate. The
// client in turn verifies the machine by the fingerprint of its certificate, which the
// machine prints on its console: the configuration carries the cluster's keys.
package maintenance

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"slices"
	"strings"
	"time"

	"golang.org/x/net/netutil"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/status"

	"github.com/plinthos/plinth/pkg/api/machine"
	"github.com/plinthos/plinth/pkg/role"
)

// Anchor is the SHA-256 of a CA certificate's public key (its SubjectPublicKeyInfo).
type Anchor [sha256.Size]byte

// String is the anchor as plinth.trust= takes it: sha256:<hex>.
func (a Anchor) String() string { return "sha256:" + hex.EncodeToString(a[:]) }

// ParseAnchor parses sha256:<64 hex digits>.
func ParseAnchor(s string) (Anchor, error) {
	var a Anchor
	h, ok := strings.CutPrefix(s, "sha256:")
	if !ok {
		return a, fmt.Errorf("trust anchor %q: want sha256:<hex> (plinthctl config info prints it)", s)
	}
	b, err := hex.DecodeString(h)
	if err != nil || len(b) != sha256.Size {
		return a, fmt.Errorf("trust anchor %q: want sha256: and 64 hex digits", s)
	}
	copy(a[:], b)
	return a, nil
}

// AnchorOf returns the anchor of a CA certificate.
func AnchorOf(ca *x509.Certificate) Anchor { return sha256.Sum256(ca.RawSubjectPublicKeyInfo) }

// AnchorOfPEM returns the anchor of a PEM CA certificate.
func AnchorOfPEM(caPEM []byte) (Anchor, error) {
	block, _ := pem.Decode(caPEM)
	if block == nil || block.Type != "CERTIFICATE" {
		return Anchor{}, errors.New("no PEM certificate")
	}
	ca, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		return Anchor{}, err
	}
	return AnchorOf(ca), nil
}

// Fingerprint is the SHA-256 of a certificate, as sha256:<hex>.
func Fingerprint(der []byte) string {
	sum := sha256.Sum256(der)
	return "sha256:" + hex.EncodeToString(sum[:])
}

// VerifyClient checks a client's certificate chain (leaf first, then its CA) against the
// anchor at now: the CA is a CA whose public key is the anchor, the leaf is signed by it,
// valid, for client authentication, not a CA, not revoked (its serial, in hex as
// `plinthctl config info` shows it, is not in revoked), and carries the os:admin role. The
// anchor pins a key: the CA certificate the client sends is not itself checked beyond
// carrying that key. It returns the leaf.
func VerifyClient(anchor Anchor, revoked []string, rawCerts [][]byte, now time.Time) (*x509.Certificate, error) {
	if len(rawCerts) < 2 {
		return nil, errors.New("the client sent no CA certificate with its own: a maintenance node knows only its CA's public key hash (plinthctl sends both)")
	}
	leaf, err := x509.ParseCertificate(rawCerts[0])
	if err != nil {
		return nil, fmt.Errorf("client certificate: %w", err)
	}
	var ca *x509.Certificate
	for _, raw := range rawCerts[1:] {
		c, err := x509.ParseCertificate(raw)
		if err != nil {
			return nil, fmt.Errorf("client CA certificate: %w", err)
		}
		if AnchorOf(c) == anchor {
			ca = c
			break
		}
	}
	if ca == nil {
		return nil, errors.New("the client's certificate is not from the CA this node trusts (plinth.trust)")
	}
	if !ca.IsCA || !ca.BasicConstraintsValid {
		return nil, errors.New("the trusted key's certificate is not a CA certificate")
	}
	pool := x509.NewCertPool()
	pool.AddCert(ca)
	if _, err := leaf.Verify(x509.VerifyOptions{Roots: pool, CurrentTime: now, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err != nil {
		return nil, fmt.Errorf("client certificate: %w", err)
	}
	if leaf.IsCA {
		return nil, errors.New("client certificate: a CA certificate is not a client's")
	}
	if slices.ContainsFunc(revoked, func(r string) bool { return strings.EqualFold(strings.TrimLeft(r, "0"), leaf.SerialNumber.Text(16)) }) {
		return nil, fmt.Errorf("client certificate %s is revoked (plinth.revoked)", leaf.SerialNumber.Text(16))
	}
	if !slices.Contains(leaf.Subject.Organization, role.Admin) {
		return nil, fmt.Errorf("client certificate: configuring a node in maintenance needs the %s role (it has %v)", role.Admin, leaf.Subject.Organization)
	}
	return leaf, nil
}

// Trust is what a machine without a configuration trusts, from its kernel command line:
// the anchor (plinth.trust=) and the revoked client certificates (plinth.revoked=).
type Trust struct {
	Anchor  *Anchor
	Revoked []string
}

// Bounds of the maintenance API: whoever reaches the machine may connect, so connections,
// handshakes and calls are bounded (the API runs in PID 1).
const (
	MaxConnections = 16
	HandshakeLimit = 10 * time.Second
	MaxStreams     = 8
)

// Server is the maintenance API.
type Server struct {
	machine.UnimplementedMachineServiceServer
	// Anchor is the trust anchor; nil refuses every configuration (there is no way to tell
	// a legitimate client).
	Anchor *Anchor
	// Revoked are the serials (hex) of client certificates refused although the anchor's
	// CA issued them (plinth.revoked=): a machine without a configuration knows no
	// machine.revokedCertificates.
	Revoked []string
	// VersionInfo answers Version.
	VersionInfo func() *machine.VersionResponse
	// KernelLog streams the kernel log (Dmesg).
	KernelLog func(req *machine.DmesgRequest, stream grpc.ServerStreamingServer[machine.DmesgResponse]) error
	// Apply validates and stores a configuration; the machine boots with it next (the
	// caller reboots it after answering). It returns what to tell the client.
	Apply func(ctx context.Context, data []byte) (string, error)
}

// Version implements the Version RPC.
func (s *Server) Version(context.Context, *machine.VersionRequest) (*machine.VersionResponse, error) {
	return s.VersionInfo(), nil
}

// Dmesg implements the Dmesg RPC.
func (s *Server) Dmesg(req *machine.DmesgRequest, stream grpc.ServerStreamingServer[machine.DmesgResponse]) error {
	return s.KernelLog(req, stream)
}

// ApplyConfiguration implements the ApplyConfiguration RPC: the only way to configure
// the machine over the network.
func (s *Server) ApplyConfiguration(ctx context.Context, req *machine.ApplyConfigurationRequest) (*machine.ApplyConfigurationResponse, error) {
	if req.GetDryRun() {
		return nil, status.Error(codes.InvalidArgument, "a maintenance node has no configuration to compare with: apply without --dry-run")
	}
	msg, err := s.Apply(ctx, req.GetData())
	if err != nil {
		return nil, status.Error(codes.InvalidArgument, err.Error())
	}
	return &machine.ApplyConfigurationResponse{Mode: "reboot", Message: msg}, nil
}

// identity is the server's certificate: a new self-signed key each boot (the machine has
// no identity before its configuration).
func identity(names []string, now time.Time) (tls.Certificate, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, err
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return tls.Certificate{}, err
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: "plinth maintenance"},
		NotBefore:    now.Add(-5 * time.Minute),
		NotAfter:     now.Add(7 * 24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	for _, n := range names {
		if ip := net.ParseIP(n); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else if n != "" {
			tmpl.DNSNames = append(tmpl.DNSNames, n)
		}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return tls.Certificate{}, err
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}, nil
}

// Serve serves s on l until ctx ends. It gives the server certificate's fingerprint to
// ready before serving, for the console.
func (s *Server) Serve(ctx context.Context, l net.Listener, names []string, ready func(fingerprint string)) error {
	cert, err := identity(names, time.Now())
	if err != nil {
		l.Close()
		return fmt.Errorf("maintenance identity: %w", err)
	}
	tlsCfg := &tls.Config{
		MinVersion:   tls.VersionTLS13,
		Certificates: []tls.Certificate{cert},
		// Any certificate is asked for; VerifyPeerCertificate decides.
		ClientAuth: tls.RequireAnyClientCert,
		VerifyPeerCertificate: func(raw [][]byte, _ [][]*x509.Certificate) error {
			if s.Anchor == nil {
				return errors.New("this node has no trust anchor (plinth.trust=): it accepts no client over the network")
			}
			_, err := VerifyClient(*s.Anchor, s.Revoked, raw, time.Now())
			return err
		},
	}
	gs := grpc.NewServer(grpc.Creds(credentials.NewTLS(tlsCfg)),
		grpc.ConnectionTimeout(HandshakeLimit), grpc.MaxConcurrentStreams(MaxStreams))
	machine.RegisterMachineServiceServer(gs, s)
	ready(Fingerprint(cert.Certificate[0]))
	errc := make(chan error, 1)
	go func() { errc <- gs.Serve(netutil.LimitListener(l, MaxConnections)) }()
	select {
	case <-ctx.Done():
		// Calls in flight finish (the reply to the apply that stored the configuration);
		// a stream that does not end by itself (dmesg --follow) is cut after a while.
		stopped := make(chan struct{})
		go func() { gs.GracefulStop(); close(stopped) }()
		select {
		case <-stopped:
		case <-time.After(5 * time.Second):
			gs.Stop()
		}
		<-errc
		return nil
	case err := <-errc:
		return err
	}
}

// ClientTLS is the client side: the context's admin certificate sent with its CA, and the
// server verified by its fingerprint only (it has no other identity yet).
func ClientTLS(caPEM, crtPEM, keyPEM []byte, fingerprint string) (*tls.Config, error) {
	if !strings.HasPrefix(fingerprint, "sha256:") {
		return nil, fmt.Errorf("fingerprint %q: want sha256:<hex>, as the node's console shows it", fingerprint)
	}
	pair, err := tls.X509KeyPair(crtPEM, keyPEM)
	if err != nil {
		return nil, fmt.Errorf("client certificate: %w", err)
	}
	block, _ := pem.Decode(caPEM)
	if block == nil {
		return nil, errors.New("the client configuration has no CA certificate")
	}
	pair.Certificate = append(pair.Certificate, block.Bytes)
	want := strings.ToLower(fingerprint)
	return &tls.Config{
		MinVersion:   tls.VersionTLS13,
		Certificates: []tls.Certificate{pair},
		// The node has no certificate a CA could vouch for yet: it is verified by the
		// fingerprint its console shows, below.
		InsecureSkipVerify: true,
		VerifyPeerCertificate: func(raw [][]byte, _ [][]*x509.Certificate) error {
			if len(raw) == 0 {
				return errors.New("the node sent no certificate")
			}
			if got := Fingerprint(raw[0]); !bytes.Equal([]byte(got), []byte(want)) {
				return fmt.Errorf("the node's certificate fingerprint is %s, not the %s given: this is not the machine whose console you read (or it rebooted: read it again)", got, want)
			}
			return nil
		},
	}, nil
}
