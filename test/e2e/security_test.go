//go:build e2e

package e2e

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"

	"github.com/plinthos/plinth/pkg/api/machine"
	"github.com/plinthos/plinth/pkg/api/security"
	"github.com/plinthos/plinth/pkg/pki"
)

// secretsOf returns strings that must never show outside the node's protected files:
// the PEM marker of private keys, the base64 of every key in the cluster's configuration,
// and its tokens.
func (e *env) secretsOf() []string {
	e.t.Helper()
	data, err := os.ReadFile(filepath.Join(e.home, ".plinth", "clusters", e.name, "controlplane.yaml"))
	if err != nil {
		e.t.Fatal(err)
	}
	var doc map[string]any
	if err := yaml.Unmarshal(data, &doc); err != nil {
		e.t.Fatal(err)
	}
	secrets := []string{"PRIVATE KEY", "PLINTH_CONFIG"}
	var walk func(path string, v any)
	walk = func(path string, v any) {
		switch t := v.(type) {
		case map[string]any:
			for k, c := range t {
				walk(path+"."+k, c)
			}
		case string:
			leaf := path[strings.LastIndex(path, ".")+1:]
			if (leaf == "key" || leaf == "token" || leaf == "secret" || leaf == "secretboxEncryptionSecret") && len(t) > 8 {
				secrets = append(secrets, t)
				if raw, err := base64.StdEncoding.DecodeString(t); err == nil {
					secrets = append(secrets, string(raw))
				}
			}
		}
	}
	walk("", doc)
	if len(secrets) < 8 {
		e.t.Fatalf("found only %d secrets in the configuration", len(secrets))
	}
	return secrets
}

// leaks returns the secrets found in data.
func leaks(data []byte, secrets []string) []string {
	var found []string
	for _, s := range secrets {
		if bytes.Contains(data, []byte(s)) {
			found = append(found, s[:min(len(s), 12)]+"...")
		}
	}
	return found
}

// nodeProcesses returns the host PIDs of the container's init and all its descendants.
func nodeProcesses(container string) ([]int, error) {
	out, err := exec.Command("docker", "inspect", "--format", "{{.State.Pid}}", container).Output()
	if err != nil {
		return nil, err
	}
	root, err := strconv.Atoi(strings.TrimSpace(string(out)))
	if err != nil || root == 0 {
		return nil, fmt.Errorf("container %s has no PID: %q", container, out)
	}
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil, err
	}
	parent := map[int]int{}
	for _, en := range entries {
		pid, err := strconv.Atoi(en.Name())
		if err != nil {
			continue
		}
		stat, err := os.ReadFile(filepath.Join("/proc", en.Name(), "stat"))
		if err != nil {
			continue
		}
		// pid (comm) state ppid ...: comm may hold spaces, so split after its ")".
		f := strings.Fields(string(stat[bytes.LastIndexByte(stat, ')')+1:]))
		if len(f) > 1 {
			parent[pid], _ = strconv.Atoi(f[1])
		}
	}
	var pids []int
	for pid := range parent {
		for p := pid; p > 1; p = parent[p] {
			if p == root {
				pids = append(pids, pid)
				break
			}
		}
	}
	return pids, nil
}

