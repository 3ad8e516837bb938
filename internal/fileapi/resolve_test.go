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

// realRoot returns the host path of the fixture's root with its links followed, as the
// kernel reports the paths of open files.
func realRoot(t testing.TB, fsys fileapi.FS) string {
	t.Helper()
	root, err := filepath.EvalSymlinks(fsys.Root)
	if err != nil {
		t.Fatal(err)
	}
	return root
}

func TestResolve(t *testing.T) {
	fsys, _ := fixture(t)
	root := realRoot(t, fsys)
	host := func(p string) string { return filepath.Join(root, filepath.FromSlash(p)) }
	for _, tc := range []struct {
		path  string
		admin bool
		want  string // host path relative to the root, when no error
		err   error
	}{
		// How paths resolve, for an admin: as if Root were "/".
		{path: "/", admin: true, want: "/"},
		{path: "/etc/hosts", admin: true, want: "/etc/hosts"},
		{path: "//etc//hosts/", admin: true, want: "/etc/hosts"},
		{path: "/./etc/./hosts", admin: true, want: "/etc/hosts"},
		{path: "/../../etc/hosts", admin: true, want: "/etc/hosts"},
		{path: "/a/b/../../etc/hosts", admin: true, want: "/etc/hosts"},
		{path: "/nope/..", admin: true, want: "/"},
		{path: "etc/hosts", admin: true, err: fileapi.ErrNotAbsolute},
		{path: "", admin: true, err: fileapi.ErrNotAbsolute},
		{path: "./etc", err: fileapi.ErrNotAbsolute},
		{path: "/etc/passwd-link", admin: true, want: "/etc/hosts"},
		{path: "/a/up", admin: true, want: "/etc"},
		{path: "/a/up/hosts", admin: true, want: "/etc/hosts"},
		// The client path is cleaned before links are followed, as the API promises:
		// "/a/up/../b" is "/a/b", not "/b" as the kernel would make it.
		{path: "/a/up/../b/c.txt", admin: true, want: "/a/b/c.txt"},
		{path: "/a/abs-escape", admin: true, want: "/etc/hosts"},
		{path: "/a/rel-out", admin: true, err: fs.ErrNotExist},
		{path: "/a/abs-outside", admin: true, err: fs.ErrNotExist},
		{path: "/dangling", admin: true, err: fs.ErrNotExist},
		{path: "/missing/file", admin: true, err: fs.ErrNotExist},
		{path: "/etc/hosts/x", admin: true, err: syscall.ENOTDIR},
		{path: "/loop1", admin: true, err: fileapi.ErrTooManyLinks},
		{path: "/self/x", admin: true, err: fileapi.ErrTooManyLinks},
		{path: "/system/secrets/key", admin: true, want: "/system/secrets/key"},
		{path: "/link-to-secrets/key", admin: true, want: "/system/secrets/key"},
		{path: "/var/lib/etcd/member/db", admin: true, want: "/data/etcd/member/db"},
		{path: "/proc/1/environ", admin: true, want: "/proc/1/environ"},
		{path: "/var/log/environ", admin: true, want: "/proc/1/environ"},

		// Other callers: only the allowed trees, by the client path and by the file.
		{path: "/var/log/messages", want: "/var/log/messages"},
		{path: "/var/log", want: "/var/log"},
		{path: "/var/log/containers/app.log", want: "/var/log/pods/ns_app/c/0.log"},
		{path: "/var/log/hosts", want: "/etc/hosts"},    // a link into another allowed tree
		{path: "/a/up/hosts", want: "/etc/hosts"},       // climbing out of the root stops at it
		{path: "/a/abs-escape", want: "/etc/hosts"},     // so does an absolute target
		{path: "/a/up/passwd-link", want: "/etc/hosts"}, // links inside links
		{path: "/etc/hosts", want: "/etc/hosts"},
		{path: "/a/rel-out", err: fs.ErrNotExist},
		{path: "/var/log/missing", err: fs.ErrNotExist},
		{path: "/etc/os-release", err: fs.ErrNotExist},
		{path: "/", err: fileapi.ErrRestricted},
		{path: "/etc", err: fileapi.ErrRestricted},
		{path: "/var", err: fileapi.ErrRestricted},
		{path: "/etc/passwd-link", err: fileapi.ErrRestricted}, // by the client path, though it leads to /etc/hosts
		{path: "/a/up", err: fileapi.ErrRestricted},            // by the file: /etc
		{path: "/proc/1/environ", err: fileapi.ErrRestricted},
		{path: "/proc/nope", err: fileapi.ErrRestricted}, // whether it exists or not
		{path: "/var/log/environ", err: fileapi.ErrRestricted},
		{path: "/var/log/kubelet-key", err: fileapi.ErrRestricted},
		{path: "/var/log/kubelet-pki", err: fileapi.ErrRestricted},
		{path: "/var/log/kubelet-pki/kubelet.key", err: fileapi.ErrRestricted},
		{path: "/var/log/../lib/kubelet/pki/kubelet.key", err: fileapi.ErrRestricted},
		{path: "/system/secrets/key", err: fileapi.ErrRestricted},
		{path: "/system/secrets/missing", err: fileapi.ErrRestricted},
		{path: "/system/public.txt", err: fileapi.ErrRestricted},
		{path: "/link-to-secrets/key", err: fileapi.ErrRestricted},
		{path: "/rel-to-secrets", err: fileapi.ErrRestricted},
		{path: "/var/lib/etcd", err: fileapi.ErrRestricted},
		{path: "/data/etcd/member/db", err: fileapi.ErrRestricted},
	} {
		got, err := fsys.OpenedPath(tc.path, tc.admin)
		if tc.err != nil {
			if !errors.Is(err, tc.err) {
				t.Errorf("OpenedPath(%q, admin=%v) = %q, %v; want error %v", tc.path, tc.admin, got, err, tc.err)
			} else if strings.Contains(err.Error(), root) || strings.Contains(err.Error(), fsys.Root) {
				t.Errorf("OpenedPath(%q): error %q shows the host root", tc.path, err)
			}
			continue
		}
		if err != nil || got != host(tc.want) {
			t.Errorf("OpenedPath(%q, admin=%v) = %q, %v; want %q", tc.path, tc.admin, got, err, host(tc.want))
		}
	}
}

