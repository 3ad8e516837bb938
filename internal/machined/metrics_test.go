package machined

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/plinthos/plinth/internal/apid"
	"github.com/plinthos/plinth/internal/metrics"
	"github.com/plinthos/plinth/internal/service"
	"github.com/plinthos/plinth/pkg/pki"
	"github.com/plinthos/plinth/pkg/role"
)

// TestMetricsEndpoint serves the endpoint as machined does and scrapes it with
// certificates of each kind: only a verified, unrevoked one with a metrics-capable role
// reads the metrics.
func TestMetricsEndpoint(t *testing.T) {
	ca, err := pki.NewCA(pki.CAOptions{CommonName: "os", Validity: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	other, err := pki.NewCA(pki.CAOptions{CommonName: "other", Validity: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	server, err := pki.Issue(ca, pki.CertOptions{CommonName: "node", IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, Usage: pki.UsageServer, Validity: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	identity := apid.FilesIn(t.TempDir())
	for path, data := range map[string][]byte{identity.CA: ca.CertPEM, identity.Cert: server.CertPEM, identity.Key: server.KeyPEM} {
		if err := os.WriteFile(path, data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	client := func(ca *pki.KeyPair, roles ...string) *pki.KeyPair {
		kp, err := pki.Issue(ca, pki.CertOptions{CommonName: "client", Organization: roles, Usage: pki.UsageClient, Validity: time.Hour})
		if err != nil {
			t.Fatal(err)
		}
		return kp
	}
	prom, reader, backup, foreign, revoked := client(ca, role.Metrics), client(ca, role.Reader), client(ca, role.EtcdBackup), client(other, role.Metrics), client(ca, role.Metrics)

	m := metrics.New(metrics.Sources{Services: func() []service.Status {
		return []service.Status{{ID: "kubelet", State: service.Running, Restarts: 2}}
	}})
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- serveMetrics(ctx, slog.New(slog.DiscardHandler), addr, identity, m,
			func() []string { return []string{"0x" + strconv.FormatInt(0, 16), revoked.Cert.SerialNumber.Text(16)} })
	}()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("serveMetrics: %v", err)
		}
	}()

	pool := x509.NewCertPool()
	pool.AddCert(ca.Cert)
	get := func(kp *pki.KeyPair) (int, string, error) {
		tc := &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS13}
		if kp != nil {
			cert, err := tls.X509KeyPair(kp.CertPEM, kp.KeyPEM)
			if err != nil {
				t.Fatal(err)
			}
			tc.Certificates = []tls.Certificate{cert}
		}
		c := &http.Client{Transport: &http.Transport{TLSClientConfig: tc}, Timeout: 5 * time.Second}
		defer c.CloseIdleConnections()
		var resp *http.Response
		var err error
		for range 50 { // the listener comes up in the background
			if resp, err = c.Get("https://" + addr + "/metrics"); err == nil || !strings.Contains(err.Error(), "connection refused") {
				break
			}
			time.Sleep(50 * time.Millisecond)
		}
		if err != nil {
			return 0, "", err
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(body), nil
	}

	for name, kp := range map[string]*pki.KeyPair{"os:metrics": prom, "os:reader": reader} {
		code, body, err := get(kp)
		if err != nil || code != http.StatusOK || !strings.Contains(body, `plinth_service_restarts_total{service="kubelet"} 2`) {
			t.Errorf("%s: %d %v\n%.300s", name, code, err, body)
		}
	}
	for name, c := range map[string]struct {
		kp   *pki.KeyPair
		want string
	}{
		"os:etcd:backup": {backup, "Metrics needs role os:metrics"},
		"revoked":        {revoked, "is revoked"},
	} {
		code, body, err := get(c.kp)
		if err != nil || code != http.StatusForbidden || !strings.Contains(body, c.want) {
			t.Errorf("%s: %d %v %q, want 403 %q", name, code, err, body, c.want)
		}
	}
	// No certificate, or one of another CA: the handshake fails.
	for name, kp := range map[string]*pki.KeyPair{"no certificate": nil, "another CA": foreign} {
		if code, _, err := get(kp); err == nil {
			t.Errorf("%s: got %d, want a failed handshake", name, code)
		}
	}
}
