//go:build qemu

package qemu_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/plinthos/plinth/internal/qemu"
	"github.com/plinthos/plinth/test/benchutil"
)

// BenchmarkBoot boots the OS image (configuration through fw_cfg, 1 vCPU, KVM when a canary
// boot works and TCG otherwise) three times and reports the median time from power-on to the
// node API answering with the spread; then, on the last VM left idle, the memory of the OS's
// own processes (PSS and RSS by component) and of the whole machine; and the image's sizes
// and executable count from its manifest. It prints figures and asserts nothing (make bench).
func BenchmarkBoot(b *testing.B) {
	e := setup(b)
	cfgDir, config := e.clusterConfig("vm", fmt.Sprintf(`{"machine":{"network":{"interfaces":[{"name":"eth0","addresses":["%s/%d"]}]}}}`, qemu.GuestAddress, qemu.GuestPrefix))
	pc := filepath.Join(cfgDir, "plinthconfig")
	kvm, why := qemu.KVMUsable(context.Background(), filepath.Join(e.image, "vmlinuz"))
	b.Logf("KVM: %v (%s)", kvm, why)
	const runs = 3
	var times []time.Duration
	var endpoint string
	for i := range runs {
		start := time.Now()
		vm, ep, _ := e.startVM(fmt.Sprintf("bench-%d", i), qemu.Options{OverlaySize: 4 << 30, KVM: kvm,
			FirmwareFiles: map[string]string{"opt/plinth/config": config}})
		for {
			// A short try: QEMU accepts the forwarded connection before the guest listens.
			if _, err := e.run(3*time.Second, "--plinthconfig", pc, "-e", ep, "-n", qemu.GuestAddress, "version"); err == nil {
				break
			}
			if time.Since(start) > 5*time.Minute {
				b.Fatal("the node API did not answer within 5 minutes")
			}
			time.Sleep(250 * time.Millisecond)
		}
		times = append(times, time.Since(start))
		b.Logf("run %d: power-on to the node API answering %s", i+1, times[i].Round(100*time.Millisecond))
		if i < runs-1 {
			vm.Kill()
		}
		endpoint = ep
	}
	sorted := append([]time.Duration(nil), times...)
	sort.Slice(sorted, func(i, j int) bool { return sorted[i] < sorted[j] })
	b.ReportMetric(benchutil.Median(times).Seconds(), "s-to-api")
	b.Logf("power-on to API: median %s of %d, spread %s..%s", benchutil.Median(times).Round(100*time.Millisecond), runs,
		sorted[0].Round(100*time.Millisecond), sorted[runs-1].Round(100*time.Millisecond))

	time.Sleep(30 * time.Second) // settle to idle
	ctl := []string{"--plinthconfig", pc, "-e", endpoint, "-n", qemu.GuestAddress}
	rss, pss := idleMemory(b, e, ctl)
	b.ReportMetric(pss, "MiB-os-pss")
	b.ReportMetric(rss, "MiB-os-rss")

	data, err := os.ReadFile(filepath.Join(e.image, "manifest.json"))
	if err != nil {
		b.Fatal(err)
	}
	var m struct {
		Files map[string]struct {
			Size int64 `json:"size"`
		} `json:"files"`
		Executables []string `json:"executables"`
	}
	if err := json.Unmarshal(data, &m); err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(float64(m.Files["initramfs.img"].Size)/(1<<20), "MiB-initramfs")
	b.ReportMetric(float64(m.Files["rootfs.squashfs"].Size)/(1<<20), "MiB-squashfs")
	b.ReportMetric(float64(len(m.Executables)), "executables")
}

// BenchmarkKubernetesReady boots the Kubernetes profile's disk (OS_K8S_IMAGE) as one control
// plane, bootstraps it and reports the time from power-on to its Node Ready and to CoreDNS
// running, then the idle memory of the node's processes. One run: it takes minutes under TCG.
func BenchmarkKubernetesReady(b *testing.B) {
	k := bootKubernetes(b)
	b.ReportMetric(k.ready.Seconds(), "s-to-ready")
	b.ReportMetric(k.dns.Seconds(), "s-to-coredns")
	time.Sleep(30 * time.Second)
	rss, pss := idleMemory(b, k.e, k.ctl())
	b.ReportMetric(pss, "MiB-node-pss")
	b.ReportMetric(rss, "MiB-node-rss")
}

// BenchmarkOSUpgrade boots the disk image and upgrades it to the next version
// (UPGRADE_NEXT, make image-os-upgrades) with `upgrade --wait`, and reports the time from
// the command's start to the commit (sending, writing and checking the slot, the reboot, the
// trial's health gate).
func BenchmarkOSUpgrade(b *testing.B) {
	next := os.Getenv("UPGRADE_NEXT")
	if next == "" {
		b.Skip("UPGRADE_NEXT is not set: make bench builds it (make image-os-upgrades)")
	}
	e := setup(b)
	cfgDir, config := e.clusterConfig("vm", fmt.Sprintf(`{"machine":{"network":{"interfaces":[{"name":"eth0","addresses":["%s/%d"]}]}}}`, qemu.GuestAddress, qemu.GuestPrefix))
	_, endpoint, _ := e.startVM("upgrade", qemu.Options{OverlaySize: 4 << 30, AllowReboot: true,
		FirmwareFiles: map[string]string{"opt/plinth/config": config}})
	ctl := []string{"--plinthconfig", filepath.Join(cfgDir, "plinthconfig"), "-e", endpoint, "-n", qemu.GuestAddress}
	deadline := time.Now().Add(5 * time.Minute)
	for {
		if _, err := e.run(3*time.Second, append(ctl, "version")...); err == nil {
			break
		}
		if time.Now().After(deadline) {
			b.Fatal("the node API did not answer within 5 minutes")
		}
		time.Sleep(time.Second)
	}
	start := time.Now()
	out := e.must(15*time.Minute, append(ctl, "upgrade", "--image", next, "--wait", "--timeout", "10m")...)
	took := time.Since(start)
	b.Logf("upgrade of the OS (artifact %s) to commit: %s\n%s", next, took.Round(100*time.Millisecond), out)
	b.ReportMetric(took.Seconds(), "s-to-commit")
}

// idleMemory logs the node's processes summed by component and the machine's memory, and
// returns the sums of RSS and PSS over every process, in MiB.
func idleMemory(b *testing.B, e *env, ctl []string) (rss, pss float64) {
	b.Helper()
	byComponent := benchutil.MemByComponent(e.must(time.Minute, append(ctl, "processes")...))
	var parts []string
	for name, m := range byComponent {
		parts = append(parts, fmt.Sprintf("%s %.1f/%.1f", name, m.RSS, m.PSS))
		rss += m.RSS
		pss += m.PSS
	}
	sort.Strings(parts)
	b.Logf("idle memory by component, RSS/PSS MiB: %s; all processes %.1f MiB RSS, %.1f MiB PSS", strings.Join(parts, ", "), rss, pss)
	b.Logf("the machine's memory:\n%s", e.must(time.Minute, append(ctl, "memory")...))
	return rss, pss
}
