//go:build qemu

package qemu_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/plinthos/plinth/internal/vmnet"
)

// freeClusterNetwork picks a /24 of 10.213.0.0/16 that no route of the host overlaps
// (another cluster, Docker's networks), starting at one that depends on the process, so
// that runs beside each other pick different ones.
func freeClusterNetwork(t *testing.T) netip.Prefix {
	t.Helper()
	var h vmnet.Host
	start := os.Getpid() % 200
	for i := 0; i < 50; i++ {
		p := netip.MustParsePrefix(fmt.Sprintf("10.213.%d.0/24", (start+i)%250+1))
		err := h.CheckFree(t.Context(), p)
		if err == nil {
			return p
		}
		if !strings.Contains(err.Error(), "overlaps") {
			t.Fatal(err)
		}
	}
	t.Fatal("no free /24 in 10.213.0.0/16")
	return netip.Prefix{}
}

// clusterRecord is the part of the QEMU provisioner's record the test reads.
type clusterRecord struct {
	Namespace string `json:"namespace"`
	HostLink  string `json:"hostLink"`
	Nodes     []struct {
		Name string `json:"name"`
		PID  int    `json:"pid"`
	} `json:"nodes"`
}

// TestQEMUCluster creates a local cluster of two VMs (a control plane and a worker) with
// plinthctl cluster create --provisioner qemu, talks to both nodes through the context it
// made, shows it, reads its consoles, checks that its network leads nowhere, destroys it
// and finds nothing of it left: no emulator, no namespace or link, no file, no context.
func TestQEMUCluster(t *testing.T) {
	e := setup(t)
	if os.Geteuid() != 0 {
		t.Skip("the QEMU provisioner needs root (a network namespace, a bridge and taps)")
	}
	name := fmt.Sprintf("qe2e-%d", os.Getpid()%100000)
	cidr := freeClusterNetwork(t)
	cp, worker := cidr.Addr().Next().Next(), cidr.Addr().Next().Next().Next()
	qemuFlags := []string{"--provisioner", "qemu", "--name", name}
	destroyed := false
	t.Cleanup(func() {
		if t.Failed() {
			out, _ := e.run(time.Minute, append([]string{"cluster", "logs", "--lines", "80"}, qemuFlags...)...)
			t.Logf("consoles:\n%s", out)
		}
		if !destroyed {
			out, err := e.run(2*time.Minute, append([]string{"cluster", "destroy"}, qemuFlags...)...)
			t.Logf("destroy at the end: %v\n%s", err, out)
		}
	})

	start := time.Now()
	out := e.must(8*time.Minute, append([]string{"cluster", "create", "--os-image", e.image, "--cidr", cidr.String(), "--workers", "1", "--wait-timeout", "6m"}, qemuFlags...)...)
	t.Logf("cluster create in %s:\n%s", time.Since(start).Round(time.Second), out)
	for _, want := range []string{
		"no route off the machine", "starting " + name + "-controlplane-1", "starting " + name + "-worker-1",
		fmt.Sprintf("waiting for the node API of %s-worker-1 on %s:50000", name, worker),
		"is up: every node's API answers", "The nodes' OS image has no Kubernetes",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("cluster create's output lacks %q", want)
		}
	}

	// The context made current reaches both nodes, through the control plane.
	version := e.must(time.Minute, "version")
	for _, want := range []string{"Hostname:  " + name + "-controlplane-1", "Hostname:  " + name + "-worker-1", "Node:      " + worker.String(), "Platform:  metal"} {
		if !strings.Contains(version, want) {
			t.Errorf("version lacks %q:\n%s", want, version)
		}
	}
	// So does the cluster's own plinthconfig, in its state directory.
	stateDir := filepath.Join(e.dir, ".plinth", "clusters", name)
	own := e.must(time.Minute, "--plinthconfig", filepath.Join(stateDir, "plinthconfig"), "-n", worker.String(), "version")
	if !strings.Contains(own, "Hostname:  "+name+"-worker-1") {
		t.Errorf("version through the cluster's plinthconfig:\n%s", own)
	}
	// The nodes have no route off their network.
	for _, node := range []netip.Addr{cp, worker} {
		routes := e.must(time.Minute, "-n", node.String(), "get", "routes")
		if strings.Contains(routes, "0.0.0.0/0") || strings.Contains(routes, "default") || !strings.Contains(routes, cidr.String()) {
			t.Errorf("routes of %s:\n%s", node, routes)
		}
	}

	show := e.must(time.Minute, append([]string{"cluster", "show"}, qemuFlags...)...)
	for _, want := range []string{
		fmt.Sprintf("%s-controlplane-1  controlplane  %s  running  %s:50000", name, cp, cp),
		fmt.Sprintf("%s-worker-1        worker        %s  running  %s:50000", name, worker, worker),
		"network " + vmnet.NamespaceName(name) + " (" + cidr.String() + ")",
	} {
		if !strings.Contains(show, want) {
			t.Errorf("cluster show lacks %q:\n%s", want, show)
		}
	}
	if list := e.must(time.Minute, "cluster", "list", "--provisioner", "qemu"); !strings.Contains(list, name+"  "+cidr.String()+"  2      2") {
		t.Errorf("cluster list:\n%s", list)
	}
	logs := e.must(time.Minute, append([]string{"cluster", "logs", "--lines", "400"}, qemuFlags...)...)
	for _, want := range []string{"last 400 log lines of " + name + "-controlplane-1:", "last 400 log lines of " + name + "-worker-1:", "plinth-init", "service=apid"} {
		if !strings.Contains(logs, want) {
			t.Errorf("cluster logs lack %q:\n%s", want, firstLines(logs, 40))
		}
	}
	if strings.Contains(logs, "\x1b") || strings.Contains(logs, "\r") {
		t.Error("cluster logs hold terminal control characters")
	}

	// The host's end of the network forwards nothing; the namespace routes nothing.
	var rec clusterRecord
	data, err := os.ReadFile(filepath.Join(stateDir, "qemu", "cluster.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(data, &rec); err != nil {
		t.Fatal(err)
	}
	if fwd, err := os.ReadFile("/proc/sys/net/ipv4/conf/" + rec.HostLink + "/forwarding"); err != nil || strings.TrimSpace(string(fwd)) != "0" {
		t.Errorf("forwarding on %s: %q %v", rec.HostLink, fwd, err)
	}
	if len(rec.Nodes) != 2 || rec.Nodes[0].PID == 0 || rec.Nodes[1].PID == 0 {
		t.Fatalf("record: %+v", rec)
	}

	out = e.must(2*time.Minute, append([]string{"cluster", "destroy"}, qemuFlags...)...)
	destroyed = true
	t.Logf("cluster destroy:\n%s", out)
	for _, n := range rec.Nodes {
		// The emulator's command line names its disk in the cluster's directory.
		if cmdline, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", n.PID)); err == nil && strings.Contains(string(cmdline), stateDir) {
			t.Errorf("the emulator of %s (pid %d) runs on", n.Name, n.PID)
		}
	}
	for _, p := range []string{"/run/netns/" + rec.Namespace, "/sys/class/net/" + rec.HostLink, stateDir} {
		if _, err := os.Stat(p); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("%s is left after destroy: %v", p, err)
		}
	}
	if cfg, _ := os.ReadFile(filepath.Join(e.dir, ".plinth", "config")); strings.Contains(string(cfg), name) {
		t.Errorf("the client config keeps the cluster:\n%s", cfg)
	}
	if list := e.must(time.Minute, "cluster", "list", "--provisioner", "qemu"); strings.Contains(list, name) {
		t.Errorf("cluster list after destroy:\n%s", list)
	}
}
