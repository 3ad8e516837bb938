package stage0

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

func TestReadLoadList(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "plinth.load")
	writeFile(t, path, "# storage\nvirtio.ko\n\n  virtio_ring.ko  \nvirtio_pci.ko\r\nsquashfs.ko")
	got, err := ReadLoadList(path)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"virtio.ko", "virtio_ring.ko", "virtio_pci.ko", "squashfs.ko"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %q, want %q", got, want)
	}

	writeFile(t, path, "virtio.ko\nkernel/drivers/virtio_blk.ko\n")
	if _, err := ReadLoadList(path); err == nil || !strings.Contains(err.Error(), `plinth.load:2: "kernel/drivers/virtio_blk.ko" is not a module file name`) {
		t.Errorf("error = %v", err)
	}

	if _, err := ReadLoadList(filepath.Join(dir, "missing")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing list: error = %v, want ErrNotExist", err)
	}
}

func TestLoadModules(t *testing.T) {
	sys := newFakeSys("/m")
	sys.moduleErr = map[string]error{
		"builtin.ko": unix.EEXIST,
		"bad.ko":     unix.ENOEXEC,
		"gone.ko":    &os.PathError{Op: "open", Path: "/m/gone.ko", Err: unix.ENOENT},
		"sym.ko":     unix.ENOENT,
	}
	var console bytes.Buffer
	log := NewLog(&console)
	log.SetDebug(true)
	failures := LoadModules(sys, log, "/m", []string{"a.ko", "builtin.ko", "bad.ko", "gone.ko", "sym.ko", "b.ko"})

	if got, want := sys.calls, []string{
		"load /a.ko", "load /builtin.ko", "load /bad.ko", "load /gone.ko", "load /sym.ko", "load /b.ko",
	}; !reflect.DeepEqual(got, want) {
		t.Errorf("calls %q, want %q", got, want)
	}
	var names []string
	for _, f := range failures {
		names = append(names, f.String())
	}
	want := []string{
		"bad.ko: exec format error (not a module for this kernel, or compressed)",
		"gone.ko: open /m/gone.ko: no such file or directory (the file is not in the initramfs)",
		"sym.ko: no such file or directory (unknown symbol: a dependency is missing or comes later in plinth.load; see the kernel log)",
	}
	if !reflect.DeepEqual(names, want) {
		t.Errorf("failures:\n%s\nwant:\n%s", strings.Join(names, "\n"), strings.Join(want, "\n"))
	}
	out := console.String()
	for _, s := range []string{
		"plinth-init: loaded module a.ko\n",
		"plinth-init: module builtin.ko is already loaded or built in\n",
		"plinth-init: warning: module bad.ko: exec format error",
	} {
		if !strings.Contains(out, s) {
			t.Errorf("console lacks %q:\n%s", s, out)
		}
	}
}
