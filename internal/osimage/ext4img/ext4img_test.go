package ext4img

import (
	"bytes"
	"context"
	"encoding/binary"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

func TestMakeIsReproducible(t *testing.T) {
	if _, err := exec.LookPath("mke2fs"); err != nil {
		t.Skip("mke2fs is not installed (Debian: e2fsprogs)")
	}
	dir := t.TempDir()
	var images [][]byte
	for _, name := range []string{"a.ext4", "b.ext4"} {
		p := filepath.Join(dir, name)
		if err := Make(context.Background(), p, "EPHEMERAL", 32<<20, "0b7f3c3e-1a2b-4c5d-8e9f-0a1b2c3d4e5f"); err != nil {
			t.Fatal(err)
		}
		data, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		images = append(images, data)
	}
	if !bytes.Equal(images[0], images[1]) {
		t.Fatal("two file systems from the same inputs differ")
	}
	// The superblock at 1024: magic 0xEF53 at offset 56, the label at 120.
	sb := images[0][1024:]
	if binary.LittleEndian.Uint16(sb[56:]) != 0xEF53 {
		t.Fatal("no ext4 superblock")
	}
	if label := string(bytes.TrimRight(sb[120:136], "\x00")); label != "EPHEMERAL" {
		t.Errorf("label %q", label)
	}
}

func TestMakeRefuses(t *testing.T) {
	if err := Make(context.Background(), filepath.Join(t.TempDir(), "x"), "STATE", 1000, "0b7f3c3e-1a2b-4c5d-8e9f-0a1b2c3d4e5f"); err == nil {
		t.Error("a size that is not a multiple of 4 KiB")
	}
	if err := Make(context.Background(), filepath.Join(t.TempDir(), "x"), "A-LABEL-TOO-LONG-X", 1<<20, "0b7f3c3e-1a2b-4c5d-8e9f-0a1b2c3d4e5f"); err == nil {
		t.Error("a label longer than 16 bytes")
	}
}
