package apid

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"
)

// Files names the files apid takes its identity from. machined writes them (atomically)
// and rotates them; apid rereads them when they change.
type Files struct {
	CA, Cert, Key string
}

// FilesIn returns the standard file names in dir: ca.crt, apid.crt, apid.key.
func FilesIn(dir string) Files {
	return Files{CA: filepath.Join(dir, "ca.crt"), Cert: filepath.Join(dir, "apid.crt"), Key: filepath.Join(dir, "apid.key")}
}

// certSource serves the current certificate and CA pool, reloading them from disk at most
// once per second when a file's modification time changed.
type certSource struct {
	files Files

	mu      sync.Mutex
	checked time.Time
	mtimes  [3]time.Time
	cert    *tls.Certificate
	pool    *x509.CertPool
}

func newCertSource(files Files) (*certSource, error) {
	s := &certSource{files: files}
	if err := s.reload(true); err != nil {
		return nil, err
	}
	return s, nil
}

// reload rereads the files when they changed; with force it always does.
func (s *certSource) reload(force bool) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !force && time.Since(s.checked) < time.Second {
		return nil
	}
	s.checked = time.Now()
	var mtimes [3]time.Time
	for i, p := range []string{s.files.CA, s.files.Cert, s.files.Key} {
		st, err := os.Stat(p)
		if err != nil {
			return fmt.Errorf("apid identity: %w", err)
		}
		mtimes[i] = st.ModTime()
	}
	if !force && mtimes == s.mtimes {
		return nil
	}
	caPEM, err := os.ReadFile(s.files.CA)
	if err != nil {
		return fmt.Errorf("apid identity: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(caPEM) {
		return fmt.Errorf("apid identity: no certificate in %s", s.files.CA)
	}
	cert, err := tls.LoadX509KeyPair(s.files.Cert, s.files.Key)
	if err != nil {
		return fmt.Errorf("apid identity: %w", err)
	}
	s.cert, s.pool, s.mtimes = &cert, pool, mtimes
	return nil
}

func (s *certSource) current() (*tls.Certificate, *x509.CertPool) {
	// A failed reload keeps serving the last good identity; the error shows again on the
	// next check.
	_ = s.reload(false)
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.cert, s.pool
}

// serverTLS is the TLS configuration of the listener: TLS 1.3, client certificates required
// and verified against the node API CA, both reloaded when they change.
func (s *certSource) serverTLS() *tls.Config {
	return &tls.Config{
		MinVersion: tls.VersionTLS13,
		ClientAuth: tls.RequireAnyClientCert,
		GetConfigForClient: func(*tls.ClientHelloInfo) (*tls.Config, error) {
			cert, pool := s.current()
			return &tls.Config{
				MinVersion:   tls.VersionTLS13,
				Certificates: []tls.Certificate{*cert},
				ClientAuth:   tls.RequireAndVerifyClientCert,
				ClientCAs:    pool,
			}, nil
		},
	}
}

// clientTLS is the TLS configuration for forwarding to another node's apid: this node's
// own certificate as the client identity, the node API CA as the only root.
func (s *certSource) clientTLS() *tls.Config {
	return &tls.Config{
		MinVersion: tls.VersionTLS13,
		GetClientCertificate: func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
			cert, _ := s.current()
			return cert, nil
		},
		// The root pool can change at run time, so verification is done here rather than
		// with a fixed RootCAs.
		InsecureSkipVerify: true, //nolint:gosec // verified in VerifyConnection below
		VerifyConnection: func(cs tls.ConnectionState) error {
			_, pool := s.current()
			if len(cs.PeerCertificates) == 0 {
				return fmt.Errorf("the node presented no certificate")
			}
			opts := x509.VerifyOptions{Roots: pool, DNSName: cs.ServerName, Intermediates: x509.NewCertPool(),
				KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
			for _, c := range cs.PeerCertificates[1:] {
				opts.Intermediates.AddCert(c)
			}
			_, err := cs.PeerCertificates[0].Verify(opts)
			return err
		},
	}
}
