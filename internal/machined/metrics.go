package machined

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/plinthos/plinth/internal/apid"
	"github.com/plinthos/plinth/internal/authz"
	"github.com/plinthos/plinth/internal/controller"
	"github.com/plinthos/plinth/internal/logstore"
	"github.com/plinthos/plinth/internal/metrics"
	"github.com/plinthos/plinth/internal/ports"
	"github.com/plinthos/plinth/internal/resource"
	"github.com/plinthos/plinth/internal/resources"
	"github.com/plinthos/plinth/pkg/api/machine"
	"github.com/plinthos/plinth/pkg/role"
)

// metricsMethod is the node API call whose roles the metrics endpoint requires.
var metricsMethod = "/" + machine.MachineService_ServiceDesc.ServiceName + "/Metrics"

// newMetrics is machined's registry over its supervisor, controllers, store and logs.
func (n *node) newMetrics(engine *controller.Engine, logs *logstore.Store) *metrics.Metrics {
	return metrics.New(metrics.Sources{
		Services:    n.sup.List,
		Controllers: engine.Status,
		Resources: func() []metrics.ResourceCount {
			var out []metrics.ResourceCount
			for _, c := range n.store.Counts() {
				out = append(out, metrics.ResourceCount{Namespace: c.Namespace, Type: c.Type, Count: c.N})
			}
			return out
		},
		LogBytes: logs.Sizes,
	})
}

// watchMachineConfig streams the active machine configuration resource.
func (n *node) watchMachineConfig(ctx context.Context) (<-chan resource.Event, error) {
	return n.store.WatchID(ctx, resources.NamespaceConfig, resources.MachineConfigType, resources.ActiveID)
}

// runMetrics serves the metrics endpoint while the configuration enables it, and stops
// or starts it when a no-reboot apply changes that.
func (n *node) runMetrics(ctx context.Context, logs io.Writer) error {
	log := slog.New(slog.NewTextHandler(logs, nil))
	addr := net.JoinHostPort(n.opts.Address, strconv.Itoa(ports.Metrics))
	return follower[resources.MachineConfigSpec]{
		name:  "metrics",
		watch: n.watchMachineConfig,
		key: func(s resources.MachineConfigSpec) string {
			return strconv.FormatBool(s.Config != nil && s.Config.Machine.Metrics.Enabled)
		},
		run: func(ctx context.Context, s resources.MachineConfigSpec) error {
			if s.Config == nil || !s.Config.Machine.Metrics.Enabled {
				log.Info("metrics are off (machine.metrics.enabled)")
				<-ctx.Done()
				return nil
			}
			return serveMetrics(ctx, log, addr, apid.FilesIn(n.path("apid")), n.metrics, n.policy.Revoked)
		},
	}.Run(ctx, logs)
}

// metricsTLS is the endpoint's TLS: the node API certificate (read again at every
// handshake, so that a renewed one is used), and client certificates required and
// verified against the node API CA, as apid does.
func metricsTLS(identity apid.Files) *tls.Config {
	return &tls.Config{
		MinVersion: tls.VersionTLS13,
		GetConfigForClient: func(*tls.ClientHelloInfo) (*tls.Config, error) {
			cert, err := tls.LoadX509KeyPair(identity.Cert, identity.Key)
			if err != nil {
				return nil, fmt.Errorf("node API certificate: %w", err)
			}
			caPEM, err := os.ReadFile(identity.CA)
			if err != nil {
				return nil, fmt.Errorf("node API CA: %w", err)
			}
			pool := x509.NewCertPool()
			if !pool.AppendCertsFromPEM(caPEM) {
				return nil, errors.New("node API CA: no certificate")
			}
			return &tls.Config{MinVersion: tls.VersionTLS13, Certificates: []tls.Certificate{cert},
				ClientAuth: tls.RequireAndVerifyClientCert, ClientCAs: pool}, nil
		},
	}
}

// metricsHandler serves the registry to a verified client whose certificate is not
// revoked and carries a role that may read metrics.
func metricsHandler(m *metrics.Metrics, revoked func() []string) http.Handler {
	prom := promhttp.HandlerFor(m.Registry(), promhttp.HandlerOpts{})
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/metrics" {
			http.NotFound(w, r)
			return
		}
		if r.TLS == nil || len(r.TLS.PeerCertificates) == 0 {
			http.Error(w, "a client certificate is required", http.StatusUnauthorized)
			return
		}
		leaf := r.TLS.PeerCertificates[0]
		serial := apid.SerialString(leaf.SerialNumber)
		for _, s := range revoked() {
			if n, err := apid.NormalizeSerial(s); err == nil && n == serial {
				http.Error(w, "the client certificate (serial "+serial+") is revoked", http.StatusForbidden)
				return
			}
		}
		if err := authz.Check(metricsMethod, role.Known(leaf.Subject.Organization)); err != nil {
			http.Error(w, err.Error(), http.StatusForbidden)
			return
		}
		prom.ServeHTTP(w, r)
	})
}

// serveMetrics serves the endpoint on addr until ctx ends.
func serveMetrics(ctx context.Context, log *slog.Logger, addr string, identity apid.Files, m *metrics.Metrics, revoked func() []string) error {
	if err := waitFiles(ctx, identity.CA, identity.Cert, identity.Key); err != nil {
		return nil // ctx ended first
	}
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: metricsHandler(m, revoked), TLSConfig: metricsTLS(identity), ReadHeaderTimeout: 10 * time.Second,
		ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelWarn)}
	log.Info("serving metrics", "address", "https://"+addr+"/metrics")
	errc := make(chan error, 1)
	go func() { errc <- srv.ServeTLS(l, "", "") }()
	select {
	case <-ctx.Done():
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
		<-errc
		log.Info("metrics stopped")
		return nil
	case err := <-errc:
		return err
	}
}
