package osimage

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"testing"

	"github.com/plinthos/plinth/internal/osimage/diskimage"
	"github.com/plinthos/plinth/internal/osimage/kernellock"
)

var fakeLock = kernellock.Lock{
	Meta:    "linux-image-cloud-amd64",
	Package: "linux-image-6.1.0-1-cloud-amd64",
	Version: "6.1.1-1",
	SHA256:  "4fdd0172a8c3f41a97e92465b2ac1867e1c10d82d7aeed3d26ee7a5d14df1754",
}

var fakeLoader = kernellock.Lock{Package: "systemd-boot-efi", Version: "252-1", SHA256: fakeLock.SHA256}

// fakeInputs writes a lock, an unpacked kernel in the cache (so no apt is needed), an init
// and a machined, and returns Options building from them into out.
func fakeInputs(t *testing.T) Options {
	t.Helper()
	dir := t.TempDir()
	cache := filepath.Join(dir, "cache")
	kdir := filepath.Join(cache, fakeLock.Package+"_"+fakeLock.Version)
	mods := filepath.Join(kdir, "lib/modules", fakeLock.ABI())
	files := map[string]string{
		filepath.Join(kdir, ".sha256"):                                                  fakeLock.SHA256 + "\n",
		filepath.Join(kdir, "boot/vmlinuz-"+fakeLock.ABI()):                             "bzImage",
		filepath.Join(mods, "modules.dep"):                                              "kernel/virtio_ring.ko:\nkernel/virtio.ko: kernel/virtio_ring.ko\nkernel/virtio_blk.ko: kernel/virtio.ko kernel/virtio_ring.ko\nkernel/squashfs.ko:\n",
		filepath.Join(mods, "modules.builtin"):                                          "kernel/fs/ext4/ext4.ko\n",
		filepath.Join(mods, "kernel/virtio_ring.ko"):                                    "ring",
		filepath.Join(mods, "kernel/virtio.ko"):                                         "virtio",
		filepath.Join(mods, "kernel/virtio_blk.ko"):                                     "blk",
		filepath.Join(mods, "kernel/squashfs.ko"):                                       "squashfs",
		filepath.Join(dir, "init"):                                                      "\x7fELF init",
		filepath.Join(cache, fakeLoader.Package+"_"+fakeLoader.Version, ".sha256"):      fakeLoader.SHA256 + "\n",
		filepath.Join(cache, fakeLoader.Package+"_"+fakeLoader.Version, BootloaderPath): "MZ systemd-boot",
		filepath.Join(dir, "machined"):                                                  "\x7fELF machined",
	}
	for p, c := range files {
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, []byte(c), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	lock, _ := fakeLock.Marshal()
	os.WriteFile(filepath.Join(dir, "kernel.lock"), lock, 0o644)
	os.WriteFile(filepath.Join(dir, "bootloader.lock"), []byte("package = "+fakeLoader.Package+"\nversion = "+fakeLoader.Version+"\nsha256 = "+fakeLoader.SHA256+"\n"), 0o644)
	return Options{
		BootloaderLock: filepath.Join(dir, "bootloader.lock"),
		Lock:           filepath.Join(dir, "kernel.lock"), CacheDir: cache, OutDir: filepath.Join(dir, "out"),
		Init: filepath.Join(dir, "init"), Machined: filepath.Join(dir, "machined"), Version: "v0.0.1-test",
		Profile: ProfileOS, Modules: []string{"virtio_blk", "squashfs", "ext4"}, RootSize: 8 * diskimage.MiB,
	}
}

func TestBuildFromCachedKernel(t *testing.T) {
	if _, err := exec.LookPath("mksquashfs"); err != nil {
		t.Skip("mksquashfs (squashfs-tools) is not installed")
	}
	o := fakeInputs(t)
	m, err := Build(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"virtio_ring", "virtio", "virtio_blk", "squashfs"}; !slices.Equal(m.Modules, want) {
		t.Errorf("modules %v, want %v", m.Modules, want)
	}
	if !slices.Equal(m.Builtin, []string{"ext4"}) || !slices.Equal(m.Executables, []string{"usr/bin/machined"}) {
		t.Errorf("builtin %v, executables %v", m.Builtin, m.Executables)
	}
	if m.Kernel.Release != fakeLock.ABI() || len(m.Files) != 6 || len(m.Partitions) != 6 {
		t.Errorf("manifest %+v", m)
	}
	if b, _ := os.ReadFile(filepath.Join(o.OutDir, VmlinuzFile)); string(b) != "bzImage" {
		t.Errorf("vmlinuz %q", b)
	}
	// Same inputs, another output directory: byte-identical outputs.
	first := o.OutDir
	o.OutDir = filepath.Join(t.TempDir(), "again")
	if _, err := Build(context.Background(), o); err != nil {
		t.Fatal(err)
	}
	for _, name := range append(FileNames(), ManifestFile) {
		if name == ISOFile || name == ManifestFile {
			continue // the ISO library stamps the volume with the time of the build
		}
		a, _ := os.ReadFile(filepath.Join(first, name))
		b, _ := os.ReadFile(filepath.Join(o.OutDir, name))
		if len(a) == 0 || !bytes.Equal(a, b) {
			for i := range min(len(a), len(b)) {
				if a[i] != b[i] {
					t.Logf("%s: first difference at byte %d", name, i)
					break
				}
			}
			t.Errorf("%s differs between two builds of the same inputs", name)
		}
	}
	if entries, _ := os.ReadDir(o.OutDir); len(entries) != 7 {
		t.Errorf("output directory holds %d entries, want the 7 outputs (staging left behind?)", len(entries))
	}
}

func TestBuildRefuses(t *testing.T) {
	o := fakeInputs(t)
	o.Profile = ProfileK8s
	if _, err := Build(context.Background(), o); err == nil {
		t.Error("k8s profile accepted")
	}
	o = fakeInputs(t)
	o.Modules = []string{"nosuch"}
	if _, err := Build(context.Background(), o); err == nil {
		t.Error("unknown module accepted")
	}
}
