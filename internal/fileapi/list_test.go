package fileapi_test

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/plinthos/plinth/internal/fileapi"
)

// list runs List and returns the entries it passed on.
func list(t *testing.T, fsys fileapi.FS, root string, recurse bool, depth int, admin bool) []fileapi.Entry {
	t.Helper()
	var got []fileapi.Entry
	err := fsys.List(context.Background(), root, recurse, depth, admin, func(e fileapi.Entry) error {
		got = append(got, e)
		return nil
	})
	if err != nil {
		t.Fatalf("List(%q): %v", root, err)
	}
	return got
}

// names returns the relative names of entries.
func names(es []fileapi.Entry) []string {
	var out []string
	for _, e := range es {
		out = append(out, e.RelativeName)
	}
	return out
}

// find returns the entry with the relative name rel.
func find(t *testing.T, es []fileapi.Entry, rel string) fileapi.Entry {
	t.Helper()
	i := slices.IndexFunc(es, func(e fileapi.Entry) bool { return e.RelativeName == rel })
	if i < 0 {
		t.Fatalf("no entry %q among %q", rel, names(es))
	}
	return es[i]
}

func TestListDirect(t *testing.T) {
	fsys, _ := fixture(t)
	got := list(t, fsys, "/", false, 0, true)
	want := []string{"a", "dangling", "data", "emptydir", "etc", "link-to-secrets", "loop1", "loop2",
		"proc", "rel-to-secrets", "self", "system", "var"}
	if !slices.Equal(names(got), want) {
		t.Fatalf("got %q\nwant %q", names(got), want)
	}
	// depth is ignored without recurse.
	if got2 := list(t, fsys, "/", false, 5, true); !slices.Equal(names(got2), want) {
		t.Fatalf("depth without recurse: got %q", names(got2))
	}
	a := find(t, got, "a")
	if !a.IsDir || a.Name != "a" || a.ClientPath != "/a" || a.Err != "" || !a.Mode.IsDir() || a.Modified.IsZero() {
		t.Errorf("a = %+v", a)
	}
	l := find(t, got, "link-to-secrets")
	if l.Link != "/system/secrets" || l.Mode&fs.ModeSymlink == 0 || l.IsDir || l.Err != "" {
		t.Errorf("link-to-secrets = %+v", l)
	}
}

func TestListRecurse(t *testing.T) {
	fsys, _ := fixture(t)
	got := list(t, fsys, "/", true, 0, true)
	want := []string{
		"a", "a/abs-escape", "a/abs-outside", "a/b", "a/b/c.txt", "a/rel-out", "a/up",
		"dangling", "data", "data/etcd", "data/etcd/member", "data/etcd/member/db",
		"emptydir", "etc", "etc/hosts", "etc/passwd-link",
		"link-to-secrets", "loop1", "loop2", "proc", "proc/1", "proc/1/environ", "rel-to-secrets", "self",
		"system", "system/public.txt", "system/secrets", "system/secrets/key", "system/secrets-public",
		"system/state", "system/state/config.yaml",
		"var", "var/lib", "var/lib/etcd", "var/lib/kubelet", "var/lib/kubelet/pki", "var/lib/kubelet/pki/kubelet.key",
		"var/log", "var/log/containers", "var/log/containers/app.log", "var/log/environ", "var/log/hosts",
		"var/log/kubelet-key", "var/log/kubelet-pki", "var/log/messages",
		"var/log/pods", "var/log/pods/ns_app", "var/log/pods/ns_app/c", "var/log/pods/ns_app/c/0.log",
	}
	if !slices.Equal(names(got), want) {
		t.Fatalf("got  %q\nwant %q", names(got), want)
	}
	// Links are listed, not followed.
	if e := find(t, got, "link-to-secrets"); e.Link != "/system/secrets" || e.Err != "" || e.IsDir {
		t.Errorf("link-to-secrets = %+v", e)
	}
	hosts := find(t, got, "etc/hosts")
	if hosts.Size != int64(len("127.0.0.1 localhost\n")) || hosts.ClientPath != "/etc/hosts" || hosts.Name != "hosts" ||
		!hosts.Mode.IsRegular() || hosts.Mode.Perm() != 0o644 {
		t.Errorf("etc/hosts = %+v", hosts)
	}
	if e := find(t, got, "system/secrets/key"); e.ClientPath != "/system/secrets/key" || e.Err != "" || e.Size != int64(len("secret key")) {
		t.Errorf("admin system/secrets/key = %+v", e)
	}
}

// TestListReaderAllowedTree: a reader lists an allowed tree whole; the links in it that
// lead elsewhere are shown as links and not followed.
func TestListReaderAllowedTree(t *testing.T) {
	fsys, _ := fixture(t)
	got := list(t, fsys, "/var/log", true, 0, false)
	want := []string{"containers", "containers/app.log", "environ", "hosts", "kubelet-key", "kubelet-pki", "messages",
		"pods", "pods/ns_app", "pods/ns_app/c", "pods/ns_app/c/0.log"}
	if !slices.Equal(names(got), want) {
		t.Fatalf("got  %q\nwant %q", names(got), want)
	}
	for rel, target := range map[string]string{
		"kubelet-pki": "/var/lib/kubelet/pki", "environ": "/proc/1/environ", "containers/app.log": "../pods/ns_app/c/0.log",
	} {
		if e := find(t, got, rel); e.Link != target || e.Mode&fs.ModeSymlink == 0 || e.IsDir || e.Err != "" {
			t.Errorf("%s = %+v", rel, e)
		}
	}
	if e := find(t, got, "pods/ns_app/c/0.log"); e.ClientPath != "/var/log/pods/ns_app/c/0.log" || e.Size != int64(len("app log\n")) {
		t.Errorf("0.log = %+v", e)
	}
}

