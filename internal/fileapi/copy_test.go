package fileapi_test

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/plinthos/plinth/internal/fileapi"
)

// untar extracts an archive into dest, refusing names that would leave it, and returns
// the names in archive order.
func untar(t *testing.T, r io.Reader, dest string) []string {
	t.Helper()
	tr := tar.NewReader(r)
	var names []string
	type dirTime struct {
		path string
		mod  time.Time
	}
	var dirs []dirTime
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("reading the archive: %v", err)
		}
		names = append(names, hdr.Name)
		if !filepath.IsLocal(hdr.Name) {
			t.Fatalf("archive name %q is not local", hdr.Name)
		}
		if hdr.Uname != "" || hdr.Uid != os.Getuid() {
			t.Errorf("%s: owner %q/%d, want numeric %d", hdr.Name, hdr.Uname, hdr.Uid, os.Getuid())
		}
		p := filepath.Join(dest, filepath.FromSlash(hdr.Name))
		switch hdr.Typeflag {
		case tar.TypeDir:
			if err := os.MkdirAll(p, 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.Chmod(p, os.FileMode(hdr.Mode).Perm()); err != nil {
				t.Fatal(err)
			}
			dirs = append(dirs, dirTime{p, hdr.ModTime})
		case tar.TypeReg:
			data, err := io.ReadAll(tr)
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(p, data, os.FileMode(hdr.Mode).Perm()); err != nil {
				t.Fatal(err)
			}
			if err := os.Chtimes(p, time.Time{}, hdr.ModTime); err != nil {
				t.Fatal(err)
			}
		case tar.TypeSymlink:
			if err := os.Symlink(hdr.Linkname, p); err != nil {
				t.Fatal(err)
			}
		default:
			t.Fatalf("%s: unexpected type %c", hdr.Name, hdr.Typeflag)
		}
	}
	for _, d := range slices.Backward(dirs) {
		if err := os.Chtimes(d.path, time.Time{}, d.mod); err != nil {
			t.Fatal(err)
		}
	}
	return names
}

