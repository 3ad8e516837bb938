// Package apid is the network face of a node: it terminates mutual TLS on port 50000,
// checks the caller's role against the authorization table, and forwards each call, as
// opaque bytes, to the local machined over its unix socket or to one other node's apid.
package apid

import (
	"cmp"
	"context"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"

	"github.com/plinthos/plinth/internal/authz"
	"github.com/plinthos/plinth/internal/ports"
	"github.com/plinthos/plinth/pkg/role"
)

// NodeMetadataKey is the metadata key naming the node a request is for.
const NodeMetadataKey = "node"

// Config configures a Server.
type Config struct {
	// Identity names the CA, certificate and key files.
	Identity Files
	// MachinedSocket is the path of machined's unix socket.
	MachinedSocket string
	// Self lists the names and addresses under which this node is addressed; a request
	// whose node metadata is one of them (or absent) is served locally.
	Self []string
	// Forward is set on control-plane nodes: only they forward requests to other nodes.
	// Their certificate carries role.Forwarder and client usage; a worker's does not.
	Forward bool
	// PolicyFile is the policy (members, revoked serials) machined keeps current;
	// empty means PolicyFileName in the directory of Identity.CA.
	PolicyFile string
	// Port is the apid port of other nodes (default 50000).
	Port string
	// Limits bound streams and connections; zero fields take DefaultLimits' values.
	Limits Limits
	Log    *slog.Logger
}

// Server is a running apid.
type Server struct {
	cfg     Config
	certs   *certSource
	policy  *policySource
	streams *streamCounter
	grpc    *grpc.Server
	local   *grpc.ClientConn

	mu      sync.Mutex
	remotes map[string]*remoteConn
	tick    uint64
}

// remoteConn is a cached connection to another node's apid.
type remoteConn struct {
	conn     *grpc.ClientConn
	lastUsed uint64
	// active counts the calls using conn; only an idle connection is closed to make room.
	active int
}

// New prepares a server; Serve starts it.
func New(cfg Config) (*Server, error) {
	if cfg.Port == "" {
		cfg.Port = strconv.Itoa(ports.NodeAPI)
	}
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	if cfg.PolicyFile == "" {
		cfg.PolicyFile = filepath.Join(filepath.Dir(cfg.Identity.CA), PolicyFileName)
	}
	cfg.Limits = withDefaults(cfg.Limits)
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
	s := &Server{cfg: cfg, certs: certs, local: local, remotes: map[string]*remoteConn{},
		policy:  &policySource{path: cfg.PolicyFile, log: cfg.Log},
		streams: newStreamCounter(cfg.Limits)}
	s.grpc = grpc.NewServer(
		grpc.Creds(credentials.NewTLS(certs.serverTLS())),
		grpc.ForceServerCodecV2(rawCodec{}),
		grpc.MaxConcurrentStreams(cfg.Limits.StreamsPerConnection),
		// A client that connects and never finishes its TLS handshake is dropped soon.
		grpc.ConnectionTimeout(10*time.Second),
		grpc.UnknownServiceHandler(s.forward),
	)
	return s, nil
}

func withDefaults(l Limits) Limits {
	d := DefaultLimits
	l.StreamsPerConnection = cmp.Or(l.StreamsPerConnection, d.StreamsPerConnection)
	l.StreamsPerCaller = cmp.Or(l.StreamsPerCaller, d.StreamsPerCaller)
	l.Streams = cmp.Or(l.Streams, d.Streams)
	l.Remotes = cmp.Or(l.Remotes, d.Remotes)
	l.ConnectionsPerSource = cmp.Or(l.ConnectionsPerSource, d.ConnectionsPerSource)
	l.Connections = cmp.Or(l.Connections, d.Connections)
	return l
}

// Serve accepts connections on l until Stop.
func (s *Server) Serve(l net.Listener) error {
	s.cfg.Log.Info("serving the node API", "address", l.Addr().String(), "forwards", s.cfg.Forward)
	return s.grpc.Serve(newConnLimitListener(l, s.cfg.Limits.ConnectionsPerSource, s.cfg.Limits.Connections))
}

// Stop stops the server gracefully (in-flight calls are cancelled) and closes the backends.
func (s *Server) Stop() {
	s.grpc.Stop()
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, c := range s.remotes {
		_ = c.conn.Close()
	}
	_ = s.local.Close()
}

