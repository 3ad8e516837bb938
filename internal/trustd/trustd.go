// Package trustd issues node API (apid) server certificates to nodes that present the
// cluster's join token. Unlike a plain token-for-certificate exchange, it binds the
// certificate to the requesting node: the certificate may name only the address the
// request came from, so a token holder cannot obtain a certificate for another node's
// address or for a DNS name.
package trustd

import (
	"context"
	"crypto/subtle"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"

	"github.com/plinthos/plinth/internal/clock"
	"github.com/plinthos/plinth/pkg/api/security"
	"github.com/plinthos/plinth/pkg/pki"
)

// CertValidity is how long issued node certificates are valid; nodes renew them well
// before they expire.
const CertValidity = 24 * time.Hour

// Server implements the security service.
type Server struct {
	security.UnimplementedSecurityServiceServer

	// CA is the node API CA, with its key.
	CA *pki.KeyPair
	// Token returns the current join token (it can change with the configuration).
	Token func() string
	Clock clock.Clock
	Log   *slog.Logger
	// OnIssue, when set, is told the address of each node that got a certificate: that
	// node is a member of the cluster, which apid may forward requests to.
	OnIssue func(addr string)
}

// Certificate signs the CSR of the calling node after checking the token and that every
// name in the CSR is the caller's own address.
func (s *Server) Certificate(ctx context.Context, req *security.CertificateRequest) (*security.CertificateResponse, error) {
	want := s.Token()
	if want == "" || subtle.ConstantTimeCompare([]byte(req.GetToken()), []byte(want)) != 1 {
		return nil, status.Error(codes.PermissionDenied, "the join token is not this cluster's; check machine.token in the node's configuration")
	}
	p, ok := peer.FromContext(ctx)
	if !ok {
		return nil, status.Error(codes.Internal, "no peer address")
	}
	caller, err := peerAddr(p.Addr)
	if err != nil {
		return nil, status.Error(codes.Internal, err.Error())
	}
	csr, err := pki.ParseCSRPEM(req.GetCsr())
	if err != nil {
		return nil, status.Errorf(codes.InvalidArgument, "CSR: %v", err)
	}
	if len(csr.DNSNames) > 0 || len(csr.EmailAddresses) > 0 || len(csr.URIs) > 0 {
		return nil, status.Errorf(codes.PermissionDenied, "the CSR names %v: trustd signs only the caller's own IP address, not names", append(append([]string{}, csr.DNSNames...), csr.EmailAddresses...))
	}
	if len(csr.IPAddresses) == 0 {
		return nil, status.Error(codes.InvalidArgument, "the CSR names no IP address; request one for this node's address")
	}
	for _, ip := range csr.IPAddresses {
		a, ok := netip.AddrFromSlice(ip)
		if !ok || a.Unmap() != caller {
			return nil, status.Errorf(codes.PermissionDenied, "the CSR names %s, but the request came from %s: a node may get a certificate only for its own address", ip, caller)
		}
	}
	crt, err := pki.SignCSR(s.CA, req.GetCsr(), pki.CertOptions{
		CommonName:  caller.String(),
		IPAddresses: []net.IP{caller.AsSlice()},
		// A server certificate only, without organization: a join token holder gets
		// nothing the node API honours from a client (it cannot even connect as one).
		Usage:    pki.UsageServer,
		Validity: CertValidity,
		Now:      s.Clock.Now(),
	})
	if err != nil {
		return nil, status.Errorf(codes.Internal, "sign: %v", err)
	}
	s.Log.Info("issued a node certificate", "node", caller.String())
	if s.OnIssue != nil {
		s.OnIssue(caller.String())
	}
	return &security.CertificateResponse{Ca: s.CA.CertPEM, Crt: crt}, nil
}

func peerAddr(a net.Addr) (netip.Addr, error) {
	ap, err := netip.ParseAddrPort(a.String())
	if err != nil {
		return netip.Addr{}, fmt.Errorf("peer address %q: %w", a, err)
	}
	return ap.Addr().Unmap(), nil
}
