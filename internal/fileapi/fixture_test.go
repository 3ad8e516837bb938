package fileapi_test

import (
	"maps"
	"os"
	"path/filepath"
	"testing"

	"go.uber.org/goleak"

	"github.com/plinthos/plinth/internal/fileapi"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// allowed is the Allowed list of the fixture: trees as on a node (/var/log, single files
// of /etc, one missing) and /a, where the links that climb out of the root are.
var allowed = []string{"/a", "/etc/hosts", "/etc/os-release", "/var/log"}

// secrets are the fixture's files that only an admin may read, with their content.
var secrets = map[string]string{
	"data/etcd/member/db":             "etcd data",
	"proc/1/environ":                  "SECRET=in the environment",
	"system/secrets/key":              "secret key",
	"system/state/config.yaml":        "machine: {}\n",
	"var/lib/kubelet/pki/kubelet.key": "kubelet key",
}

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
//	/proc/1/environ
//	/rel-to-secrets  -> system/secrets/key
//	/system/public.txt
//	/system/secrets/key
//	/system/secrets-public
//	/system/state/config.yaml
//	/var/lib/etcd    -> /data/etcd            (an admin-only tree through a link)
//	/var/lib/kubelet/pki/kubelet.key
//	/var/log/containers/app.log -> ../pods/ns_app/c/0.log  (as kubelet makes them)
//	/var/log/environ     -> /proc/1/environ                 (links out of an allowed tree)
//	/var/log/hosts       -> /etc/hosts                      (into another allowed tree)
//	/var/log/kubelet-key -> ../lib/kubelet/pki/kubelet.key
//	/var/log/kubelet-pki -> /var/lib/kubelet/pki
//	/var/log/messages
//	/var/log/pods/ns_app/c/0.log
func fixture(t testing.TB) (fileapi.FS, string) {
	t.Helper()
	base := t.TempDir()
	root := filepath.Join(base, "root")
	outside := filepath.Join(base, "outside")
	files := map[string]string{
		"a/b/c.txt":                   "c",
		"etc/hosts":                   "127.0.0.1 localhost\n",
		"system/public.txt":           "public",
		"system/secrets-public":       "not secret",
		"../outside/secret":           "outside the root",
		"emptydir/.keep-not-listed":   "",
		"var/log/messages":            "m1\n",
		"var/log/pods/ns_app/c/0.log": "app log\n",
	}
	maps.Copy(files, secrets)
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
	if err := os.MkdirAll(filepath.Join(root, "var", "log", "containers"), 0o755); err != nil {
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

		"var/log/containers/app.log": "../pods/ns_app/c/0.log",
		"var/log/environ":            "/proc/1/environ",
		"var/log/hosts":              "/etc/hosts",
		"var/log/kubelet-key":        "../lib/kubelet/pki/kubelet.key",
		"var/log/kubelet-pki":        "/var/lib/kubelet/pki",
	}
	for name, target := range links {
		if err := os.Symlink(target, filepath.Join(root, filepath.FromSlash(name))); err != nil {
			t.Fatal(err)
		}
	}
	return fileapi.FS{Root: root, Allowed: allowed}, outside
}
