package fileapi_test

import (
	"bytes"
	"context"
	"errors"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"

	"github.com/plinthos/plinth/internal/fileapi"
)

// randomBytes returns n reproducible pseudo-random bytes.
func randomBytes(n int) []byte {
	r := rand.New(rand.NewPCG(1, 2))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

// read runs Read and returns the chunk sizes and the content.
func read(t *testing.T, fsys fileapi.FS, p string, admin bool, chunk int) ([]int, []byte, error) {
	t.Helper()
	var sizes []int
	var content bytes.Buffer
	err := fsys.Read(context.Background(), p, admin, chunk, func(b []byte) error {
		sizes = append(sizes, len(b))
		content.Write(b)
		return nil
	})
	return sizes, content.Bytes(), err
}

func TestReadChunks(t *testing.T) {
	fsys, _ := fixture(t)
	data := randomBytes(3*65536 + 3392)
	if err := os.WriteFile(filepath.Join(fsys.Root, "blob"), data, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, chunk := range []int{65536, 0, -1} {
		sizes, got, err := read(t, fsys, "/blob", true, chunk)
		if err != nil || !bytes.Equal(got, data) {
			t.Fatalf("chunk %d: %v, %d bytes", chunk, err, len(got))
		}
		if want := []int{65536, 65536, 65536, 3392}; !slices.Equal(sizes, want) {
			t.Errorf("chunk %d: sizes %v, want %v", chunk, sizes, want)
		}
	}
	sizes, _, _ := read(t, fsys, "/blob", true, 70000)
	if !slices.Equal(sizes, []int{70000, 70000, 60000}) {
		t.Errorf("chunk 70000: sizes %v", sizes)
	}
	// Exactly one chunk long, and empty.
	if err := os.WriteFile(filepath.Join(fsys.Root, "one"), data[:4096], 0o600); err != nil {
		t.Fatal(err)
	}
	if sizes, _, err := read(t, fsys, "/one", true, 4096); err != nil || !slices.Equal(sizes, []int{4096}) {
		t.Errorf("one chunk: %v %v", sizes, err)
	}
	if sizes, _, err := read(t, fsys, "/emptydir/../system/secrets-public", true, 3); err != nil || !slices.Equal(sizes, []int{3, 3, 3, 1}) {
		t.Errorf("small chunks: %v %v", sizes, err)
	}
	if err := os.WriteFile(filepath.Join(fsys.Root, "empty"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if sizes, _, err := read(t, fsys, "/empty", true, 0); err != nil || len(sizes) != 0 {
		t.Errorf("empty file: %v %v", sizes, err)
	}
}

func TestReadChunkCap(t *testing.T) {
	fsys, _ := fixture(t)
	data := randomBytes(fileapi.MaxChunk + 10)
	if err := os.WriteFile(filepath.Join(fsys.Root, "big"), data, 0o600); err != nil {
		t.Fatal(err)
	}
	sizes, got, err := read(t, fsys, "/big", true, 1<<30)
	if err != nil || !bytes.Equal(got, data) || !slices.Equal(sizes, []int{fileapi.MaxChunk, 10}) {
		t.Fatalf("sizes %v, %v", sizes, err)
	}
}

func TestReadRefusals(t *testing.T) {
	fsys, _ := fixture(t)
	for _, fifo := range []string{"fifo", "var/log/fifo"} {
		if err := syscall.Mkfifo(filepath.Join(fsys.Root, filepath.FromSlash(fifo)), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	for _, tc := range []struct {
		path  string
		admin bool
		err   error
		text  string
	}{
		{path: "/etc", admin: true, err: fileapi.ErrNotRegular, text: "read /etc: not a regular file (directory)"},
		{path: "/", admin: true, err: fileapi.ErrNotRegular, text: "directory"},
		{path: "/a/up", admin: true, err: fileapi.ErrNotRegular, text: "read /a/up: not a regular file (directory)"},
		{path: "/var/log/pods", err: fileapi.ErrNotRegular, text: "read /var/log/pods: not a regular file (directory)"},
		{path: "/fifo", admin: true, err: fileapi.ErrNotRegular, text: "named pipe"},
		{path: "/var/log/fifo", err: fileapi.ErrNotRegular, text: "named pipe"},
		{path: "/system/secrets/key", err: fileapi.ErrRestricted, text: "/system/secrets/key"},
		{path: "/link-to-secrets/key", err: fileapi.ErrRestricted, text: "os:admin"},
		{path: "/a/up", err: fileapi.ErrRestricted, text: "read /a/up: restricted: needs os:admin"},
		{path: "/fifo", err: fileapi.ErrRestricted, text: "os:admin"},
		{path: "/missing", admin: true, err: fs.ErrNotExist},
		{path: "/var/log/missing", err: fs.ErrNotExist},
		{path: "/loop1", admin: true, err: fileapi.ErrTooManyLinks},
		{path: "etc/hosts", err: fileapi.ErrNotAbsolute},
	} {
		_, _, err := read(t, fsys, tc.path, tc.admin, 0)
		if !errors.Is(err, tc.err) || !strings.Contains(err.Error(), tc.text) {
			t.Errorf("Read(%q) = %v, want %v containing %q", tc.path, err, tc.err, tc.text)
		}
	}
	if _, got, err := read(t, fsys, "/link-to-secrets/key", true, 0); err != nil || string(got) != "secret key" {
		t.Errorf("admin read through link: %q, %v", got, err)
	}
	if _, got, err := read(t, fsys, "/a/abs-escape", false, 0); err != nil || string(got) != "127.0.0.1 localhost\n" {
		t.Errorf("read through escaping link: %q, %v", got, err)
	}
}

func TestReadProcFile(t *testing.T) {
	fsys := fileapi.FS{Root: "/", Allowed: []string{"/etc/hostname"}}
	_, got, err := read(t, fsys, "/proc/self/status", true, 0)
	if err != nil || !bytes.Contains(got, []byte("Pid:")) {
		t.Fatalf("reading a zero-size /proc file: %v, %q", err, got)
	}
	if _, got, err := read(t, fsys, "/proc/self/status", false, 0); !errors.Is(err, fileapi.ErrRestricted) || len(got) != 0 {
		t.Fatalf("a reader read /proc/self/status: %v, %q", err, got)
	}
}

func TestReadCancelAndFnError(t *testing.T) {
	fsys, _ := fixture(t)
	if err := os.WriteFile(filepath.Join(fsys.Root, "blob"), randomBytes(10*1024), 0o600); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	calls := 0
	err := fsys.Read(ctx, "/blob", true, 1024, func([]byte) error {
		calls++
		cancel()
		return nil
	})
	if !errors.Is(err, context.Canceled) || calls != 1 {
		t.Fatalf("cancel: %v after %d calls", err, calls)
	}
	if err := fsys.Read(ctx, "/blob", true, 1024, func([]byte) error { t.Error("called"); return nil }); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled before: %v", err)
	}
	stop := errors.New("stop")
	if err := fsys.Read(context.Background(), "/blob", true, 1024, func([]byte) error { return stop }); err != stop {
		t.Fatalf("fn error: %v", err)
	}
}

func BenchmarkRead64MiB(b *testing.B) {
	const size = 64 << 20
	fsys := fileapi.FS{Root: b.TempDir(), Allowed: []string{"/"}}
	if err := os.WriteFile(filepath.Join(fsys.Root, "blob"), randomBytes(size), 0o600); err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	b.SetBytes(size)
	b.ReportAllocs()
	chunks := 0
	for b.Loop() {
		n := 0
		chunks = 0
		err := fsys.Read(ctx, "/blob", false, 64<<10, func(p []byte) error {
			n += len(p)
			chunks++
			return nil
		})
		if err != nil || n != size {
			b.Fatalf("read %d bytes: %v", n, err)
		}
	}
	b.ReportMetric(float64(chunks), "chunks/op")
}