func TestResolveRestrictedMessage(t *testing.T) {
	fsys, _ := fixture(t)
	for _, p := range []string{"/system/secrets/key", "/var/log/kubelet-key"} {
		_, err := fsys.OpenedPath(p, false)
		if err == nil || !strings.Contains(err.Error(), p) || !strings.Contains(err.Error(), "needs os:admin") ||
			!strings.Contains(err.Error(), "other roles may read only /a, /etc/hosts, /etc/os-release, /var/log") {
			t.Fatalf("error %v should name the path, the os:admin role and the allowed trees", err)
		}
		var pe *fs.PathError
		if !errors.As(err, &pe) || pe.Path != p {
			t.Fatalf("error %#v is not a PathError on the client path", err)
		}
	}
}

func TestResolveRootConfiguration(t *testing.T) {
	if _, err := (fileapi.FS{}).OpenedPath("/", true); err == nil {
		t.Fatal("an FS without Root resolved a path")
	}
	if _, err := (fileapi.FS{Root: "/nonexistent-root"}).OpenedPath("/", true); err == nil || strings.Contains(err.Error(), "nonexistent") {
		t.Fatalf("missing root: %v", err)
	}
	fsys, _ := fixture(t)
	// Relative and empty allowed entries.
	fsys.Allowed = []string{"var/log", ""}
	if _, err := fsys.OpenedPath("/var/log/messages", false); err != nil {
		t.Fatalf("relative allowed entry: err = %v", err)
	}
	// Nothing allowed.
	fsys.Allowed = nil
	if _, err := fsys.OpenedPath("/var/log/messages", false); !errors.Is(err, fileapi.ErrRestricted) ||
		!strings.Contains(err.Error(), "other roles may read no files") {
		t.Fatalf("nothing allowed: err = %v", err)
	}
	// Everything under the root allowed: still nothing outside it.
	fsys.Allowed = []string{"/"}
	for p, want := range map[string]error{"/system/secrets/key": nil, "/": nil, "/a/rel-out": fs.ErrNotExist, "/a/abs-outside": fs.ErrNotExist} {
		if _, err := fsys.OpenedPath(p, false); !errors.Is(err, want) {
			t.Fatalf("allowed /, %s: err = %v", p, err)
		}
	}
}

