// Package apid is the network face of a node: it terminates mutual TLS on port 50000,
// checks the caller's role against the authorization table, and forwards each call, as
// opaque bytes, to the local machined over its unix socket or to one other node's apid.
package apid

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"slices"
	"strings"
	"sync"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"

	"github.com/plinthos/plinth/internal/authz"
	"github.com/plinthos/plinth/pkg/role"
)

// NodeMetadataKey is the metadata key naming the node a request is for.
const NodeMetadataKey = "node"

// DefaultPort is the node API port.
const DefaultPort = "50000"

// Config configures a Server.
type Config struct {
	// Identity names the CA, certificate and key files.
	Identity Files
	// MachinedSocket is the path of machined's unix socket.
	MachinedSocket string
	// Self lists the names and addresses under which this node is addressed; a request
	// whose node metadata is one of them (or absent) is served locally.
	Self []string
	// Port is the apid port of other nodes (default 50000).
	Port string
	Log  *slog.Logger
}

// Server is a running apid.
type Server struct {
	cfg   Config
	certs *certSource
	grpc  *grpc.Server
	local *grpc.ClientConn

	mu      sync.Mutex
	remotes map[string]*grpc.ClientConn
}

// New prepares a server; Serve starts it.
func New(cfg Config) (*Server, error) {
	if cfg.Port == "" {
		cfg.Port = DefaultPort
	}
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	certs, err := newCertSource(cfg.Identity)
	if err != nil {
		return nil, err
	}
	local, err := grpc.NewClient("unix://"+cfg.MachinedSocket,
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithDefaultCallOptions(grpc.ForceCodecV2(rawCodec{})))
	if err != nil {
		return nil, fmt.Errorf("machined socket %s: %w", cfg.MachinedSocket, err)
	}
	s := &Server{cfg: cfg, certs: certs, local: local, remotes: map[string]*grpc.ClientConn{}}
	s.grpc = grpc.NewServer(
		grpc.Creds(credentials.NewTLS(certs.serverTLS())),
		grpc.ForceServerCodecV2(rawCodec{}),
		grpc.UnknownServiceHandler(s.forward),
	)
	return s, nil
}

// Serve accepts connections on l until Stop.
func (s *Server) Serve(l net.Listener) error {
	s.cfg.Log.Info("serving the node API", "address", l.Addr().String())
	return s.grpc.Serve(l)
}

// Stop stops the server gracefully (in-flight calls are cancelled) and closes the backends.
func (s *Server) Stop() {
	s.grpc.Stop()
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, c := range s.remotes {
		_ = c.Close()
	}
	_ = s.local.Close()
}

// callerRoles returns the roles of the caller: from its certificate, or, when the caller is
// another node (Impersonator), the roles it forwards in metadata.
func callerRoles(ctx context.Context) (roles []string, forwarded bool, err error) {
	p, ok := peer.FromContext(ctx)
	if !ok {
		return nil, false, errors.New("no peer information")
	}
	info, ok := p.AuthInfo.(credentials.TLSInfo)
	if !ok || len(info.State.VerifiedChains) == 0 || len(info.State.VerifiedChains[0]) == 0 {
		return nil, false, errors.New("no verified client certificate")
	}
	cert := info.State.VerifiedChains[0][0]
	if isImpersonator(cert) {
		md, _ := metadata.FromIncomingContext(ctx)
		var roles []string
		for _, v := range md.Get(role.MetadataKey) {
			roles = append(roles, strings.Split(v, ",")...)
		}
		return roles, true, nil
	}
	return cert.Subject.Organization, false, nil
}

func isImpersonator(cert *x509.Certificate) bool {
	return slices.Contains(cert.Subject.Organization, role.Impersonator)
}

// forward handles every call: authorize, pick the backend, and pump messages both ways.
func (s *Server) forward(_ any, ss grpc.ServerStream) error {
	method, ok := grpc.MethodFromServerStream(ss)
	if !ok {
		return status.Error(codes.Internal, "no method in stream")
	}
	ctx := ss.Context()
	roles, forwarded, err := callerRoles(ctx)
	if err != nil {
		return status.Error(codes.Unauthenticated, err.Error())
	}
	if err := authz.Check(method, roles); err != nil {
		return status.Error(codes.PermissionDenied, err.Error())
	}
	in, _ := metadata.FromIncomingContext(ctx)
	out := metadata.MD{}
	for k, v := range in {
		// Transport headers are the client library's business; node and role metadata are
		// set here, never passed through from the caller.
		if strings.HasPrefix(k, ":") || k == "content-type" || k == "user-agent" || k == "te" ||
			k == NodeMetadataKey || k == role.MetadataKey || strings.HasPrefix(k, "grpc-") {
			continue
		}
		out[k] = v
	}
	out.Set(role.MetadataKey, strings.Join(roles, ","))

	conn := s.local
	target := ""
	if nodes := in.Get(NodeMetadataKey); len(nodes) > 0 && !forwarded {
		if len(nodes) > 1 {
			return status.Error(codes.InvalidArgument, "a request names several nodes; the client sends one request per node")
		}
		if !slices.Contains(s.cfg.Self, nodes[0]) {
			target = nodes[0]
			if conn, err = s.remote(target); err != nil {
				return status.Errorf(codes.Unavailable, "node %s: %v", target, err)
			}
		}
	}
	s.cfg.Log.Debug("call", "method", method, "roles", roles, "forwarded", forwarded, "to", target)
	return pump(metadata.NewOutgoingContext(ctx, out), ss, conn, method)
}

// remote returns a cached connection to another node's apid.
func (s *Server) remote(node string) (*grpc.ClientConn, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if c, ok := s.remotes[node]; ok {
		return c, nil
	}
	c, err := grpc.NewClient(net.JoinHostPort(node, s.cfg.Port),
		grpc.WithTransportCredentials(credentials.NewTLS(s.certs.clientTLS())),
		grpc.WithDefaultCallOptions(grpc.ForceCodecV2(rawCodec{})))
	if err != nil {
		return nil, err
	}
	s.remotes[node] = c
	return c, nil
}

// pump copies messages between the caller's stream and a new stream to conn until either
// side finishes, then passes back the backend's headers, trailers and status.
func pump(ctx context.Context, ss grpc.ServerStream, conn *grpc.ClientConn, method string) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	cs, err := conn.NewStream(ctx, &grpc.StreamDesc{ServerStreams: true, ClientStreams: true}, method)
	if err != nil {
		return err
	}
	upstream := make(chan error, 1)
	go func() {
		for {
			f := &frame{}
			if err := ss.RecvMsg(f); err != nil {
				if errors.Is(err, io.EOF) {
					upstream <- cs.CloseSend()
					return
				}
				upstream <- err
				return
			}
			if err := cs.SendMsg(f); err != nil {
				// The backend failed; its status arrives through RecvMsg below.
				upstream <- nil
				return
			}
		}
	}()
	headerSent := false
	for {
		f := &frame{}
		err := cs.RecvMsg(f)
		if !headerSent {
			if md, herr := cs.Header(); herr == nil {
				_ = ss.SendHeader(md)
			}
			headerSent = true
		}
		if err != nil {
			ss.SetTrailer(cs.Trailer())
			if errors.Is(err, io.EOF) {
				return nil
			}
			return err
		}
		if err := ss.SendMsg(f); err != nil {
			return err
		}
		select {
		case uerr := <-upstream:
			if uerr != nil {
				return status.Errorf(codes.Canceled, "client stream: %v", uerr)
			}
		default:
		}
	}
}
