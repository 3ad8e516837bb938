package kmod

import (
	"bytes"
	"encoding/binary"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

const fakeDep = `kernel/drivers/virtio/virtio_ring.ko:
kernel/drivers/virtio/virtio.ko: kernel/drivers/virtio/virtio_ring.ko
kernel/drivers/virtio/virtio_pci_modern_dev.ko:
kernel/drivers/virtio/virtio_pci.ko: kernel/drivers/virtio/virtio_pci_modern_dev.ko kernel/drivers/virtio/virtio.ko kernel/drivers/virtio/virtio_ring.ko
kernel/drivers/block/virtio_blk.ko.xz: kernel/drivers/virtio/virtio.ko kernel/drivers/virtio/virtio_ring.ko
kernel/drivers/char/hw_random/virtio-rng.ko: kernel/drivers/virtio/virtio.ko kernel/drivers/virtio/virtio_ring.ko
kernel/fs/squashfs/squashfs.ko:
kernel/x/loop_a.ko: kernel/x/loop_b.ko
kernel/x/loop_b.ko: kernel/x/loop_a.ko
kernel/x/broken.ko: kernel/x/gone.ko
`

func names(ms []*Module) []string {
	var n []string
	for _, m := range ms {
		n = append(n, m.Name)
	}
	return n
}

func fakeIndex(t *testing.T) *Index {
	t.Helper()
	ix, err := ParseModulesDep(strings.NewReader(fakeDep))
	if err != nil {
		t.Fatal(err)
	}
	if err := ix.AddBuiltin(strings.NewReader("kernel/fs/ext4/ext4.ko\nkernel/lib/crc16.ko\n")); err != nil {
		t.Fatal(err)
	}
	return ix
}

func TestClosureLoadOrder(t *testing.T) {
	ix := fakeIndex(t)
	load, builtin, err := ix.Closure([]string{"virtio_pci", "virtio-blk", "virtio_rng", "ext4", "squashfs", "virtio"})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"virtio_pci_modern_dev", "virtio_ring", "virtio", "virtio_pci", "virtio_blk", "virtio_rng", "squashfs"}
	if got := names(load); !slices.Equal(got, want) {
		t.Fatalf("load order %v, want %v", got, want)
	}
	if !slices.Equal(builtin, []string{"ext4"}) {
		t.Fatalf("builtin %v", builtin)
	}
	// Every module comes after all of its dependencies.
	pos := map[string]int{}
	for i, m := range load {
		pos[m.Name] = i
	}
	for _, m := range load {
		for _, d := range m.Depends {
			if pos[d] >= pos[m.Name] {
				t.Errorf("%s loads before its dependency %s", m.Name, d)
			}
		}
	}
	if m, _ := ix.Lookup("virtio-blk"); m.Path != "kernel/drivers/block/virtio_blk.ko.xz" {
		t.Fatalf("path %q", m.Path)
	}
}

func TestClosureErrors(t *testing.T) {
	ix := fakeIndex(t)
	for want, mods := range map[string][]string{
		"cycle":                              {"loop_a"},
		"gone (needed by broken)":            {"broken"},
		"nosuch is neither a module of this": {"nosuch"},
	} {
		_, _, err := ix.Closure(mods)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%v: error %v, want it to say %q", mods, err, want)
		}
	}
}

func TestSoftPre(t *testing.T) {
	if got := softPre("pre: crc32c  sha256 post: foo"); !slices.Equal(got, []string{"crc32c", "sha256"}) {
		t.Fatal(got)
	}
	ix := newIndex()
	ix.Add(&Module{Name: "ext4", Path: "ext4.ko", SoftPre: []string{"crc32c", "missing_optional"}})
	ix.Add(&Module{Name: "crc32c", Path: "crc32c.ko"})
	load, _, err := ix.Closure([]string{"ext4"})
	if err != nil {
		t.Fatal(err)
	}
	if got := names(load); !slices.Equal(got, []string{"crc32c", "ext4"}) {
		t.Fatal(got)
	}
}