func TestListDepth(t *testing.T) {
	fsys, _ := fixture(t)
	for depth, want := range map[int][]string{
		1: {"b", "abs-escape"},
		2: {"b", "b/c.txt"},
	} {
		got := names(list(t, fsys, "/a", true, depth, false))
		for _, w := range want {
			if !slices.Contains(got, w) {
				t.Errorf("depth %d: %q missing from %q", depth, w, got)
			}
		}
		if depth == 1 && slices.Contains(got, "b/c.txt") {
			t.Errorf("depth 1 went deeper: %q", got)
		}
	}
	if got := names(list(t, fsys, "/", true, 2, true)); slices.Contains(got, "a/b/c.txt") || !slices.Contains(got, "a/b") {
		t.Errorf("depth 2 from /: %q", got)
	}
}

func TestListFileAndLinkRoots(t *testing.T) {
	fsys, _ := fixture(t)
	got := list(t, fsys, "/etc/hosts", true, 0, false)
	if len(got) != 1 || got[0].RelativeName != "." || got[0].Name != "hosts" || got[0].ClientPath != "/etc/hosts" ||
		got[0].Size != int64(len("127.0.0.1 localhost\n")) {
		t.Fatalf("file root: %+v", got)
	}
	// A link to a directory lists the directory, under the name the client used.
	got = list(t, fsys, "/a/up", false, 0, true)
	if !slices.Equal(names(got), []string{"hosts", "passwd-link"}) || got[0].ClientPath != "/a/up/hosts" {
		t.Fatalf("link root: %+v", got)
	}
	// A link to a file lists the file, under the name the client used.
	got = list(t, fsys, "/var/log/containers/app.log", false, 0, false)
	if len(got) != 1 || got[0].Name != "app.log" || got[0].ClientPath != "/var/log/containers/app.log" ||
		got[0].Size != int64(len("app log\n")) || !got[0].Mode.IsRegular() || got[0].Link != "" {
		t.Fatalf("link to a file: %+v", got)
	}
	if got := list(t, fsys, "/emptydir", true, 0, true); len(got) != 0 {
		t.Fatalf("empty dir: %+v", got)
	}
}

func TestListErrors(t *testing.T) {
	fsys, _ := fixture(t)
	ctx := context.Background()
	nop := func(fileapi.Entry) error { return nil }
	if err := fsys.List(ctx, "/system/secrets", true, 0, false, nop); !errors.Is(err, fileapi.ErrRestricted) {
		t.Errorf("restricted root: %v", err)
	}
	if err := fsys.List(ctx, "/a/up", true, 0, false, nop); !errors.Is(err, fileapi.ErrRestricted) {
		t.Errorf("allowed root leading elsewhere: %v", err)
	}
	if err := fsys.List(ctx, "/missing", true, 0, true, nop); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("missing root: %v", err)
	}
	if err := fsys.List(ctx, "/var/log/missing", true, 0, false, nop); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("missing allowed root: %v", err)
	}
	if err := fsys.List(ctx, "/missing", true, 0, false, nop); !errors.Is(err, fileapi.ErrRestricted) {
		t.Errorf("missing root outside the allowed trees: %v", err)
	}
	if err := fsys.List(ctx, "relative", true, 0, false, nop); !errors.Is(err, fileapi.ErrNotAbsolute) {
		t.Errorf("relative root: %v", err)
	}
	stop := errors.New("stop")
	calls := 0
	err := fsys.List(ctx, "/", true, 0, true, func(fileapi.Entry) error { calls++; return stop })
	if err != stop || calls != 1 {
		t.Errorf("fn error: %v after %d calls", err, calls)
	}
	// SkipDir keeps List out of a directory, SkipAll ends it quietly.
	var seen []string
	err = fsys.List(ctx, "/", true, 0, true, func(e fileapi.Entry) error {
		seen = append(seen, e.RelativeName)
		if e.RelativeName == "a" {
			return fs.SkipDir
		}
		if e.RelativeName == "etc" {
			return fs.SkipAll
		}
		return nil
	})
	if err != nil || !slices.Equal(seen, []string{"a", "dangling", "data", "data/etcd", "data/etcd/member", "data/etcd/member/db", "emptydir", "etc"}) {
		t.Errorf("skips: %v, %q", err, seen)
	}
}

func TestListUnreadableDirectory(t *testing.T) {
	if os.Geteuid() == 0 {
		t.Skip("root reads directories whatever their mode")
	}
	fsys, _ := fixture(t)
	locked := filepath.Join(fsys.Root, "a", "b")
	if err := os.Chmod(locked, 0); err != nil {
		t.Fatal(err)
	}
	defer os.Chmod(locked, 0o755)
	got := list(t, fsys, "/a", true, 0, false)
	b := find(t, got, "b")
	if !strings.Contains(b.Err, "permission denied") || strings.Contains(b.Err, fsys.Root) || !b.IsDir {
		t.Errorf("b = %+v", b)
	}
	if !slices.Contains(names(got), "up") {
		t.Errorf("walking stopped at the error: %q", names(got))
	}
}

func TestListCancel(t *testing.T) {
	fsys, _ := fixture(t)
	ctx, cancel := context.WithCancel(context.Background())
	calls := 0
	err := fsys.List(ctx, "/", true, 0, true, func(fileapi.Entry) error {
		calls++
		if calls == 2 {
			cancel()
		}
		return nil
	})
	if !errors.Is(err, context.Canceled) || calls != 2 {
		t.Fatalf("err = %v after %d calls", err, calls)
	}
	if err := fsys.List(ctx, "/", true, 0, true, func(fileapi.Entry) error { t.Error("called"); return nil }); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled before: %v", err)
	}
}
