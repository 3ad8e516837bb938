//go:build integration

package osimage

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/plinthos/plinth/internal/osimage/diskimage"
)

// TestRealKernelReproducible builds the OS image twice from the kernel pinned in
// boot/kernel.lock (downloaded with apt into _out/cache unless there already) at two output
// paths, and checks that the outputs are byte-identical and hold the QEMU modules.
func TestRealKernelReproducible(t *testing.T) {
	for _, tool := range []string{"mksquashfs", "apt-get", "apt-cache"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s is not installed", tool)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	repo, _ := filepath.Abs("../..")
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "init"), []byte("\x7fELF init"), 0o755)
	os.WriteFile(filepath.Join(dir, "machined"), []byte("\x7fELF machined"), 0o755)
	o := Options{
		Lock: filepath.Join(repo, "boot/kernel.lock"), BootloaderLock: filepath.Join(repo, "boot/bootloader.lock"), CacheDir: filepath.Join(repo, "_out/cache"),
		Init: filepath.Join(dir, "init"), Machined: filepath.Join(dir, "machined"), Version: "v0.0.0-repro",
		Profile: ProfileOS, RootSize: 64 * diskimage.MiB,
	}
	var outs []string
	for _, sub := range []string{"a", "b/c"} {
		o.OutDir = filepath.Join(dir, sub)
		m, err := Build(ctx, o)
		if err != nil {
			t.Fatal(err)
		}
		for _, want := range []string{"virtio_pci", "virtio_blk", "virtio_net", "virtio_rng", "squashfs", "qemu_fw_cfg"} {
			if !slices.Contains(m.Modules, want) {
				t.Errorf("initramfs lacks %s: %v", want, m.Modules)
			}
		}
		outs = append(outs, o.OutDir)
	}
	// Not the ISO (and so not the manifest, which has its sha256): the ISO library stamps the
	// volume with the build's time.
	for _, name := range []string{InitramfsFile, RootfsFile, DiskFile, VmlinuzFile} {
		a, _ := os.ReadFile(filepath.Join(outs[0], name))
		b, _ := os.ReadFile(filepath.Join(outs[1], name))
		if len(a) == 0 || !bytes.Equal(a, b) {
			t.Errorf("%s differs between the two builds", name)
		}
	}
}
