//go:build integration

package integration

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"testing"
	"time"
)

// TestRevocation revokes a reader's client certificate on a running node, over real mTLS:
// the serial that `config info` prints goes into machine.revokedCertificates with a
// no-reboot apply, and the node refuses the certificate from then on, directly and
// forwarded, while the admin's keeps working. It also checks the forwarding rules: a
// control plane forwards only to members, and a worker does not forward at all.
func TestRevocation(t *testing.T) {
	c := startCluster(t, "demo", "cp-1")
	dir, admin, cp, apiPort, trustdPort := c.dir, c.admin, c.cp, c.apiPort, c.trustdPort

	// A worker certified by the control plane's trustd is a member the control plane
	// forwards to; the worker itself forwards to nobody.
	w := startNode(t, dir, "worker-1", "127.0.0.2", apiPort, freePort(t), filepath.Join(dir, "cfg", "worker.yaml"),
		"--trustd-endpoint", net.JoinHostPort("127.0.0.1", trustdPort))
	eventually(t, 30*time.Second, "worker answers through the control plane", func() error {
		out, err := ctl(t, admin, "-n", w.addr, "version")
		if err != nil {
			return fmt.Errorf("%v: %s", err, out)
		}
		return contains(out, "Hostname:  worker-1")
	})
	out, err := ctl(t, admin, "-n", "127.0.0.9", "version")
	if err == nil || contains(out, "not a node of this cluster") != nil {
		t.Errorf("forward to a non-member: %v\n%s", err, out)
	}
	direct := filepath.Join(dir, "worker.plinthconfig")
	data, err := os.ReadFile(admin)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(direct, data, 0o600); err != nil {
		t.Fatal(err)
	}
	mustCtl(t, direct, "config", "endpoint", w.endpoint())
	mustCtl(t, direct, "version")
	out, err = ctl(t, direct, "-n", "127.0.0.1", "version")
	if err == nil || contains(out, "only control-plane nodes forward") != nil {
		t.Errorf("a worker asked to forward: %v\n%s", err, out)
	}

	// An operator cannot stop or restart apid, nor an admin stop it.
	operator := filepath.Join(dir, "operator.plinthconfig")
	mustCtl(t, admin, "config", "new", operator, "--roles", "os:operator")
	mustCtl(t, operator, "config", "endpoint", cp.endpoint())
	for _, args := range [][]string{{"service", "apid", "stop"}, {"service", "apid", "restart"}, {"service", "trustd", "stop"}} {
		out, err := ctl(t, operator, args...)
		if err == nil || contains(out, "cannot be") != nil {
			t.Errorf("operator: %v: %v\n%s", args, err, out)
		}
	}
	out, err = ctl(t, admin, "service", "apid", "stop")
	if err == nil || contains(out, "cannot be stopped through the node API") != nil {
		t.Errorf("admin: service apid stop: %v\n%s", err, out)
	}
	mustCtl(t, operator, "version")
	// An admin's restart of apid cuts the call that asked for it, and apid comes back.
	_, _ = ctl(t, admin, "service", "apid", "restart")
	eventually(t, 30*time.Second, "apid back after an admin restart", func() error {
		out, err := ctl(t, admin, "service", "apid")
		if err != nil {
			return fmt.Errorf("%v: %s", err, out)
		}
		return contains(out, "Running")
	})

	// A reader works until its serial is revoked.
	reader := filepath.Join(dir, "reader.plinthconfig")
	mustCtl(t, admin, "config", "new", reader, "--roles", "os:reader")
	mustCtl(t, reader, "config", "endpoint", cp.endpoint())
	mustCtl(t, reader, "version")
	mustCtl(t, reader, "-n", w.addr, "version")
	m := regexp.MustCompile(`Certificate serial:\s+([0-9a-f]+)`).FindStringSubmatch(mustCtl(t, reader, "config", "info"))
	if m == nil {
		t.Fatal("config info shows no serial")
	}
	for _, node := range []struct{ name, cfg, endpoint string }{{"cp", "controlplane.yaml", ""}, {"worker", "worker.yaml", w.addr}} {
		patched := filepath.Join(dir, node.name+"-revoked.yaml")
		mustRun(t, dir, "machineconfig", "patch", filepath.Join("cfg", node.cfg),
			"--patch", fmt.Sprintf(`{"machine": {"revokedCertificates": ["%s"]}}`, m[1]), "-o", patched)
		args := []string{"apply-config", "-f", patched, "--mode", "no-reboot"}
		if node.endpoint != "" {
			args = append([]string{"-n", node.endpoint}, args...)
		}
		if err := contains(mustCtl(t, admin, args...), "applied without a reboot"); err != nil {
			t.Error(err)
		}
	}
	for _, args := range [][]string{{"version"}, {"-n", w.addr, "version"}} {
		eventually(t, 10*time.Second, "the revoked reader is refused", func() error {
			out, err := ctl(t, reader, args...)
			if err == nil {
				return fmt.Errorf("%v still works", args)
			}
			return contains(out, "revoked")
		})
	}
	mustCtl(t, admin, "version")
	mustCtl(t, admin, "-n", w.addr, "version")
}
