package fileapi_test

import (
	"os"
	"path/filepath"
	"testing"

	"go.uber.org/goleak"

	"github.com/plinthos/plinth/internal/fileapi"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// restricted is the Restricted list of the fixture, as on a node.
var restricted = []string{"/system/secrets", "/var/lib/etcd", "/system/state"}

// fixture builds a tree under a new root and returns the FS over it and the directory
// beside the root that no client path may reach.
//
//	/a/b/c.txt
//	/a/up            -> ../../../../etc       (relative, climbs past the root)
//	/a/abs-escape    -> /../../etc/hosts      (absolute, climbs past the root)
//	/a/rel-out       -> ../../outside/secret  (the real file beside the root)
//	/a/abs-outside   -> <host path of outside/secret>
//	/dangling        -> /nope
//	/data/etcd/member/db
//	/emptydir/
//	/etc/hosts
//	/etc/passwd-link -> /etc/hosts
//	/link-to-secrets -> /system/secrets
//	/loop1 -> loop2, /loop2 -> /loop1, /self -> self
//	/rel-to-secrets  -> system/secrets/key
//	/system/public.txt
//	/system/secrets/key
//	/system/secrets-public
//	/system/state/config.yaml
//	/var/lib/etcd    -> /data/etcd            (a restricted tree through a link)
func fixture(t testing.TB) (fileapi.FS, string) {
	t.Helper()
	base := t.TempDir()
	root := filepath.Join(base, "root")
	outside := filepath.Join(base, "outside")
	files := map[string]string{
		"a/b/c.txt":                 "c",
		"data/etcd/member/db":       "etcd data",
		"etc/hosts":                 "127.0.0.1 localhost\n",
		"system/public.txt":         "public",
		"system/secrets/key":        "secret key",
		"system/secrets-public":     "not secret",
		"system/state/config.yaml":  "machine: {}\n",
		"../outside/secret":         "outside the root",
		"emptydir/.keep-not-listed": "",
	}
	for name, content := range files {
		p := filepath.Join(root, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Remove(filepath.Join(root, "emptydir", ".keep-not-listed")); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(root, "var", "lib"), 0o755); err != nil {
		t.Fatal(err)
	}
	links := map[string]string{
		"a/up":            "../../../../etc",
		"a/abs-escape":    "/../../etc/hosts",
		"a/rel-out":       "../../outside/secret",
		"a/abs-outside":   filepath.Join(outside, "secret"),
		"dangling":        "/nope",
		"etc/passwd-link": "/etc/hosts",
		"link-to-secrets": "/system/secrets",
		"loop1":           "loop2",
		"loop2":           "/loop1",
		"self":            "self",
		"rel-to-secrets":  "system/secrets/key",
		"var/lib/etcd":    "/data/etcd",
	}
	for name, target := range links {
		if err := os.Symlink(target, filepath.Join(root, filepath.FromSlash(name))); err != nil {
			t.Fatal(err)
		}
	}
	return fileapi.FS{Root: root, Restricted: restricted}, outside
}
