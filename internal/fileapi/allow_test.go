package fileapi_test

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/plinthos/plinth/internal/fileapi"
)

// TestReaderCannotReadOutsideAllowed is the regression test for callers without
// os:admin reading /proc, kubelet's keys, etcd's data and the like: with an allow-list
// they reach none of it, by name or through a link, by Read, List or Copy, and the
// refusal says what they may read. An admin still reads all of it.
func TestReaderCannotReadOutsideAllowed(t *testing.T) {
	fsys, _ := fixture(t)
	ctx := context.Background()
	paths := []string{"/", "/proc", "/proc/1", "/var/lib", "/var/lib/etcd/member/db", "/data", "/system",
		"/var/log/environ", "/var/log/kubelet-key", "/var/log/kubelet-pki", "/var/log/kubelet-pki/kubelet.key",
		"/a/up/../../proc/1/environ", "/var/log/../../proc/1/environ", "/link-to-secrets/key", "/rel-to-secrets"}
	for s := range secrets {
		paths = append(paths, "/"+s)
	}
	for _, p := range paths {
		var got bytes.Buffer
		errs := []error{
			fsys.Read(ctx, p, false, 0, func(b []byte) error { got.Write(b); return nil }),
			fsys.List(ctx, p, true, 0, false, func(e fileapi.Entry) error { got.WriteString(e.ClientPath + "\n"); return nil }),
			fsys.Copy(ctx, p, false, &got),
		}
		for i, err := range errs {
			op := []string{"Read", "List", "Copy"}[i]
			if !errors.Is(err, fileapi.ErrRestricted) {
				t.Errorf("%s(%q) for a reader: %v, want ErrRestricted", op, p, err)
				continue
			}
			msg := err.Error()
			if !strings.Contains(msg, path.Clean(p)) || !strings.Contains(msg, "needs os:admin") || !strings.Contains(msg, "/var/log") ||
				strings.Contains(msg, fsys.Root) {
				t.Errorf("%s(%q): message %q should name the cleaned client path, os:admin and the allowed trees, not the host root", op, p, msg)
			}
		}
		if got.Len() != 0 {
			t.Errorf("a reader got %q from %s", got.String(), p)
		}
	}
	for s, content := range secrets {
		if _, got, err := read(t, fsys, "/"+s, true, 0); err != nil || string(got) != content {
			t.Errorf("admin read of /%s: %q, %v", s, got, err)
		}
	}
	if _, got, err := read(t, fsys, "/var/log/environ", true, 0); err != nil || string(got) != secrets["proc/1/environ"] {
		t.Errorf("admin read through a link: %q, %v", got, err)
	}
}

// TestConcurrentSwapperReadsNoSecret is the regression test for the race between the
// check and the open: while a goroutine keeps exchanging a directory of an allowed tree
// with a link to a secret tree (atomically, with renameat2 RENAME_EXCHANGE, as a process
// that may write into /var/log could), a reader's Read, List and Copy through that
// directory fail or give the public files, never the secret ones. On the code that
// checked paths and then opened by path, 61 to 76 of 300 reads gave the secret (and more
// of the listings and copies) with this swapper.
func TestConcurrentSwapperReadsNoSecret(t *testing.T) {
	root := t.TempDir()
	for name, content := range map[string]string{
		"var/log/app/current.log":   "public log\n",
		"var/log/app/sub/x":         "public x\n",
		"secret/current.log":        "SECRET log\n",
		"secret/sub/x":              "SECRET x\n",
		"secret/only-in-the-secret": "SECRET\n",
	} {
		p := filepath.Join(root, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	app := filepath.Join(root, "var", "log", "app")
	// Relative, so that it leads to the secret both for the host and inside the root.
	if err := os.Symlink("../../secret", app+".swap"); err != nil {
		t.Fatal(err)
	}
	fsys := fileapi.FS{Root: root, Allowed: []string{"/var/log"}}
	ctx := context.Background()
	leaked := func(b []byte) bool {
		return bytes.Contains(b, []byte("SECRET")) || bytes.Contains(b, []byte("only-in-the-secret"))
	}

	// Without the swapper: the directory reads, the link is refused.
	if _, got, err := read(t, fsys, "/var/log/app/current.log", false, 0); err != nil || string(got) != "public log\n" {
		t.Fatalf("before the race: %q, %v", got, err)
	}
	if _, _, err := read(t, fsys, "/var/log/app.swap/current.log", false, 0); !errors.Is(err, fileapi.ErrRestricted) {
		t.Fatalf("through the link: %v", err)
	}

	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			select {
			case <-stop:
				return
			default:
			}
			if err := unix.Renameat2(unix.AT_FDCWD, app, unix.AT_FDCWD, app+".swap", unix.RENAME_EXCHANGE); err != nil {
				t.Errorf("exchange: %v", err)
				return
			}
		}
	})
	defer func() { close(stop); wg.Wait() }()

	const rounds = 300
	var leaks, served, refused int
	check := func(what string, got []byte, err error) {
		switch {
		case leaked(got):
			leaks++
			t.Errorf("%s gave the secret: %q", what, got)
		case err == nil:
			served++
		default:
			refused++
			if strings.Contains(err.Error(), root) {
				t.Errorf("%s: error %q shows the host root", what, err)
			}
		}
	}
	for range rounds {
		for _, p := range []string{"/var/log/app/current.log", "/var/log/app/sub/x"} {
			_, got, err := read(t, fsys, p, false, 0)
			check("Read "+p, got, err)
		}
		for _, p := range []string{"/var/log/app", "/var/log"} {
			var got bytes.Buffer
			err := fsys.List(ctx, p, true, 0, false, func(e fileapi.Entry) error {
				got.WriteString(e.ClientPath + " " + e.Link + "\n")
				return nil
			})
			check("List "+p, got.Bytes(), err)
			got.Reset()
			err = fsys.Copy(ctx, p, false, &got)
			check("Copy "+p, got.Bytes(), err)
		}
	}
	t.Logf("%d requests under the swapper: %d served, %d refused, %d leaked the secret", 6*rounds, served, refused, leaks)
}
