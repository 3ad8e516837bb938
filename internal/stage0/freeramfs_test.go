package stage0

import (
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
)

func TestRemoveSameDevice(t *testing.T) {
	root := t.TempDir()
	writeFile(t, filepath.Join(root, "init"), "binary")
	writeFile(t, filepath.Join(root, "lib/modules/virtio.ko"), "module")
	writeFile(t, filepath.Join(root, "lib/modules/plinth.load"), "virtio.ko\n")
	writeFile(t, filepath.Join(root, "newroot/usr/bin/machined"), "other filesystem")
	writeFile(t, filepath.Join(root, "outside/keep"), "target of a link")
	for _, d := range []string{"dev", "proc", "sys"} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	// A link into newroot is removed as a link; what it points at is not touched.
	if err := os.Symlink(filepath.Join(root, "newroot/usr"), filepath.Join(root, "usr")); err != nil {
		t.Fatal(err)
	}

	// newroot is a mount point: another device. "outside" stands for a second one.
	devOf := func(path string) (uint64, error) {
		if _, err := os.Lstat(path); err != nil {
			return 0, err
		}
		rel, _ := filepath.Rel(root, path)
		if rel == "newroot" || rel == "outside" {
			return 2, nil
		}
		return 1, nil
	}
	if err := removeSameDevice(root, 1, devOf); err != nil {
		t.Fatal(err)
	}

	var left []string
	err := filepath.Walk(root, func(path string, _ os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, path)
		left = append(left, rel)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(left)
	want := ".,newroot,newroot/usr,newroot/usr/bin,newroot/usr/bin/machined,outside,outside/keep"
	if got := strings.Join(left, ","); got != want {
		t.Errorf("left %s\nwant %s", got, want)
	}
}

func TestFreeInitramfsOnlyAsPID1(t *testing.T) {
	root := t.TempDir()
	writeFile(t, filepath.Join(root, "init"), "binary")
	err := LinuxSystem{}.FreeInitramfs(root, filepath.Join(root, "newroot"))
	if err == nil || err.Error() != "not PID 1" {
		t.Errorf("error = %v, want not PID 1", err)
	}
	if _, err := os.Stat(filepath.Join(root, "init")); err != nil {
		t.Errorf("a file was deleted: %v", err)
	}
}
