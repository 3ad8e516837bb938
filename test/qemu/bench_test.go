//go:build qemu

package qemu_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/plinthos/plinth/internal/qemu"
)

// BenchmarkBoot boots the OS image (configuration through fw_cfg, TCG, 1 vCPU) and reports
// the time from power-on to the node API answering, and the image's sizes and executable
// count from its manifest. It prints figures and asserts nothing (make bench).
func BenchmarkBoot(b *testing.B) {
	e := setup(b)
	cfgDir := filepath.Join(e.dir, "cfg")
	e.must(time.Minute, "gen", "config", "vm", "https://"+qemu.GuestAddress+":6443", "--install-disk", "/dev/vda", "--output-dir", cfgDir)
	config := filepath.Join(e.dir, "controlplane.yaml")
	e.must(time.Minute, "machineconfig", "patch", filepath.Join(cfgDir, "controlplane.yaml"), "-o", config, "--patch",
		fmt.Sprintf(`{"machine":{"network":{"interfaces":[{"name":"eth0","addresses":["%s/%d"]}]}}}`, qemu.GuestAddress, qemu.GuestPrefix))
	pc := filepath.Join(cfgDir, "plinthconfig")
	var total time.Duration
	for i := 0; i < b.N; i++ {
		port := freePort(b)
		ctx, cancel := context.WithCancel(context.Background())
		start := time.Now()
		vm, err := qemu.Start(ctx, qemu.Options{
			Kernel: filepath.Join(e.image, "vmlinuz"), Initrd: filepath.Join(e.image, "initramfs.img"),
			Disk: filepath.Join(e.image, "disk.raw"), Overlay: filepath.Join(e.dir, fmt.Sprintf("vm-%d.qcow2", i)), OverlaySize: 4 << 30,
			FirmwareFiles: map[string]string{"opt/plinth/config": config},
			Forwards:      []qemu.Forward{{HostPort: port, GuestPort: 50000}},
		})
		if err != nil {
			cancel()
			b.Fatal(err)
		}
		endpoint := "127.0.0.1:" + strconv.Itoa(port)
		for {
			// A short try: QEMU accepts the forwarded connection before the guest listens.
			if _, err := e.run(3*time.Second, "--plinthconfig", pc, "-e", endpoint, "-n", qemu.GuestAddress, "version"); err == nil {
				break
			}
			if time.Since(start) > 5*time.Minute {
				cancel()
				b.Fatal("the node API did not answer within 5 minutes")
			}
			time.Sleep(250 * time.Millisecond)
		}
		total += time.Since(start)
		vm.Kill()
		cancel()
	}
	b.ReportMetric(total.Seconds()/float64(b.N), "s-to-api")
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
