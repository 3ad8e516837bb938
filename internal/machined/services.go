package machined

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"strconv"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"

	"github.com/plinthos/plinth/internal/apid"
	"github.com/plinthos/plinth/internal/clock"
	"github.com/plinthos/plinth/internal/service"
	"github.com/plinthos/plinth/internal/trustd"
	"github.com/plinthos/plinth/pkg/api/security"
	"github.com/plinthos/plinth/pkg/config"
	"github.com/plinthos/plinth/pkg/pki"
)

// addServices registers the node's services: apid everywhere, trustd on control planes.
func (n *node) addServices(cfg *config.MachineConfig) error {
	identity := apid.FilesIn(n.path("apid"))
	apiAddr := net.JoinHostPort(n.opts.Address, strconv.Itoa(n.opts.APIPort))
	apidArgs := []string{"apid", "--identity-dir", n.path("apid"), "--machined-socket", n.path("apid", "machined.sock"),
		"--listen", apiAddr, "--self", n.opts.Address + "," + n.hostname(), "--peer-port", strconv.Itoa(n.opts.PeerAPIPort)}
	if cfg.Machine.Type == config.TypeControlPlane {
		// Only control planes forward requests to other nodes; their certificate says so.
		apidArgs = append(apidArgs, "--forward")
	}
	apidSvc := service.Service{
		ID: "apid",
		// apid starts once the node API certificate exists.
		Condition: func(ctx context.Context) error { return waitFiles(ctx, identity.CA, identity.Cert, identity.Key) },
		Runner: &service.ProcessRunner{
			Path:        n.opts.Executable,
			Args:        apidArgs,
			Credential:  credential(apidUser()),
			GracePeriod: 5 * time.Second,
		},
		Health:    &service.HealthCheck{InitialDelay: 100 * time.Millisecond, StartPeriod: 200 * time.Millisecond, Period: 5 * time.Second, Timeout: 2 * time.Second, Check: tcpCheck(apiAddr)},
		Restart:   service.RestartForever,
		Protected: true,
	}
	if err := n.sup.Add(apidSvc); err != nil {
		return err
	}
	if err := n.sup.Add(service.Service{
		ID:      "metrics",
		Runner:  service.GoroutineRunner{Name: "metrics, served while machine.metrics.enabled", Func: n.runMetrics},
		Restart: service.RestartForever,
	}); err != nil {
		return err
	}
	if cfg.Machine.Type != config.TypeControlPlane {
		return nil
	}
	trustdAddr := net.JoinHostPort(n.opts.Address, strconv.Itoa(n.opts.TrustdPort))
	return n.sup.Add(service.Service{
		ID:        "trustd",
		Condition: func(ctx context.Context) error { return waitFiles(ctx, identity.Cert, identity.Key) },
		Runner:    service.GoroutineRunner{Name: "trustd", Func: func(ctx context.Context, logs io.Writer) error { return n.runTrustd(ctx, logs, trustdAddr, identity) }},
		Health:    &service.HealthCheck{Period: 5 * time.Second, Timeout: 2 * time.Second, Check: tcpCheck(trustdAddr)},
		Restart:   service.RestartForever,
		Protected: true,
	})
}

// runTrustd serves the security API with the node's own API certificate.
func (n *node) runTrustd(ctx context.Context, logs io.Writer, addr string, identity apid.Files) error {
	log := slog.New(slog.NewTextHandler(logs, nil))
	cfg, _ := n.cfg.Current()
	ca, err := pki.LoadCA(cfg.Machine.CA.Crt, cfg.Machine.CA.Key)
	if err != nil {
		return fmt.Errorf("node API CA: %w", err)
	}
	cert, err := tls.LoadX509KeyPair(identity.Cert, identity.Key)
	if err != nil {
		return err
	}
	gs := grpc.NewServer(grpc.Creds(credentials.NewTLS(&tls.Config{MinVersion: tls.VersionTLS13, Certificates: []tls.Certificate{cert}})))
	security.RegisterSecurityServiceServer(gs, &trustd.Server{
		CA:      ca,
		Token:   func() string { c, _ := n.cfg.Current(); return c.Machine.Token },
		Clock:   clock.Real{},
		Log:     log,
		OnIssue: n.policy.AddIssued,
	})
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	log.Info("trustd serving", "address", addr)
	errc := make(chan error, 1)
	go func() { errc <- gs.Serve(l) }()
	select {
	case <-ctx.Done():
		gs.GracefulStop()
		<-errc
		return nil
	case err := <-errc:
		return err
	}
}

// waitFiles blocks until every path exists.
func waitFiles(ctx context.Context, paths ...string) error {
	for {
		missing := false
		for _, p := range paths {
			if _, err := os.Stat(p); err != nil {
				missing = true
				break
			}
		}
		if !missing {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// tcpCheck is a health check that the address accepts connections.
func tcpCheck(addr string) func(ctx context.Context) error {
	return func(ctx context.Context) error {
		var d net.Dialer
		c, err := d.DialContext(ctx, "tcp", addr)
		if err != nil {
			return err
		}
		return c.Close()
	}
}
