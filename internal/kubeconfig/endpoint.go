package kubeconfig

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"strings"
)

// Endpoint is what a client needs to reach the API server of a kubeconfig.
type Endpoint struct {
	// Server is the API server's URL, without a trailing slash.
	Server string
	// TLS trusts the cluster's certificate authority (the system's without one) and
	// presents the user's client certificate, if it has one.
	TLS *tls.Config
	// Token is the user's bearer token, if any.
	Token string
}

// Endpoint returns how to reach the API server of the current context (see Selected).
// Certificate files named in the kubeconfig are read now.
func (c *Config) Endpoint() (*Endpoint, error) {
	cl, u, err := c.Selected()
	if err != nil {
		return nil, err
	}
	if cl.Server == "" {
		return nil, errors.New("kubeconfig: the cluster has no server")
	}
	tc := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: cl.TLSServerName}
	ca := []byte(cl.CertificateAuthorityData)
	if len(ca) == 0 && cl.CertificateAuthority != "" {
		if ca, err = os.ReadFile(cl.CertificateAuthority); err != nil {
			return nil, fmt.Errorf("kubeconfig certificate authority: %w", err)
		}
	}
	if len(ca) > 0 {
		tc.RootCAs = x509.NewCertPool()
		if !tc.RootCAs.AppendCertsFromPEM(ca) {
			return nil, errors.New("kubeconfig: the certificate authority holds no PEM certificate")
		}
	}
	certPEM, keyPEM := []byte(u.ClientCertificateData), []byte(u.ClientKeyData)
	if len(certPEM) == 0 && u.ClientCertificate != "" {
		if certPEM, err = os.ReadFile(u.ClientCertificate); err != nil {
			return nil, fmt.Errorf("kubeconfig client certificate: %w", err)
		}
	}
	if len(keyPEM) == 0 && u.ClientKey != "" {
		if keyPEM, err = os.ReadFile(u.ClientKey); err != nil {
			return nil, fmt.Errorf("kubeconfig client key: %w", err)
		}
	}
	switch {
	case len(certPEM) > 0 && len(keyPEM) > 0:
		cert, err := tls.X509KeyPair(certPEM, keyPEM)
		if err != nil {
			return nil, fmt.Errorf("kubeconfig client certificate: %w", err)
		}
		tc.Certificates = []tls.Certificate{cert}
	case len(certPEM) > 0 || len(keyPEM) > 0:
		return nil, errors.New("kubeconfig: the user has a client certificate without a key, or a key without a certificate")
	}
	return &Endpoint{Server: strings.TrimSuffix(cl.Server, "/"), TLS: tc, Token: u.Token}, nil
}
