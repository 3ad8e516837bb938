package pki

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"net"
	"strings"
	"testing"
	"time"
)

func tlsCert(t *testing.T, kp *KeyPair) tls.Certificate {
	t.Helper()
	cert, err := tls.X509KeyPair(kp.CertPEM, kp.KeyPEM)
	if err != nil {
		t.Fatalf("tls.X509KeyPair(%q): %v", kp.Cert.Subject.CommonName, err)
	}
	return cert
}

// handshake runs one TLS connection between a server with serverCfg and a
// client with clientCfg over 127.0.0.1. The server sends "ok\n" after its
// handshake; the client reads it. It returns the server's handshake error
// and the client's dial or read error.
func handshake(t *testing.T, serverCfg, clientCfg *tls.Config) (serverErr, clientErr error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()

	done := make(chan error, 1)
	go func() {
		conn, err := ln.Accept()
		if err != nil {
			done <- err
			return
		}
		defer conn.Close()
		deadline, _ := ctx.Deadline()
		_ = conn.SetDeadline(deadline)
		tc := tls.Server(conn, serverCfg)
		if err := tc.HandshakeContext(ctx); err != nil {
			done <- err
			return
		}
		_, err = io.WriteString(tc, "ok\n")
		done <- err
	}()

	clientErr = func() error {
		dialer := &tls.Dialer{Config: clientCfg}
		conn, err := dialer.DialContext(ctx, "tcp", ln.Addr().String())
		if err != nil {
			return err
		}
		defer conn.Close()
		deadline, _ := ctx.Deadline()
		_ = conn.SetDeadline(deadline)
		// With TLS 1.3 the client finishes its handshake before the server
		// has checked the client certificate; a rejection shows up here.
		buf := make([]byte, 3)
		if _, err := io.ReadFull(conn, buf); err != nil {
			return err
		}
		if string(buf) != "ok\n" {
			return errors.New("unexpected reply " + string(buf))
		}
		return nil
	}()

	ln.Close() // unblocks Accept if the client never connected
	select {
	case serverErr = <-done:
	case <-ctx.Done():
		t.Fatal("TLS server did not finish in time")
	}
	return serverErr, clientErr
}

func TestTLSInterop(t *testing.T) {
	ca := mustCA(t, "os-ca")
	other := mustCA(t, "other-ca")
	server := mustIssue(t, ca, CertOptions{
		CommonName:  "machined",
		DNSNames:    []string{"localhost"},
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")},
		Usage:       UsageServer,
		Validity:    day,
	})
	client := mustIssue(t, ca, CertOptions{CommonName: "plinthctl", Organization: []string{"os:admin"}, Usage: UsageClient, Validity: day})
	foreign := mustIssue(t, other, CertOptions{CommonName: "intruder", Organization: []string{"os:admin"}, Usage: UsageClient, Validity: day})
	serverOnly := mustIssue(t, ca, CertOptions{CommonName: "not-a-client", Usage: UsageServer, Validity: day})
	foreignServer := mustIssue(t, other, CertOptions{CommonName: "impostor", IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, Usage: UsageServer, Validity: day})

	pool := func(certs ...*x509.Certificate) *x509.CertPool {
		p := x509.NewCertPool()
		for _, c := range certs {
			p.AddCert(c)
		}
		return p
	}
	tests := []struct {
		name       string
		serverCert *KeyPair
		clientCert *KeyPair
		wantErr    string // empty: the handshake succeeds
	}{
		{"issued client certificate", server, client, ""},
		{"client certificate from another CA", server, foreign, "unknown authority"},
		{"client certificate without client usage", server, serverOnly, "incompatible key usage"},
		{"server certificate from another CA", foreignServer, client, "unknown authority"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			serverCfg := &tls.Config{
				MinVersion:   tls.VersionTLS13,
				Certificates: []tls.Certificate{tlsCert(t, tt.serverCert)},
				ClientAuth:   tls.RequireAndVerifyClientCert,
				ClientCAs:    pool(ca.Cert),
			}
			clientTLSCert := tlsCert(t, tt.clientCert)
			clientCfg := &tls.Config{
				MinVersion: tls.VersionTLS13,
				RootCAs:    pool(ca.Cert),
				// Always send the certificate, even when the server's list of
				// acceptable CAs does not name its issuer, so that the server
				// has to reject it itself.
				GetClientCertificate: func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
					return &clientTLSCert, nil
				},
			}
			var gotPeer string
			serverCfg.VerifyConnection = func(cs tls.ConnectionState) error {
				if len(cs.PeerCertificates) > 0 {
					gotPeer = cs.PeerCertificates[0].Subject.CommonName
				}
				return nil
			}
			serverErr, clientErr := handshake(t, serverCfg, clientCfg)
			if tt.wantErr == "" {
				if serverErr != nil || clientErr != nil {
					t.Fatalf("handshake failed: server: %v, client: %v", serverErr, clientErr)
				}
				if gotPeer != tt.clientCert.Cert.Subject.CommonName {
					t.Errorf("server saw client %q, want %q", gotPeer, tt.clientCert.Cert.Subject.CommonName)
				}
				return
			}
			if serverErr == nil || clientErr == nil {
				t.Fatalf("handshake succeeded, want refusal: server: %v, client: %v", serverErr, clientErr)
			}
			if !strings.Contains(serverErr.Error(), tt.wantErr) && !strings.Contains(clientErr.Error(), tt.wantErr) {
				t.Errorf("refused with server: %v, client: %v; want an error containing %q", serverErr, clientErr, tt.wantErr)
			}
		})
	}
}