// caller is who a call is for, as apid established it.
type caller struct {
	// roles are the node API roles of the client's own, verified certificate.
	roles []string
	// chain is the client's certificate chain (DER, leaf first), passed on when the call
	// is forwarded.
	chain [][]byte
	// key identifies the client for the per-caller limits (its leaf certificate).
	key string
	// forwarded is set when another node forwarded the call.
	forwarded bool
}

// identify establishes the caller: the verified client certificate's roles, or, when the
// peer is a forwarding control plane, the roles of the original client's certificate,
// which the forwarder passes on and this node verifies itself against the node API CA.
// A certificate whose serial is revoked is refused either way.
func (s *Server) identify(ctx context.Context) (caller, error) {
	p, ok := peer.FromContext(ctx)
	if !ok {
		return caller{}, errors.New("no peer information")
	}
	info, ok := p.AuthInfo.(credentials.TLSInfo)
	if !ok || len(info.State.VerifiedChains) == 0 || len(info.State.VerifiedChains[0]) == 0 {
		return caller{}, errors.New("no verified client certificate")
	}
	_, revoked := s.policy.current()
	peerCert := info.State.VerifiedChains[0][0]
	if err := checkRevoked(peerCert, revoked); err != nil {
		return caller{}, err
	}
	if !isForwarder(peerCert) {
		var chain [][]byte
		for _, c := range info.State.PeerCertificates {
			chain = append(chain, c.Raw)
		}
		return caller{roles: role.Known(peerCert.Subject.Organization), chain: chain, key: certKey(peerCert)}, nil
	}
	md, _ := metadata.FromIncomingContext(ctx)
	vals := md.Get(role.ForwardedCertKey)
	if len(vals) != 1 {
		return caller{}, errors.New("a forwarding node must pass on exactly one client certificate chain")
	}
	chain, leaf, err := s.verifyForwarded(vals[0])
	if err != nil {
		return caller{}, fmt.Errorf("forwarded client certificate: %w", err)
	}
	if err := checkRevoked(leaf, revoked); err != nil {
		return caller{}, err
	}
	return caller{roles: role.Known(leaf.Subject.Organization), chain: chain, key: certKey(leaf), forwarded: true}, nil
}

// verifyForwarded decodes and verifies a forwarded certificate chain: a client
// certificate of the node API CA, valid now, that is not itself a node's certificate.
func (s *Server) verifyForwarded(v string) ([][]byte, *x509.Certificate, error) {
	var chain [][]byte
	var certs []*x509.Certificate
	for _, part := range strings.Split(v, ",") {
		der, err := base64.StdEncoding.DecodeString(part)
		if err != nil {
			return nil, nil, fmt.Errorf("not base64: %w", err)
		}
		c, err := x509.ParseCertificate(der)
		if err != nil {
			return nil, nil, err
		}
		chain, certs = append(chain, der), append(certs, c)
		if len(certs) > 4 {
			return nil, nil, errors.New("chain too long")
		}
	}
	if len(certs) == 0 {
		return nil, nil, errors.New("empty chain")
	}
	_, pool := s.certs.current()
	opts := x509.VerifyOptions{Roots: pool, Intermediates: x509.NewCertPool(), KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}
	for _, c := range certs[1:] {
		opts.Intermediates.AddCert(c)
	}
	if _, err := certs[0].Verify(opts); err != nil {
		return nil, nil, err
	}
	if isForwarder(certs[0]) || certs[0].IsCA {
		return nil, nil, errors.New("a node or CA certificate cannot be forwarded as a client's")
	}
	return chain, certs[0], nil
}

// checkRevoked refuses a certificate whose serial is in revoked.
func checkRevoked(cert *x509.Certificate, revoked map[string]bool) error {
	if serial := SerialString(cert.SerialNumber); revoked[serial] {
		return fmt.Errorf("the client certificate (serial %s) is revoked", serial)
	}
	return nil
}

func isForwarder(cert *x509.Certificate) bool {
	return slices.Contains(cert.Subject.Organization, role.Forwarder)
}

func certKey(c *x509.Certificate) string {
	sum := sha256.Sum256(c.Raw)
	return hex.EncodeToString(sum[:])
}

