package initramfs

import (
	"bytes"
	"compress/gzip"
	"io"
	"slices"
	"strings"
	"testing"

	"github.com/cavaliergopher/cpio"
)

func spec() Spec {
	return Spec{
		Init: []byte("\x7fELF init"),
		Modules: []Module{
			{Name: "virtio_ring", Data: []byte("ring")},
			{Name: "virtio", Data: []byte("virtio.")},
			{Name: "virtio_blk", Data: []byte("blk")},
		},
	}
}

func build(t *testing.T, s Spec) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := Write(&b, s); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func TestDeterministic(t *testing.T) {
	a, b := build(t, spec()), build(t, spec())
	if !bytes.Equal(a, b) {
		t.Fatal("two builds of the same spec differ")
	}
	// gzip header: no name flag, mtime 0.
	if a[3] != 0 || !bytes.Equal(a[4:8], []byte{0, 0, 0, 0}) {
		t.Fatalf("gzip header carries a name or mtime: % x", a[:10])
	}
}

type member struct {
	name  string
	mode  cpio.FileMode
	data  string
	ino   int64
	mtime int64
}

func read(t *testing.T, img []byte) []member {
	t.Helper()
	zr, err := gzip.NewReader(bytes.NewReader(img))
	if err != nil {
		t.Fatal(err)
	}
	r := cpio.NewReader(zr)
	var ms []member
	for {
		h, err := r.Next()
		if err == io.EOF {
			return ms
		}
		if err != nil {
			t.Fatal(err)
		}
		if h.Uid != 0 || h.Guid != 0 {
			t.Errorf("%s: owner %d:%d", h.Name, h.Uid, h.Guid)
		}
		data, err := io.ReadAll(r)
		if err != nil {
			t.Fatal(err)
		}
		ms = append(ms, member{h.Name, h.Mode, string(data), h.Inode, h.ModTime.Unix()})
	}
}

func TestContents(t *testing.T) {
	ms := read(t, build(t, spec()))
	var names []string
	byName := map[string]member{}
	for _, m := range ms {
		names = append(names, m.name)
		byName[m.name] = m
		if m.mtime != 0 {
			t.Errorf("%s: mtime %d", m.name, m.mtime)
		}
	}
	want := []string{"dev", "dev/console", "dev/null", "init", "lib", "lib/modules",
		"lib/modules/plinth.load", "lib/modules/virtio.ko", "lib/modules/virtio_blk.ko", "lib/modules/virtio_ring.ko",
		"newroot", "proc", "sys"}
	if !slices.Equal(names, want) {
		t.Fatalf("members\n%v\nwant\n%v", names, want)
	}
	if got := byName["lib/modules/plinth.load"].data; got != "virtio_ring.ko\nvirtio.ko\nvirtio_blk.ko\n" {
		t.Fatalf("load list %q", got)
	}
	if m := byName["init"]; m.data != "\x7fELF init" || m.mode != cpio.TypeReg|0o755 {
		t.Fatalf("init: %+v", m)
	}
	if m := byName["lib/modules/virtio.ko"]; m.data != "virtio." || m.mode != cpio.TypeReg|0o644 {
		t.Fatalf("virtio.ko: %+v", m)
	}
	for _, d := range []string{"dev", "newroot", "proc", "sys", "lib/modules"} {
		if !byName[d].mode.IsDir() {
			t.Errorf("%s is not a directory: %v", d, byName[d].mode)
		}
	}
	if m := byName["dev/console"]; m.mode != cpio.TypeChar|0o600 {
		t.Fatalf("dev/console mode %o", m.mode)
	}
	inos := map[int64]bool{}
	for _, m := range ms {
		if inos[m.ino] {
			t.Errorf("inode %d reused by %s", m.ino, m.name)
		}
		inos[m.ino] = true
	}
}

// The console's device numbers sit in the newc rdevmajor/rdevminor fields.
func TestConsoleDeviceNumbers(t *testing.T) {
	zr, err := gzip.NewReader(bytes.NewReader(build(t, spec())))
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := io.ReadAll(zr)
	i := bytes.Index(raw, []byte("dev/console\x00"))
	if i < 110 {
		t.Fatal("no dev/console header")
	}
	h := string(raw[i-110 : i])
	if rdev := h[78:94]; rdev != "0000000500000001" {
		t.Fatalf("rdev fields %q", rdev)
	}
}

func TestRejects(t *testing.T) {
	s := spec()
	s.Modules = append(s.Modules, Module{Name: "virtio", Data: nil})
	if _, err := Entries(s); err == nil || !strings.Contains(err.Error(), "twice") {
		t.Fatalf("duplicate module: %v", err)
	}
	if _, err := Entries(Spec{}); err == nil {
		t.Fatal("empty init accepted")
	}
}
