package fileapi_test

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/plinthos/plinth/internal/fileapi"
)

func TestResolve(t *testing.T) {
	fsys, _ := fixture(t)
	root := fsys.Root
	host := func(p string) string { return filepath.Join(root, filepath.FromSlash(p)) }
	for _, tc := range []struct {
		path  string
		admin bool
		want  string // host path relative to the root, when no error
		err   error
	}{
		{path: "/", want: "/"},
		{path: "/etc/hosts", want: "/etc/hosts"},
		{path: "//etc//hosts/", want: "/etc/hosts"},
		{path: "/./etc/./hosts", want: "/etc/hosts"},
		{path: "/../../etc/hosts", want: "/etc/hosts"},
		{path: "/a/b/../../etc/hosts", want: "/etc/hosts"},
		{path: "/nope/..", want: "/"},
		{path: "etc/hosts", err: fileapi.ErrNotAbsolute},
		{path: "", err: fileapi.ErrNotAbsolute},
		{path: "./etc", err: fileapi.ErrNotAbsolute},
		{path: "/etc/passwd-link", want: "/etc/hosts"},
		{path: "/a/up", want: "/etc"},
		{path: "/a/up/hosts", want: "/etc/hosts"},
		// The client path is cleaned before links are followed, as the API promises:
		// "/a/up/../b" is "/a/b", not "/b" as the kernel would make it.
		{path: "/a/up/../b/c.txt", want: "/a/b/c.txt"},
		{path: "/a/abs-escape", want: "/etc/hosts"},
		{path: "/a/rel-out", err: fs.ErrNotExist},
		{path: "/a/abs-outside", err: fs.ErrNotExist},
		{path: "/dangling", err: fs.ErrNotExist},
		{path: "/missing/file", err: fs.ErrNotExist},
		{path: "/etc/hosts/x", err: syscall.ENOTDIR},
		{path: "/loop1", err: fileapi.ErrTooManyLinks},
		{path: "/self/x", err: fileapi.ErrTooManyLinks},
		{path: "/system/public.txt", want: "/system/public.txt"},
		{path: "/system/secrets-public", want: "/system/secrets-public"},
		{path: "/system/secrets", err: fileapi.ErrRestricted},
		{path: "/system/secrets/key", err: fileapi.ErrRestricted},
		{path: "/system/secrets/missing", err: fileapi.ErrRestricted},
		{path: "/system/secrets/../public.txt", want: "/system/public.txt"},
		{path: "/system/state/config.yaml", err: fileapi.ErrRestricted},
		{path: "/link-to-secrets", err: fileapi.ErrRestricted},
		{path: "/link-to-secrets/key", err: fileapi.ErrRestricted},
		{path: "/rel-to-secrets", err: fileapi.ErrRestricted},
		{path: "/var/lib/etcd", err: fileapi.ErrRestricted},
		{path: "/data/etcd/member/db", err: fileapi.ErrRestricted}, // the real name of /var/lib/etcd
		{path: "/data", want: "/data"},
		{path: "/system/secrets/key", admin: true, want: "/system/secrets/key"},
		{path: "/link-to-secrets/key", admin: true, want: "/system/secrets/key"},
		{path: "/var/lib/etcd/member/db", admin: true, want: "/data/etcd/member/db"},
	} {
		got, err := fsys.Resolve(tc.path, tc.admin)
		if tc.err != nil {
			if !errors.Is(err, tc.err) {
				t.Errorf("Resolve(%q, admin=%v) = %q, %v; want error %v", tc.path, tc.admin, got, err, tc.err)
			} else if strings.Contains(err.Error(), root) {
				t.Errorf("Resolve(%q): error %q shows the host root", tc.path, err)
			}
			continue
		}
		if err != nil || got != host(tc.want) {
			t.Errorf("Resolve(%q, admin=%v) = %q, %v; want %q", tc.path, tc.admin, got, err, host(tc.want))
		}
	}
}

func TestResolveRestrictedMessage(t *testing.T) {
	fsys, _ := fixture(t)
	_, err := fsys.Resolve("/system/secrets/key", false)
	if err == nil || !strings.Contains(err.Error(), "/system/secrets/key") || !strings.Contains(err.Error(), "os:admin") {
		t.Fatalf("error %v should name the path and the os:admin role", err)
	}
	var pe *fs.PathError
	if !errors.As(err, &pe) || pe.Path != "/system/secrets/key" {
		t.Fatalf("error %#v is not a PathError on the client path", err)
	}
}

func TestResolveRootConfiguration(t *testing.T) {
	if _, err := (fileapi.FS{}).Resolve("/", false); err == nil {
		t.Fatal("an FS without Root resolved a path")
	}
	// Relative restricted entries and "/" itself.
	fsys, _ := fixture(t)
	fsys.Restricted = []string{"system/secrets", ""}
	if _, err := fsys.Resolve("/system/secrets/key", false); !errors.Is(err, fileapi.ErrRestricted) {
		t.Fatalf("relative restricted entry: err = %v", err)
	}
	fsys.Restricted = []string{"/"}
	if _, err := fsys.Resolve("/etc/hosts", false); !errors.Is(err, fileapi.ErrRestricted) {
		t.Fatalf("restricted /: err = %v", err)
	}
	if _, err := fsys.Resolve("/", false); !errors.Is(err, fileapi.ErrRestricted) {
		t.Fatalf("restricted /, path /: err = %v", err)
	}
	if _, err := fsys.Resolve("/etc/hosts", true); err != nil {
		t.Fatalf("restricted /, admin: err = %v", err)
	}
}

func TestResolveRealRoot(t *testing.T) {
	fsys := fileapi.FS{Root: "/"}
	got, err := fsys.Resolve("/proc/self/../self/stat", false)
	if want := fmt.Sprintf("/proc/%d/stat", os.Getpid()); err != nil || got != want {
		t.Fatalf("Resolve on / = %q, %v", got, err)
	}
}

func FuzzResolve(f *testing.F) {
	fsys, outside := fixture(f)
	root := fsys.Root
	for _, seed := range []string{
		"/", "/etc/hosts", "//etc//hosts/", "/../../etc/hosts", "etc", "", "/a/up/hosts", "/a/rel-out",
		"/a/abs-outside", "/loop1", "/self/x", "/link-to-secrets/key", "/var/lib/etcd/member", "/a/up/../../..",
		"/a/abs-escape/..", "/\x00", "/a/b/c.txt/..", "/system/secrets/../../a/up/../..",
	} {
		f.Add(seed, false)
		f.Add(seed, true)
	}
	restrictedHost := []string{
		filepath.Join(root, "system", "secrets"), filepath.Join(root, "system", "state"), filepath.Join(root, "data", "etcd"),
	}
	f.Fuzz(func(t *testing.T, p string, admin bool) {
		host, err := fsys.Resolve(p, admin)
		if err != nil {
			return
		}
		rel, err := filepath.Rel(root, host)
		if err != nil || rel == ".." || strings.HasPrefix(rel, ".."+string(filepath.Separator)) || filepath.IsAbs(rel) {
			t.Fatalf("Resolve(%q) = %q: outside the root %q", p, host, root)
		}
		if strings.HasPrefix(host, outside) {
			t.Fatalf("Resolve(%q) = %q reaches the directory beside the root", p, host)
		}
		if !admin {
			for _, r := range restrictedHost {
				if host == r || strings.HasPrefix(host, r+string(filepath.Separator)) {
					t.Fatalf("Resolve(%q, non-admin) = %q: inside a restricted tree", p, host)
				}
			}
		}
	})
}
