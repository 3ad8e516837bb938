//go:build qemu

package qemu_test

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/plinthos/plinth/internal/qemu"
)

// BenchmarkBoot boots the OS image (configuration through fw_cfg, TCG, 1 vCPU) and reports
// the time from power-on to the node API answering, and the image's sizes and executable
// count from its manifest. It prints figures and asserts nothing (make bench).
func BenchmarkBoot(b *testing.B) {
	e := setup(b)
	cfgDir, config := e.clusterConfig("vm", fmt.Sprintf(`{"machine":{"network":{"interfaces":[{"name":"eth0","addresses":["%s/%d"]}]}}}`, qemu.GuestAddress, qemu.GuestPrefix))
	pc := filepath.Join(cfgDir, "plinthconfig")
	var total time.Duration
	for i := 0; i < b.N; i++ {
		start := time.Now()
		vm, endpoint, _ := e.startVM(fmt.Sprintf("bench-%d", i), qemu.Options{OverlaySize: 4 << 30,
			FirmwareFiles: map[string]string{"opt/plinth/config": config}})
		for {
			// A short try: QEMU accepts the forwarded connection before the guest listens.
			if _, err := e.run(3*time.Second, "--plinthconfig", pc, "-e", endpoint, "-n", qemu.GuestAddress, "version"); err == nil {
				break
			}
			if time.Since(start) > 5*time.Minute {
				b.Fatal("the node API did not answer within 5 minutes")
			}
			time.Sleep(250 * time.Millisecond)
		}
		total += time.Since(start)
		vm.Kill()
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