func TestResolveRealRoot(t *testing.T) {
	fsys := fileapi.FS{Root: "/", Allowed: []string{"/etc/hostname"}}
	got, err := fsys.OpenedPath("/proc/self/../self/stat", true)
	if want := fmt.Sprintf("/proc/%d/stat", os.Getpid()); err != nil || got != want {
		t.Fatalf("OpenedPath on / = %q, %v", got, err)
	}
	if _, err := fsys.OpenedPath("/proc/self/stat", false); !errors.Is(err, fileapi.ErrRestricted) {
		t.Fatalf("a reader opened /proc/self/stat: %v", err)
	}
	// Magic links lead anywhere: they are never followed, not even for an admin.
	for _, p := range []string{"/proc/self/root/etc", "/proc/self/cwd", "/proc/self/fd/0"} {
		if got, err := fsys.OpenedPath(p, true); !errors.Is(err, fileapi.ErrTooManyLinks) {
			t.Errorf("OpenedPath(%q) = %q, %v; want a refused magic link", p, got, err)
		}
	}
}

// FuzzResolve opens arbitrary client paths as admin and as reader and checks that the
// file opened is inside the root, never beside it, and for a reader inside an allowed
// tree and never one of the secrets.
func FuzzResolve(f *testing.F) {
	fsys, outside := fixture(f)
	root := realRoot(f, fsys)
	for _, seed := range []string{
		"/", "/etc/hosts", "//etc//hosts/", "/../../etc/hosts", "etc", "", "/a/up/hosts", "/a/rel-out",
		"/a/abs-outside", "/loop1", "/self/x", "/link-to-secrets/key", "/var/lib/etcd/member", "/a/up/../../..",
		"/a/abs-escape/..", "/\x00", "/a/b/c.txt/..", "/system/secrets/../../a/up/../..", "/var/log/kubelet-pki/kubelet.key",
		"/var/log/environ", "/var/log/containers/app.log", "/var/log/../lib/kubelet", "/a/up/passwd-link",
	} {
		f.Add(seed, false)
		f.Add(seed, true)
	}
	var allowedHost []string
	for _, a := range allowed {
		allowedHost = append(allowedHost, filepath.Join(root, filepath.FromSlash(a)))
	}
	inside := func(p, dir string) bool { return p == dir || strings.HasPrefix(p, dir+string(filepath.Separator)) }
	f.Fuzz(func(t *testing.T, p string, admin bool) {
		host, err := fsys.OpenedPath(p, admin)
		if err != nil {
			return
		}
		if !inside(host, root) {
			t.Fatalf("OpenedPath(%q) = %q: outside the root %q", p, host, root)
		}
		if inside(host, outside) {
			t.Fatalf("OpenedPath(%q) = %q reaches the directory beside the root", p, host)
		}
		if admin {
			return
		}
		for s := range secrets {
			if secret := filepath.Join(root, filepath.FromSlash(s)); inside(host, secret) || inside(secret, host) {
				t.Fatalf("OpenedPath(%q, reader) = %q: a secret, or a tree holding one", p, host)
			}
		}
		ok := false
		for _, a := range allowedHost {
			ok = ok || inside(host, a)
		}
		if !ok {
			t.Fatalf("OpenedPath(%q, reader) = %q: outside the allowed trees", p, host)
		}
	})
}
