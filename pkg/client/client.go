// Package client connects to the Plinth node API over mutual TLS, using a plinthconfig
// context, and exposes the generated service clients.
package client

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"strings"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/resolver"
	"google.golang.org/grpc/resolver/manual"

	"github.com/plinthos/plinth/internal/ports"
	"github.com/plinthos/plinth/pkg/api/machine"
	"github.com/plinthos/plinth/pkg/api/resource"
	"github.com/plinthos/plinth/pkg/clientconfig"
)

// NodeMetadataKey names the node a request is for; the endpoint's apid forwards it there.
const NodeMetadataKey = "node"

// Client is a connection to one node API endpoint.
type Client struct {
	conn *grpc.ClientConn

	Machine  machine.MachineServiceClient
	Resource resource.ResourceServiceClient
}

// TLSConfig builds the client TLS configuration of a context: TLS 1.3, the context's client
// certificate, and the node API CA as the only root.
func TLSConfig(ctx *clientconfig.Context) (*tls.Config, error) {
	cert, err := tls.X509KeyPair(ctx.Crt, ctx.Key)
	if err != nil {
		return nil, fmt.Errorf("client certificate and key: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(ctx.CA) {
		return nil, errors.New("the context's CA is not a PEM certificate")
	}
	return &tls.Config{MinVersion: tls.VersionTLS13, Certificates: []tls.Certificate{cert}, RootCAs: pool}, nil
}

// New connects (lazily) to endpoint, an address with an optional port, with the
// credentials of cc. Extra dial options are appended.
func New(cc *clientconfig.Context, endpoint string, opts ...grpc.DialOption) (*Client, error) {
	return NewWithEndpoints(cc, []string{endpoint}, opts...)
}

// NewWithEndpoints connects (lazily) to the first of endpoints that answers, and moves on
// to the next ones in order when it stops answering: with every control plane listed, a
// client keeps working while one of them is down. Each endpoint is an address with an
// optional port; the server's certificate is checked against that address.
func NewWithEndpoints(cc *clientconfig.Context, endpoints []string, opts ...grpc.DialOption) (*Client, error) {
	if len(endpoints) == 0 {
		return nil, errors.New("no node API endpoint given")
	}
	tlsConfig, err := TLSConfig(cc)
	if err != nil {
		return nil, err
	}
	addrs := make([]resolver.Address, 0, len(endpoints))
	for _, e := range endpoints {
		addr := e
		if _, _, err := net.SplitHostPort(e); err != nil {
			addr = ports.HostPort(strings.Trim(e, "[]"), ports.NodeAPI)
		}
		host, _, _ := net.SplitHostPort(addr)
		addrs = append(addrs, resolver.Address{Addr: addr, ServerName: host})
	}
	target := addrs[0].Addr
	opts = append([]grpc.DialOption{grpc.WithTransportCredentials(credentials.NewTLS(tlsConfig))}, opts...)
	if len(addrs) > 1 {
		// pick_first (gRPC's default) tries the addresses in order and sticks to the first
		// that connects.
		r := manual.NewBuilderWithScheme("plinth-endpoints")
		r.InitialState(resolver.State{Addresses: addrs})
		target = r.Scheme() + ":///" + addrs[0].Addr
		opts = append(opts, grpc.WithResolvers(r))
	}
	conn, err := grpc.NewClient(target, opts...)
	if err != nil {
		return nil, fmt.Errorf("connect to %s: %w", strings.Join(endpoints, ", "), err)
	}
	return &Client{conn: conn, Machine: machine.NewMachineServiceClient(conn), Resource: resource.NewResourceServiceClient(conn)}, nil
}

// Close closes the connection.
func (c *Client) Close() error { return c.conn.Close() }

// WithNode returns a context whose requests are forwarded by the endpoint to node.
func WithNode(ctx context.Context, node string) context.Context {
	return metadata.AppendToOutgoingContext(ctx, NodeMetadataKey, node)
}
