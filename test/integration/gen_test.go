//go:build integration

// Package integration drives the built plinthctl binary as a user would. Run it with
// `make test-integration`, which builds the binary and passes its path in $PLINTHCTL.
package integration

import (
	"bytes"
	"encoding/pem"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/plinthos/plinth/pkg/clientconfig"
	"github.com/plinthos/plinth/pkg/config"
)

// plinthctl runs the binary with args in dir and returns its combined output.
func plinthctl(t testing.TB, dir string, args ...string) (string, error) {
	t.Helper()
	bin := os.Getenv("PLINTHCTL")
	if bin == "" {
		t.Skip("PLINTHCTL is not set: run `make test-integration`")
	}
	cmd := exec.Command(bin, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "HOME="+dir, "PLINTHCONFIG="+filepath.Join(dir, "home-plinthconfig"))
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	return out.String(), err
}

func mustRun(t testing.TB, dir string, args ...string) string {
	t.Helper()
	out, err := plinthctl(t, dir, args...)
	if err != nil {
		t.Fatalf("plinthctl %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return out
}

// TestDoneWhen walks the foundation issue's acceptance scenario with the real binary.
func TestDoneWhen(t *testing.T) {
	dir := t.TempDir()

	out := mustRun(t, dir, "gen", "config", "demo", "https://10.5.0.2:6443")
	for _, f := range []string{"controlplane.yaml", "worker.yaml", "plinthconfig"} {
		if !strings.Contains(out, f) {
			t.Errorf("gen config output does not mention %s:\n%s", f, out)
		}
		st, err := os.Stat(filepath.Join(dir, f))
		if err != nil {
			t.Fatalf("gen config did not write %s: %v", f, err)
		}
		if st.Mode().Perm() != 0o600 {
			t.Errorf("%s has mode %v, want 0600 (it holds secrets)", f, st.Mode().Perm())
		}
	}

	for _, f := range []string{"controlplane.yaml", "worker.yaml"} {
		for _, mode := range []string{"docker", "metal", "cloud"} {
			mustRun(t, dir, "validate", "--config", f, "--mode", mode)
		}
	}

	// A misspelled field fails with its line number and a hint.
	data, err := os.ReadFile(filepath.Join(dir, "worker.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(string(data), "\n")
	line := -1
	for i, l := range lines {
		if strings.HasPrefix(l, "  kubelet:") {
			lines[i] = "  kubelt:"
			line = i + 1
			break
		}
	}
	if line < 0 {
		t.Fatal("worker.yaml has no kubelet section")
	}
	bad := filepath.Join(dir, "bad.yaml")
	if err := os.WriteFile(bad, []byte(strings.Join(lines, "\n")), 0o600); err != nil {
		t.Fatal(err)
	}
	out, err = plinthctl(t, dir, "validate", "--config", "bad.yaml", "--mode", "docker")
	if err == nil {
		t.Fatalf("validate accepted a misspelled field:\n%s", out)
	}
	want := "bad.yaml:" + strconv.Itoa(line) + ":"
	if !strings.Contains(out, want) || !strings.Contains(out, `did you mean "kubelet"?`) {
		t.Errorf("validate output should locate the field at %s and suggest kubelet:\n%s", want, out)
	}

	// openssl accepts the admin client certificate against the CA in plinthconfig.
	if _, err := exec.LookPath("openssl"); err != nil {
		t.Skip("openssl not installed")
	}
	cc, err := clientconfig.Load(filepath.Join(dir, "plinthconfig"))
	if err != nil {
		t.Fatal(err)
	}
	ctx := cc.Contexts["demo"]
	if ctx == nil || cc.Context != "demo" {
		t.Fatalf("plinthconfig has no current context demo: %+v", cc)
	}
	for name, data := range map[string][]byte{"ca.pem": ctx.CA, "admin.pem": ctx.Crt, "admin.key": ctx.Key} {
		if block, _ := pem.Decode(data); block == nil {
			t.Fatalf("%s in plinthconfig is not PEM", name)
		}
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	verify := exec.Command("openssl", "verify", "-purpose", "sslclient", "-CAfile", "ca.pem", "admin.pem")
	verify.Dir = dir
	if out, err := verify.CombinedOutput(); err != nil || !strings.Contains(string(out), "admin.pem: OK") {
		t.Errorf("openssl verify: %v\n%s", err, out)
	}
	subject := exec.Command("openssl", "x509", "-in", "admin.pem", "-noout", "-subject")
	subject.Dir = dir
	if out, err := subject.CombinedOutput(); err != nil || !strings.Contains(string(out), "O = os:admin") {
		t.Errorf("admin certificate subject should carry O = os:admin: %v\n%s", err, out)
	}
}

// TestSecretsBundleIsReused checks that configs generated twice from one bundle share
// their CAs, and that configs generated without one do not.
func TestSecretsBundleIsReused(t *testing.T) {
	dir := t.TempDir()
	mustRun(t, dir, "gen", "secrets", "-o", "secrets.yaml")
	for _, out := range []string{"a", "b", "c"} {
		args := []string{"gen", "config", "demo", "https://10.5.0.2:6443", "--output-dir", out}
		if out != "c" {
			args = append(args, "--with-secrets", "secrets.yaml")
		}
		mustRun(t, dir, args...)
	}
	load := func(sub string) *config.MachineConfig {
		d, err := config.LoadFile(filepath.Join(dir, sub, "controlplane.yaml"))
		if err != nil {
			t.Fatal(err)
		}
		return d.Config
	}
	a, b, c := load("a"), load("b"), load("c")
	cas := func(m *config.MachineConfig) [][]byte {
		return [][]byte{m.Machine.CA.Crt, m.Cluster.CA.Crt, m.Cluster.AggregatorCA.Crt, m.Cluster.Etcd.CA.Crt}
	}
	for i := range cas(a) {
		if !bytes.Equal(cas(a)[i], cas(b)[i]) {
			t.Errorf("CA %d differs between two configs generated from one bundle", i)
		}
		if bytes.Equal(cas(a)[i], cas(c)[i]) {
			t.Errorf("CA %d is the same in a config generated without the bundle", i)
		}
	}
	if a.Machine.Token != b.Machine.Token || a.Cluster.Token != b.Cluster.Token || a.Cluster.ID != b.Cluster.ID {
		t.Error("tokens or cluster id differ between two configs generated from one bundle")
	}
}