// forward handles every call: authorize, pick the backend, and pump messages both ways.
func (s *Server) forward(_ any, ss grpc.ServerStream) error {
	method, ok := grpc.MethodFromServerStream(ss)
	if !ok {
		return status.Error(codes.Internal, "no method in stream")
	}
	ctx := ss.Context()
	who, err := s.identify(ctx)
	if err != nil {
		return status.Error(codes.Unauthenticated, err.Error())
	}
	if err := authz.Check(method, who.roles); err != nil {
		return status.Error(codes.PermissionDenied, err.Error())
	}
	release, perCaller, ok := s.streams.acquire(who.key)
	if !ok {
		if perCaller {
			return status.Errorf(codes.ResourceExhausted, "this client already has %d calls open on this node (follow streams count); end some and retry", s.cfg.Limits.StreamsPerCaller)
		}
		return status.Error(codes.ResourceExhausted, "the node serves too many calls at once; retry later")
	}
	defer release()
	in, _ := metadata.FromIncomingContext(ctx)
	out := metadata.MD{}
	for k, v := range in {
		// Transport headers are the client library's business; node, role and forwarded
		// certificate metadata are set here, never passed through from the caller.
		if strings.HasPrefix(k, ":") || k == "content-type" || k == "user-agent" || k == "te" ||
			k == NodeMetadataKey || k == role.MetadataKey || k == role.ForwardedCertKey || strings.HasPrefix(k, "grpc-") {
			continue
		}
		out[k] = v
	}

	conn := s.local
	target := ""
	if nodes := in.Get(NodeMetadataKey); len(nodes) > 0 && !who.forwarded {
		if len(nodes) > 1 {
			return status.Error(codes.InvalidArgument, "a request names several nodes; the client sends one request per node")
		}
		if !slices.Contains(s.cfg.Self, nodes[0]) {
			target = nodes[0]
			var done func()
			if conn, done, err = s.remote(target); err != nil {
				return err
			}
			defer done()
			enc := make([]string, len(who.chain))
			for i, der := range who.chain {
				enc[i] = base64.StdEncoding.EncodeToString(der)
			}
			out.Set(role.ForwardedCertKey, strings.Join(enc, ","))
		}
	}
	if target == "" {
		// machined, behind its unix socket, trusts the roles apid established.
		out.Set(role.MetadataKey, strings.Join(who.roles, ","))
	}
	s.cfg.Log.Debug("call", "method", method, "roles", who.roles, "forwarded", who.forwarded, "to", target)
	return pump(metadata.NewOutgoingContext(ctx, out), ss, conn, method)
}

// remote returns a connection to another node's apid, which must be a known member of
// the cluster, and a function to call when the call using it ends. The error is a gRPC
// status for the caller. At most Limits.Remotes connections are kept: the least recently
// used idle one is closed to make room (a connection in use is never closed under a call;
// while every one is busy the cache grows past the limit, bounded by the limit of calls).
func (s *Server) remote(node string) (*grpc.ClientConn, func(), error) {
	if !s.cfg.Forward {
		return nil, nil, status.Error(codes.FailedPrecondition, "this node is a worker: only control-plane nodes forward requests to other nodes; use a control plane as the endpoint")
	}
	members, _ := s.policy.current()
	if !slices.Contains(members, node) {
		// Nothing is dialled: the answer is the same whether something listens there.
		return nil, nil, status.Errorf(codes.NotFound, "%q is not a node of this cluster that this control plane knows; name a node by the address it has in the cluster (nodes are known once they have their node certificate or are registered in Kubernetes)", node)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.tick++
	rc, ok := s.remotes[node]
	if !ok {
		s.evictIdleLocked()
		c, err := grpc.NewClient(net.JoinHostPort(node, s.cfg.Port),
			grpc.WithTransportCredentials(credentials.NewTLS(s.certs.clientTLS())),
			grpc.WithDefaultCallOptions(grpc.ForceCodecV2(rawCodec{})))
		if err != nil {
			return nil, nil, status.Errorf(codes.Unavailable, "node %s: %v", node, err)
		}
		rc = &remoteConn{conn: c}
		s.remotes[node] = rc
	}
	rc.lastUsed = s.tick
	rc.active++
	var once sync.Once
	return rc.conn, func() {
		once.Do(func() {
			s.mu.Lock()
			defer s.mu.Unlock()
			rc.active--
		})
	}, nil
}

// evictIdleLocked closes least recently used idle connections until there is room for
// one more; s.mu is held.
func (s *Server) evictIdleLocked() {
	for len(s.remotes) >= s.cfg.Limits.Remotes {
		oldest := ""
		for name, c := range s.remotes {
			if c.active == 0 && (oldest == "" || c.lastUsed < s.remotes[oldest].lastUsed) {
				oldest = name
			}
		}
		if oldest == "" {
			return
		}
		_ = s.remotes[oldest].conn.Close()
		delete(s.remotes, oldest)
	}
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
