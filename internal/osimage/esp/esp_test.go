package esp

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func spec() Spec {
	return Spec{
		Loader: bytes.Repeat([]byte("MZ-loader"), 1000),
		Entries: []Entry{
			{Slot: "A", Title: "Plinth v1", Version: "v1", Kernel: bytes.Repeat([]byte{1, 2, 3}, 300000), Initramfs: []byte("initramfs-a"), Options: "plinth.slot=A console=ttyS0 panic=10"},
			{Slot: "B", Title: "Plinth v2", Version: "v2", Kernel: []byte("kernel-b"), Initramfs: []byte("initramfs-b"), Options: "plinth.slot=B"},
		},
		Default: "B",
	}
}

func image(t *testing.T, offset, size int64) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "disk.img")
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Truncate(offset + size + 4096); err != nil {
		t.Fatal(err)
	}
	f.Close()
	return p
}

func TestWriteReadBack(t *testing.T) {
	const off, size = 1 << 20, 64 << 20
	img := image(t, off, size)
	s := spec()
	if err := Write(img, off, size, s); err != nil {
		t.Fatal(err)
	}
	for p, want := range map[string][]byte{
		LoaderPath:                        s.Loader,
		"/plinth/A/vmlinuz":               s.Entries[0].Kernel,
		"/plinth/B/initramfs.img":         s.Entries[1].Initramfs,
		ConfigPath:                        []byte("timeout 0\ndefault plinth-b.conf\neditor no\nauto-entries no\nauto-firmware no\n"),
		EntriesDir + "/" + EntryName("A"): []byte("title Plinth v1\nversion v1\nlinux /plinth/A/vmlinuz\ninitrd /plinth/A/initramfs.img\noptions plinth.slot=A console=ttyS0 panic=10\n"),
	} {
		got, err := ReadFile(img, off, size, p)
		if err != nil {
			t.Fatalf("%s: %v", p, err)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("%s: got %d bytes %q..., want %d bytes", p, len(got), got[:min(len(got), 40)], len(want))
		}
	}
	// Nothing written outside the partition.
	data, err := os.ReadFile(img)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(data[:off], make([]byte, off)) || !bytes.Equal(data[off+size:], make([]byte, 4096)) {
		t.Fatal("Write wrote outside its partition")
	}
}

func TestSmallIsFAT16(t *testing.T) {
	const size = 24 << 20
	img := image(t, 0, size)
	s := spec()
	if err := Write(img, 0, size, s); err != nil {
		t.Fatal(err)
	}
	got, err := ReadFile(img, 0, size, "/plinth/A/vmlinuz")
	if err != nil || !bytes.Equal(got, s.Entries[0].Kernel) {
		t.Fatalf("read back: %d bytes, %v", len(got), err)
	}
	data, _ := os.ReadFile(img)
	if string(data[54:62]) != "FAT16   " {
		t.Fatalf("file system type %q, want FAT16", data[54:62])
	}
}

func TestReproducible(t *testing.T) {
	const size = 40 << 20
	a, b := image(t, 0, size), image(t, 0, size)
	for i, p := range []string{a, b} {
		if i > 0 {
			// FAT dates to 2 s: the second write is at another time whatever the load.
			time.Sleep(2100 * time.Millisecond)
		}
		if err := Write(p, 0, size, spec()); err != nil {
			t.Fatal(err)
		}
	}
	da, _ := os.ReadFile(a)
	db, _ := os.ReadFile(b)
	if !bytes.Equal(da, db) {
		t.Fatal("two writes of the same spec differ")
	}
}

func TestValidate(t *testing.T) {
	for name, mut := range map[string]func(*Spec){
		"no loader":    func(s *Spec) { s.Loader = nil },
		"no entry":     func(s *Spec) { s.Entries = nil },
		"bad slot":     func(s *Spec) { s.Entries[0].Slot = "C" },
		"no kernel":    func(s *Spec) { s.Entries[0].Kernel = nil },
		"line break":   func(s *Spec) { s.Entries[0].Options = "a\ninitrd /evil" },
		"missing slot": func(s *Spec) { s.Default = "A"; s.Entries = s.Entries[1:] },
	} {
		s := spec()
		mut(&s)
		err := s.Validate()
		if err == nil {
			t.Errorf("%s: no error", name)
		} else if !strings.Contains(err.Error(), "EFI partition") {
			t.Errorf("%s: %v", name, err)
		}
	}
}