// checkLeastPrivilege checks the security model on a running 1+1 cluster whose control
// plane is cp and worker is worker (addresses on the cluster network).
func checkLeastPrivilege(e *env, cp, worker string) {
	t := e.t
	t.Helper()
	secrets := e.secretsOf()
	nodes := []string{e.name + "-controlplane-1", e.name + "-worker-1"}

	// No secret in container metadata, nor in any process's environment or command line.
	for _, n := range nodes {
		out, err := exec.Command("docker", "container", "inspect", n).Output()
		if err != nil {
			t.Fatalf("docker inspect %s: %v", n, err)
		}
		if l := leaks(out, secrets); len(l) > 0 {
			t.Errorf("docker inspect %s shows secrets: %v", n, l)
		}
		pids, err := nodeProcesses(n)
		if err != nil {
			t.Fatal(err)
		}
		if len(pids) < 5 {
			t.Errorf("found only %d processes of %s", len(pids), n)
		}
		scanned := 0
		for _, pid := range pids {
			for _, f := range []string{"environ", "cmdline"} {
				data, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), f))
				if err != nil {
					continue // the process ended meanwhile
				}
				scanned++
				if l := leaks(data, secrets); len(l) > 0 {
					comm, _ := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "comm"))
					t.Errorf("%s: process %d (%s) has secrets in its %s: %v", n, pid, strings.TrimSpace(string(comm)), f, l)
				}
			}
		}
		t.Logf("%s: scanned the environment and command line of %d processes (%d files)", n, len(pids), scanned)
	}

	// A reader sees logs, not /proc, kubelet's keys or the node's configuration.
	reader := filepath.Join(e.home, "reader.plinthconfig")
	e.must(time.Minute, e.plinthctl, "-n", cp, "config", "new", reader, "--roles", "os:reader")
	for _, node := range []string{cp, worker} {
		for _, args := range [][]string{
			{"read", "/proc/1/environ"},
			{"read", "/etc/plinth/config.yaml"},
			{"ls", "/var/lib/kubelet/pki"},
			{"ls", "/var/lib/kubelet/pods"},
			{"ls", "/proc"},
		} {
			out, err := e.run(time.Minute, e.plinthctl, append([]string{"--plinthconfig", reader, "-n", node}, args...)...)
			if err == nil || !strings.Contains(out, "os:admin") {
				t.Errorf("reader on %s: %s: err %v\n%s", node, strings.Join(args, " "), err, out)
			}
			if l := leaks([]byte(out), secrets); len(l) > 0 {
				t.Errorf("reader on %s: %s printed secrets %v", node, strings.Join(args, " "), l)
			}
		}
		if out, err := e.run(time.Minute, e.plinthctl, "--plinthconfig", reader, "-n", node, "ls", "/var/log/pods"); err != nil {
			t.Errorf("reader on %s: ls /var/log/pods: %v\n%s", node, err, out)
		}
	}

	// An operator cannot cut the node off its API.
	operator := filepath.Join(e.home, "operator.plinthconfig")
	e.must(time.Minute, e.plinthctl, "-n", cp, "config", "new", operator, "--roles", "os:operator")
	for _, args := range [][]string{{"service", "apid", "stop"}, {"service", "apid", "restart"}, {"service", "trustd", "stop"}} {
		out, err := e.run(time.Minute, e.plinthctl, append([]string{"--plinthconfig", operator, "-n", cp}, args...)...)
		if err == nil || !strings.Contains(out, "cannot be") {
			t.Errorf("operator: %s: err %v\n%s", strings.Join(args, " "), err, out)
		}
	}
	e.must(time.Minute, e.plinthctl, "-n", cp, "version")

	// A name that is not a member of the cluster is refused without a connection attempt.
	if out, err := e.run(time.Minute, e.plinthctl, "--plinthconfig", reader, "-n", "192.0.2.7", "version"); err == nil || !strings.Contains(out, "not a node of this cluster") {
		t.Errorf("forward to a foreign address: err %v\n%s", err, out)
	}

	// A join token buys a server certificate for the caller's own address, which the
	// node API does not accept from a client.
	checkJoinTokenHolder(e, cp)
}

// checkJoinTokenHolder asks trustd for a certificate with the worker's join token, from
// the host (its address on the cluster network is the gateway), and uses it as a client.
func checkJoinTokenHolder(e *env, cp string) {
	t := e.t
	data, err := os.ReadFile(filepath.Join(e.home, ".plinth", "clusters", e.name, "worker.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var cfg struct {
		Machine struct {
			Token string `yaml:"token"`
			CA    struct {
				Crt string `yaml:"crt"`
			} `yaml:"ca"`
		} `yaml:"machine"`
	}
	if err := yaml.Unmarshal(data, &cfg); err != nil {
		t.Fatal(err)
	}
	caPEM, err := base64.StdEncoding.DecodeString(cfg.Machine.CA.Crt)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(caPEM)
	gateway := strings.TrimSuffix(cp, ".2") + ".1"
	if strings.Count(cp, ".") == 3 {
		gateway = cp[:strings.LastIndex(cp, ".")] + ".1"
	}
	key, keyPEM, err := pki.NewKey()
	if err != nil {
		t.Fatal(err)
	}
	csr, err := pki.NewCSR(key, "", nil, nil, []net.IP{net.ParseIP(gateway)})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := grpc.NewClient(net.JoinHostPort(cp, "50001"), grpc.WithTransportCredentials(credentials.NewTLS(&tls.Config{MinVersion: tls.VersionTLS13, RootCAs: pool})))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	resp, err := security.NewSecurityServiceClient(conn).Certificate(ctx, &security.CertificateRequest{Token: cfg.Machine.Token, Csr: csr})
	if err != nil {
		t.Fatalf("trustd refused the join token holder a certificate for its own address: %v", err)
	}
	cert, err := pki.ParseCertPEM(resp.Crt)
	if err != nil {
		t.Fatal(err)
	}
	if len(cert.Subject.Organization) != 0 || len(cert.ExtKeyUsage) != 1 || cert.ExtKeyUsage[0] != x509.ExtKeyUsageServerAuth {
		t.Errorf("trustd issued organization %v, usages %v; want none and server auth only", cert.Subject.Organization, cert.ExtKeyUsage)
	}
	pair, err := tls.X509KeyPair(resp.Crt, keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	api, err := grpc.NewClient(net.JoinHostPort(cp, "50000"), grpc.WithTransportCredentials(credentials.NewTLS(&tls.Config{
		MinVersion: tls.VersionTLS13, RootCAs: pool, Certificates: []tls.Certificate{pair}})))
	if err != nil {
		t.Fatal(err)
	}
	defer api.Close()
	if _, err := machine.NewMachineServiceClient(api).Version(ctx, &machine.VersionRequest{}); err == nil {
		t.Error("the node API accepted the join token holder's certificate as a client")
	} else {
		t.Logf("the node API refused the join token holder's certificate: %v", err)
	}
}