// manifest describes every file under dir (dir itself excluded), links not followed,
// skipping the relative names in skip and anything under them.
func manifest(t *testing.T, dir string, skip ...string) map[string]string {
	t.Helper()
	m := map[string]string{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		if rel == "." {
			return nil
		}
		if slices.Contains(skip, filepath.ToSlash(rel)) {
			if d.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		desc := info.Mode().String()
		switch {
		case info.Mode().IsRegular():
			data, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			desc += fmt.Sprintf(" %q %s", data, info.ModTime().UTC().Format(time.RFC3339Nano))
		case info.IsDir():
			desc += " " + info.ModTime().UTC().Format(time.RFC3339Nano)
		case info.Mode()&fs.ModeSymlink != 0:
			target, err := os.Readlink(p)
			if err != nil {
				return err
			}
			desc += " -> " + target
		}
		m[filepath.ToSlash(rel)] = desc
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// roundTrip copies p and extracts the archive into a new directory it returns.
func roundTrip(t *testing.T, fsys fileapi.FS, p string, admin bool) (string, []string) {
	t.Helper()
	var buf bytes.Buffer
	if err := fsys.Copy(context.Background(), p, admin, &buf); err != nil {
		t.Fatalf("Copy(%q): %v", p, err)
	}
	dest := t.TempDir()
	return dest, untar(t, &buf, dest)
}

// compare fails the test when two manifests differ.
func compare(t *testing.T, what string, got, want map[string]string) {
	t.Helper()
	if !maps.Equal(got, want) {
		t.Errorf("%s differs\n got %q\nwant %q", what, got, want)
	}
}

func TestCopyRoundTrip(t *testing.T) {
	fsys, _ := fixture(t)
	if err := os.Chmod(filepath.Join(fsys.Root, "a", "b", "c.txt"), 0o640); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(fsys.Root, "a", "b", "big"), randomBytes(200_000), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Mkfifo(filepath.Join(fsys.Root, "a", "fifo"), 0o600); err != nil {
		t.Fatal(err)
	}
	dest, names := roundTrip(t, fsys, "/a", false)
	want := []string{"a/", "a/abs-escape", "a/abs-outside", "a/b/", "a/b/big", "a/b/c.txt", "a/rel-out", "a/up"}
	if !slices.Equal(names, want) {
		t.Errorf("names %q\nwant  %q", names, want)
	}
	compare(t, "copy of /a", manifest(t, filepath.Join(dest, "a")), manifest(t, filepath.Join(fsys.Root, "a"), "fifo"))
}

func TestCopyRestricted(t *testing.T) {
	fsys, _ := fixture(t)
	for _, p := range []string{"/system", "/", "/link-to-secrets", "/a/up", "/var/log/kubelet-pki", "/var/log/environ", "/var/lib/kubelet"} {
		var buf bytes.Buffer
		if err := fsys.Copy(context.Background(), p, false, &buf); !errors.Is(err, fileapi.ErrRestricted) || buf.Len() != 0 {
			t.Errorf("Copy(%q) for a reader: %v, %d bytes written", p, err, buf.Len())
		}
	}
	dest, _ := roundTrip(t, fsys, "/system", true)
	compare(t, "admin copy of /system", manifest(t, filepath.Join(dest, "system")), manifest(t, filepath.Join(fsys.Root, "system")))

	// A reader copies an allowed tree; its links are archived as links, whatever they
	// lead to, and not followed.
	dest, names := roundTrip(t, fsys, "/var/log", false)
	want := []string{"log/", "log/containers/", "log/containers/app.log", "log/environ", "log/hosts", "log/kubelet-key",
		"log/kubelet-pki", "log/messages", "log/pods/", "log/pods/ns_app/", "log/pods/ns_app/c/", "log/pods/ns_app/c/0.log"}
	if !slices.Equal(names, want) {
		t.Errorf("reader copy of /var/log: %q\nwant %q", names, want)
	}
	compare(t, "reader copy of /var/log", manifest(t, filepath.Join(dest, "log")), manifest(t, filepath.Join(fsys.Root, "var", "log")))
}

func TestCopyRootAndFiles(t *testing.T) {
	fsys, _ := fixture(t)
	if err := syscall.Mkfifo(filepath.Join(fsys.Root, "fifo"), 0o600); err != nil {
		t.Fatal(err)
	}
	dest, names := roundTrip(t, fsys, "/", true)
	if names[0] != "a/" || slices.Contains(names, "fifo") || !slices.Contains(names, "system/secrets/key") {
		t.Errorf("copy of / as admin: %q", names)
	}
	compare(t, "copy of /", manifest(t, dest), manifest(t, fsys.Root, "fifo"))

	_, names = roundTrip(t, fsys, "/etc/hosts", false)
	if !slices.Equal(names, []string{"hosts"}) {
		t.Errorf("copy of a file: %q", names)
	}
	// A link to a directory is copied under the name the client gave.
	_, names = roundTrip(t, fsys, "/a/up", true)
	if !slices.Equal(names, []string{"up/", "up/hosts", "up/passwd-link"}) {
		t.Errorf("copy through a link: %q", names)
	}
	// A link to a file too.
	_, names = roundTrip(t, fsys, "/var/log/containers/app.log", false)
	if !slices.Equal(names, []string{"app.log"}) {
		t.Errorf("copy of a link to a file: %q", names)
	}
	for p, want := range map[string]error{
		"/fifo":    fileapi.ErrNotRegular,
		"/missing": fs.ErrNotExist,
		"rel":      fileapi.ErrNotAbsolute,
	} {
		if err := fsys.Copy(context.Background(), p, true, io.Discard); !errors.Is(err, want) {
			t.Errorf("Copy(%q) = %v, want %v", p, err, want)
		}
	}
}

// cancelWriter cancels a context on its first write.
type cancelWriter struct {
	cancel context.CancelFunc
	n      int
}

func (w *cancelWriter) Write(p []byte) (int, error) {
	w.n++
	w.cancel()
	return len(p), nil
}

// failWriter fails every write.
type failWriter struct{}

func (failWriter) Write([]byte) (int, error) { return 0, errors.New("disk full") }

func TestCopyCancelAndWriteError(t *testing.T) {
	fsys, _ := fixture(t)
	if err := os.WriteFile(filepath.Join(fsys.Root, "a", "big"), randomBytes(1<<20), 0o600); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	w := &cancelWriter{cancel: cancel}
	if err := fsys.Copy(ctx, "/", true, w); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled copy: %v", err)
	}
	if err := fsys.Copy(ctx, "/", true, io.Discard); !errors.Is(err, context.Canceled) {
		t.Fatalf("copy with a done context: %v", err)
	}
	if err := fsys.Copy(context.Background(), "/a", true, failWriter{}); err == nil || !strings.Contains(err.Error(), "disk full") {
		t.Fatalf("write error: %v", err)
	}
}