// elfWithModinfo builds a minimal little-endian ELF64 relocatable file whose only content
// section is .modinfo.
func elfWithModinfo(modinfo string) []byte {
	shstr := "\x00.modinfo\x00.shstrtab\x00"
	const ehsize, shentsize = 64, 64
	dataOff := ehsize
	shstrOff := dataOff + len(modinfo)
	shOff := (shstrOff + len(shstr) + 7) &^ 7
	var b bytes.Buffer
	b.Write([]byte{0x7f, 'E', 'L', 'F', 2, 1, 1, 0})
	b.Write(make([]byte, 8))
	le := binary.LittleEndian
	w := func(v any) { binary.Write(&b, le, v) }
	w(uint16(1))  // ET_REL
	w(uint16(62)) // EM_X86_64
	w(uint32(1))
	w(uint64(0))           // entry
	w(uint64(0))           // phoff
	w(uint64(shOff))       // shoff
	w(uint32(0))           // flags
	w(uint16(ehsize))      // ehsize
	w(uint16(0))           // phentsize
	w(uint16(0))           // phnum
	w(uint16(shentsize))   // shentsize
	w(uint16(3))           // shnum
	w(uint16(2))           // shstrndx
	b.WriteString(modinfo) // .modinfo
	b.WriteString(shstr)   // .shstrtab
	b.Write(make([]byte, shOff-b.Len()))
	section := func(name, typ uint32, off, size int) {
		w(name)
		w(typ)
		w(uint64(0)) // flags
		w(uint64(0)) // addr
		w(uint64(off))
		w(uint64(size))
		w(uint32(0)) // link
		w(uint32(0)) // info
		w(uint64(1)) // align
		w(uint64(0)) // entsize
	}
	section(0, 0, 0, 0)
	section(1, 1, dataOff, len(modinfo)) // PROGBITS .modinfo
	section(10, 3, shstrOff, len(shstr)) // STRTAB .shstrtab
	return b.Bytes()
}

func TestModinfoScan(t *testing.T) {
	root := t.TempDir()
	write := func(rel, modinfo string) {
		p := filepath.Join(root, rel)
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, elfWithModinfo(modinfo), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("kernel/drivers/virtio/virtio_ring.ko", "license=GPL\x00depends=\x00name=virtio_ring\x00")
	write("kernel/drivers/virtio/virtio.ko", "depends=virtio_ring\x00name=virtio\x00")
	write("kernel/drivers/char/hw_random/virtio-rng.ko", "depends=virtio,virtio_ring\x00softdep=pre: virtio\x00name=virtio_rng\x00")
	os.WriteFile(filepath.Join(root, "modules.order"), []byte("kernel/drivers/virtio/virtio_ring.ko\nkernel/drivers/virtio/virtio.ko\nkernel/drivers/char/hw_random/virtio-rng.ko\n"), 0o644)
	os.WriteFile(filepath.Join(root, "modules.builtin"), []byte("kernel/fs/ext4/ext4.ko\n"), 0o644)

	ix, err := ScanTree(root)
	if err != nil {
		t.Fatal(err)
	}
	load, builtin, err := ix.Closure([]string{"virtio_rng", "ext4"})
	if err != nil {
		t.Fatal(err)
	}
	if got := names(load); !slices.Equal(got, []string{"virtio_ring", "virtio", "virtio_rng"}) {
		t.Fatalf("load %v", got)
	}
	if !slices.Equal(builtin, []string{"ext4"}) {
		t.Fatalf("builtin %v", builtin)
	}
	if m, _ := ix.Lookup("virtio_rng"); m.Path != "kernel/drivers/char/hw_random/virtio-rng.ko" {
		t.Fatalf("path %q", m.Path)
	}
}

func TestModuleName(t *testing.T) {
	for in, want := range map[string]string{
		"kernel/a/virtio-rng.ko":    "virtio_rng",
		"kernel/a/virtio_blk.ko.xz": "virtio_blk",
		"squashfs.ko.zst":           "squashfs",
	} {
		if got := ModuleName(in); got != want {
			t.Errorf("%s: %s", in, got)
		}
	}
}
