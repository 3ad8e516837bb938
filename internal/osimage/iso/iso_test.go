package iso

import (
	"bytes"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/diskfs/go-diskfs/backend/file"
	"github.com/diskfs/go-diskfs/filesystem/iso9660"

	"github.com/plinthos/plinth/internal/osimage/esp"
)

func TestWriteReadBack(t *testing.T) {
	dir := t.TempDir()
	squash := filepath.Join(dir, "rootfs.squashfs")
	os.WriteFile(squash, bytes.Repeat([]byte("sq"), 100000), 0o644)
	s := Spec{Loader: []byte("MZ loader"), Kernel: bytes.Repeat([]byte("k"), 3<<20), Initramfs: []byte("initramfs"), Version: "v1",
		Files: map[string]string{"/plinth/rootfs.squashfs": squash}}
	out := filepath.Join(dir, "plinth.iso")
	if err := Write(out, dir, s); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(out)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	fs, err := iso9660.Read(file.New(f, true), 0, 0, 2048)
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.TrimRight(fs.Label(), " \x00"); got != VolumeID {
		t.Errorf("volume id %q", got)
	}
	read := func(p string) []byte {
		r, err := fs.OpenFile(p, os.O_RDONLY)
		if err != nil {
			t.Fatalf("%s: %v", p, err)
		}
		b, err := io.ReadAll(r)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	if got := read("/plinth/rootfs.squashfs"); len(got) != 200000 {
		t.Errorf("squashfs: %d bytes", len(got))
	}
	boot := filepath.Join(dir, "efi.img")
	img := read(BootImage)
	os.WriteFile(boot, img, 0o644)
	entry, err := esp.ReadFile(boot, 0, int64(len(img)), esp.EntriesDir+"/"+esp.EntryName("A"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(entry), "options "+esp.LiveKernelArgs) {
		t.Errorf("boot entry:\n%s", entry)
	}
	if k, err := esp.ReadFile(boot, 0, int64(len(img)), "/plinth/A/vmlinuz"); err != nil || !bytes.Equal(k, s.Kernel) {
		t.Errorf("kernel: %d bytes, %v", len(k), err)
	}
	if _, err := os.Stat(out + ".tmp"); err == nil {
		t.Error("temporary file left behind")
	}
}

func TestRefuse(t *testing.T) {
	dir := t.TempDir()
	if err := Write(filepath.Join(dir, "a.iso"), dir, Spec{Loader: []byte("x"), Kernel: make([]byte, 31<<20), Initramfs: []byte("i")}); err == nil {
		t.Error("a boot image over 32 MiB")
	}
	if err := Write(filepath.Join(dir, "a.iso"), dir, Spec{Loader: []byte("x"), Kernel: []byte("k"), Initramfs: []byte("i"), Files: map[string]string{"/etc/x": "/dev/null"}}); err == nil {
		t.Error("a file outside /PLINTH")
	}
}
