//go:build e2e

package e2e

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"time"

	"github.com/plinthos/plinth/pkg/clientconfig"
)

// scrape gets https://node:50002/metrics with the client certificate of a client config,
// as Prometheus would with its files.
func scrape(e *env, node, plinthconfig string) (int, string, error) {
	e.t.Helper()
	cfg, err := clientconfig.Load(plinthconfig)
	if err != nil {
		e.t.Fatal(err)
	}
	_, ctx, err := cfg.Current()
	if err != nil {
		e.t.Fatal(err)
	}
	cert, err := tls.X509KeyPair(ctx.Crt, ctx.Key)
	if err != nil {
		e.t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(ctx.CA)
	c := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{RootCAs: pool, Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS13}}}
	defer c.CloseIdleConnections()
	resp, err := c.Get("https://" + net.JoinHostPort(node, "50002") + "/metrics")
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body), err
}

// checkMetrics turns machined's metrics on for the control plane without a reboot, reads
// them through the node API and scrapes them over mTLS with a metrics-only certificate,
// checks who may not, and turns them off again.
func checkMetrics(e *env, cp string) {
	e.t.Helper()
	if out, err := e.run(time.Minute, e.plinthctl, "-n", cp, "metrics"); err == nil || !strings.Contains(out, "metrics are off") {
		e.t.Errorf("metrics while off: %v\n%s", err, out)
	}
	if c, err := net.DialTimeout("tcp", net.JoinHostPort(cp, "50002"), 5*time.Second); err == nil {
		c.Close()
		e.t.Error("the metrics port accepts connections while metrics are off")
	}

	original := filepath.Join(e.home, ".plinth", "clusters", e.name, "controlplane.yaml")
	enabled := filepath.Join(e.home, "controlplane-metrics.yaml")
	e.must(time.Minute, e.plinthctl, "machineconfig", "patch", original, "--patch", `{"machine": {"metrics": {"enabled": true}}}`, "-o", enabled)
	e.must(time.Minute, e.plinthctl, "-n", cp, "apply-config", "-f", enabled, "--mode", "no-reboot")

	var text string
	e.eventually(time.Minute, "metrics through the node API", func() error {
		out, err := e.run(time.Minute, e.plinthctl, "-n", cp, "metrics")
		if err != nil {
			return fmt.Errorf("%v: %s", err, out)
		}
		text = out
		return nil
	})
	for _, want := range []string{
		`plinth_service_running{service="kubelet"} 1`,
		`plinth_service_running{service="etcd-snapshots"} 1`,
		`plinth_service_healthy{service="apid"} 1`,
		`plinth_service_restarts_total{service="kubelet"}`,
		`plinth_controller_runs_total{controller="k8s.StaticPods"}`,
		`plinth_controller_failures_total{controller=`,
		`plinth_resources{namespace="runtime",type="Services.runtime.plinth.dev"}`,
		`plinth_api_calls_total{code="OK",method="/plinth.machine.v1alpha1.MachineService/ApplyConfiguration",role="os:admin"} 1`,
		`plinth_api_call_duration_seconds_bucket{method="/plinth.machine.v1alpha1.MachineService/ApplyConfiguration",role="os:admin",le=`,
		`plinth_log_store_bytes{log="kubelet"}`,
		"process_resident_memory_bytes",
	} {
		if !strings.Contains(text, want) {
			e.t.Errorf("plinthctl metrics lacks %q", want)
		}
	}

	// Prometheus's certificate: os:metrics reads the endpoint and nothing else.
	prom := filepath.Join(e.home, "metrics.plinthconfig")
	e.must(time.Minute, e.plinthctl, "-n", cp, "config", "new", prom, "--roles", "os:metrics")
	e.eventually(time.Minute, "a scrape with an os:metrics certificate", func() error {
		code, body, err := scrape(e, cp, prom)
		if err != nil || code != http.StatusOK || !strings.Contains(body, `plinth_service_running{service="kubelet"} 1`) {
			return fmt.Errorf("%d %v: %.200s", code, err, body)
		}
		return nil
	})
	if out, err := e.run(time.Minute, e.plinthctl, "--plinthconfig", prom, "-n", cp, "version"); err == nil || !strings.Contains(out, "needs role os:reader") {
		e.t.Errorf("an os:metrics certificate called Version: %v\n%s", err, out)
	}
	backup := filepath.Join(e.home, "backup.plinthconfig")
	e.must(time.Minute, e.plinthctl, "-n", cp, "config", "new", backup, "--roles", "os:etcd:backup")
	if code, body, err := scrape(e, cp, backup); err != nil || code != http.StatusForbidden || !strings.Contains(body, "Metrics needs role os:metrics") {
		e.t.Errorf("a scrape with an os:etcd:backup certificate: %d %v %q", code, err, body)
	}

	// Off again: the port closes.
	e.must(time.Minute, e.plinthctl, "-n", cp, "apply-config", "-f", original, "--mode", "no-reboot")
	e.eventually(time.Minute, "the metrics port closes once metrics are off", func() error {
		c, err := net.DialTimeout("tcp", net.JoinHostPort(cp, "50002"), 5*time.Second)
		if err == nil {
			c.Close()
			return fmt.Errorf("port 50002 still accepts connections")
		}
		return nil
	})
}
