//go:build qemu

package qemu_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/plinthos/plinth/internal/qemu"
)

// TestKubernetesControlPlane boots the Kubernetes profile's disk (OS_K8S_IMAGE, make
// image-os-k8s) as one control plane, bootstraps it, and waits until its Node is Ready and
// CoreDNS runs: make e2e-qemu-k8s, part of make check; under TCG it takes a few minutes.
func TestKubernetesControlPlane(t *testing.T) {
	k := bootKubernetes(t)
	t.Logf("node API %s, Node Ready %s, CoreDNS running %s after power-on", k.api, k.ready, k.dns)
}

// kubeNode is a booted Kubernetes VM and when it reached each step after power-on.
type kubeNode struct {
	e               *env
	pc, endpoint    string
	api, ready, dns time.Duration
}

func (k kubeNode) ctl(args ...string) []string {
	return append([]string{"--plinthconfig", k.pc, "-e", k.endpoint, "-n", qemu.GuestAddress}, args...)
}

// bootKubernetes boots OS_K8S_IMAGE as one control plane (2 vCPUs, 3 GiB; KVM when a canary
// boot works), bootstraps it and waits for its Node Ready and CoreDNS running. It skips when
// OS_K8S_IMAGE or KUBECTL is not set.
func bootKubernetes(t testing.TB) kubeNode {
	image := os.Getenv("OS_K8S_IMAGE")
	kubectl := os.Getenv("KUBECTL")
	if image == "" || kubectl == "" {
		t.Skip("OS_K8S_IMAGE and KUBECTL are not set: run make e2e-qemu-k8s")
	}
	e := setup(t)
	e.image = image
	kvm, why := qemu.KVMUsable(context.Background(), filepath.Join(image, "vmlinuz"))
	t.Logf("KVM: %v (%s)", kvm, why)
	// One node: CoreDNS must be allowed on the control plane.
	cfgDir, config := e.clusterConfig("k8s", fmt.Sprintf(`{"machine":{"network":{"hostname":"cp-1","interfaces":[{"name":"eth0","addresses":["%s/%d"]}]}},"cluster":{"allowSchedulingOnControlPlanes":true}}`, qemu.GuestAddress, qemu.GuestPrefix))
	k := kubeNode{e: e, pc: filepath.Join(cfgDir, "plinthconfig")}
	apiPort := freePort(t)
	start := time.Now()
	vm, endpoint, _ := e.startVM("k8s", qemu.Options{OverlaySize: 10 << 30, MemoryMB: 3072, CPUs: 2, AllowReboot: true, KVM: kvm,
		Forwards:      []qemu.Forward{{HostPort: apiPort, GuestPort: 6443}},
		FirmwareFiles: map[string]string{"opt/plinth/config": config}})
	k.endpoint = endpoint
	ctl := k.ctl
	deadline := time.Now().Add(5 * time.Minute)
	for {
		if _, err := e.run(5*time.Second, ctl("version")...); err == nil {
			break
		}
		select {
		case <-vm.Done():
			t.Fatalf("the VM stopped: %v", vm.Wait(0))
		default:
		}
		if time.Now().After(deadline) {
			t.Fatal("the node API did not answer within 5 minutes")
		}
		time.Sleep(time.Second)
	}
	k.api = time.Since(start).Round(time.Second)
	t.Logf("node API %s after power-on", k.api)
	e.must(2*time.Minute, ctl("bootstrap")...)
	kubeconfig := filepath.Join(e.dir, "kubeconfig")
	deadline = time.Now().Add(25 * time.Minute)
	for {
		if _, err := e.run(time.Minute, ctl("kubeconfig", kubeconfig, "--force", "--server", "https://127.0.0.1:"+strconv.Itoa(apiPort))...); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no kubeconfig: %s", e.must(time.Minute, ctl("services")...))
		}
		time.Sleep(10 * time.Second)
	}
	kc := func(args ...string) (string, error) {
		out, err := exec.Command(kubectl, append([]string{"--kubeconfig", kubeconfig, "--request-timeout", "20s"}, args...)...).CombinedOutput()
		return string(out), err
	}
	var last string
	for ready := false; !ready; {
		out, err := kc("get", "nodes", "--no-headers")
		last = out
		ready = err == nil && strings.Contains(out, " Ready ")
		if !ready {
			if time.Now().After(deadline) {
				svcs, _ := e.run(time.Minute, ctl("services")...)
				t.Fatalf("the node is not Ready within the time: %v\n%s\n%s", err, out, svcs)
			}
			time.Sleep(10 * time.Second)
		}
	}
	k.ready = time.Since(start).Round(time.Second)
	t.Logf("node Ready %s after power-on: %s", k.ready, strings.TrimSpace(last))
	for {
		out, err := kc("-n", "kube-system", "get", "pods", "-l", "k8s-app=kube-dns", "--no-headers")
		if err == nil && strings.Contains(out, "Running") {
			k.dns = time.Since(start).Round(time.Second)
			t.Logf("CoreDNS running %s after power-on", k.dns)
			return k
		}
		if time.Now().After(deadline) {
			all, _ := kc("get", "pods", "-A", "-o", "wide")
			t.Fatalf("CoreDNS is not running within the time: %v\n%s\n%s", err, out, all)
		}
		time.Sleep(10 * time.Second)
	}
}
