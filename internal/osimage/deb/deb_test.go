package deb

import (
	"archive/tar"
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/ulikunitz/xz"
)

// fakeDeb builds a .deb-shaped ar archive whose data.tar.xz holds files.
func fakeDeb(t *testing.T, files map[string]string) []byte {
	t.Helper()
	var tarBuf bytes.Buffer
	tw := tar.NewWriter(&tarBuf)
	tw.WriteHeader(&tar.Header{Name: "./", Typeflag: tar.TypeDir, Mode: 0o755})
	names := make([]string, 0, len(files))
	for n := range files {
		names = append(names, n)
	}
	slices.Sort(names)
	for _, n := range names {
		if err := tw.WriteHeader(&tar.Header{Name: "./" + n, Typeflag: tar.TypeReg, Mode: 0o644, Size: int64(len(files[n]))}); err != nil {
			t.Fatal(err)
		}
		tw.Write([]byte(files[n]))
	}
	tw.Close()
	var xzBuf bytes.Buffer
	xw, err := xz.NewWriter(&xzBuf)
	if err != nil {
		t.Fatal(err)
	}
	xw.Write(tarBuf.Bytes())
	xw.Close()

	var ar bytes.Buffer
	ar.WriteString(arMagic)
	member := func(name string, data []byte) {
		fmt.Fprintf(&ar, "%-16s%-12d%-6d%-6d%-8s%-10d`\n", name, 0, 0, 0, "100644", len(data))
		ar.Write(data)
		if len(data)%2 == 1 {
			ar.WriteByte('\n')
		}
	}
	member("debian-binary", []byte("2.0\n"))
	member("control.tar.xz", []byte("odd")) // odd size: exercises the padding byte
	member("data.tar.xz", xzBuf.Bytes())
	return ar.Bytes()
}

func TestExtract(t *testing.T) {
	dir := t.TempDir()
	debPath := filepath.Join(dir, "k.deb")
	files := map[string]string{
		"boot/vmlinuz-1.0-amd64":                   "kernel",
		"boot/System.map-1.0-amd64":                "map",
		"lib/modules/1.0-amd64/kernel/a/virtio.ko": "ko",
		"usr/share/doc/x/changelog":                "doc",
	}
	if err := os.WriteFile(debPath, fakeDeb(t, files), 0o644); err != nil {
		t.Fatal(err)
	}
	dest := filepath.Join(dir, "out")
	kept, err := Extract(context.Background(), debPath, dest, func(n string) bool {
		return strings.HasPrefix(n, "boot/vmlinuz-") || strings.HasPrefix(n, "lib/modules/")
	})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"boot/vmlinuz-1.0-amd64", "lib/modules/1.0-amd64/kernel/a/virtio.ko"}
	if !slices.Equal(kept, want) {
		t.Fatalf("kept %v, want %v", kept, want)
	}
	for _, n := range want {
		b, err := os.ReadFile(filepath.Join(dest, n))
		if err != nil || string(b) != files[n] {
			t.Fatalf("%s: %q %v", n, b, err)
		}
	}
	if _, err := os.Stat(filepath.Join(dest, "boot/System.map-1.0-amd64")); !os.IsNotExist(err) {
		t.Fatalf("System.map extracted: %v", err)
	}
}

func TestNotAr(t *testing.T) {
	if _, err := NewArReader(strings.NewReader("PK\x03\x04 zip")); err == nil {
		t.Fatal("no error for a non-ar file")
	}
}
