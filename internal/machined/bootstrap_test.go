package machined

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/plinthos/plinth/internal/configgen"
	"github.com/plinthos/plinth/internal/machineapi"
	"github.com/plinthos/plinth/pkg/config"
	"github.com/plinthos/plinth/pkg/pki"
	"github.com/plinthos/plinth/pkg/secrets"
)

func TestNothingListens(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	_, refused := net.Dial("tcp", addr)
	for _, tc := range []struct {
		err  error
		want bool
	}{
		{refused, true},
		{fmt.Errorf("get: %w", io.EOF), true},
		{&net.DNSError{Err: "no such host", Name: "cp.example", IsNotFound: true}, true},
		{context.DeadlineExceeded, false},
		{x509.UnknownAuthorityError{}, false},
	} {
		if got := nothingListens(tc.err); got != tc.want {
			t.Errorf("nothingListens(%v) = %v, want %v", tc.err, got, tc.want)
		}
	}
}

// controlPlaneConfig generates a control-plane configuration whose endpoint is endpoint.
func controlPlaneConfig(t *testing.T, endpoint string) *config.MachineConfig {
	return generatedConfigs(t, endpoint).ControlPlane
}

// generatedConfigs generates a cluster's configurations whose endpoint is endpoint.
func generatedConfigs(t *testing.T, endpoint string) *configgen.Configs {
	t.Helper()
	b, err := secrets.Generate(time.Now())
	if err != nil {
		t.Fatal(err)
	}
	cs, err := configgen.Generate(b, configgen.Options{ClusterName: "demo", Endpoint: endpoint})
	if err != nil {
		t.Fatal(err)
	}
	return cs
}

// apiServer serves HTTPS on loopback with a certificate of ca (a fresh CA when nil).
func apiServer(t *testing.T, ca *pki.KeyPair) string {
	t.Helper()
	if ca == nil {
		var err error
		if ca, err = pki.NewCA(pki.CAOptions{CommonName: "someone else", Validity: time.Hour}); err != nil {
			t.Fatal(err)
		}
	}
	kp, err := pki.Issue(ca, pki.CertOptions{CommonName: "kube-apiserver", IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, Usage: pki.UsageServer, Validity: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	cert, err := tls.X509KeyPair(kp.CertPEM, kp.KeyPEM)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		http.Error(w, "forbidden", http.StatusForbidden) // any answer counts
	}))
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{cert}}
	srv.Config.ErrorLog = log.New(io.Discard, "", 0) // the client refusing another CA is expected
	srv.StartTLS()
	t.Cleanup(srv.Close)
	return srv.URL
}

// TestClusterAbsent checks the bootstrap's look at the cluster's endpoint: nothing there
// lets it go ahead; an API server of the cluster's CA means the cluster exists; anything
// else is unsure, and refuses too.
func TestClusterAbsent(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := "https://" + l.Addr().String()
	l.Close()
	if err := clusterAbsent(controlPlaneConfig(t, closed))(context.Background()); err != nil {
		t.Errorf("nothing listening: %v", err)
	}

	cfg := controlPlaneConfig(t, "https://127.0.0.1:6443")
	ca, err := pki.LoadCA(cfg.Cluster.CA.Crt, cfg.Cluster.CA.Key)
	if err != nil {
		t.Fatal(err)
	}
	cfg.Cluster.ControlPlane.Endpoint = apiServer(t, ca)
	if err := clusterAbsent(cfg)(context.Background()); !errors.Is(err, machineapi.ErrAlreadyBootstrapped) {
		t.Errorf("the cluster's API answers: %v", err)
	}

	cfg.Cluster.ControlPlane.Endpoint = apiServer(t, nil)
	if err := clusterAbsent(cfg)(context.Background()); !errors.Is(err, machineapi.ErrBootstrapUnsure) {
		t.Errorf("another CA's server answers: %v", err)
	}
}
