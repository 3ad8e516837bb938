package imagebuild

import (
	"bytes"
	"crypto/x509"
	"encoding/pem"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

func TestCABundleIsPinnedPEM(t *testing.T) {
	a, b := CABundle(), CABundle()
	if !bytes.Equal(a, b) {
		t.Fatal("two CA bundles differ")
	}
	n := 0
	for rest := a; ; {
		var blk *pem.Block
		blk, rest = pem.Decode(rest)
		if blk == nil {
			break
		}
		if _, err := x509.ParseCertificate(blk.Bytes); err != nil {
			t.Fatalf("root %d: %v", n, err)
		}
		n++
	}
	if n < 100 {
		t.Fatalf("%d roots; the NSS bundle has over 100", n)
	}
}

// TestTreeIgnoresUmaskAndHostModes builds the same tree under two umasks, from host files
// of different modes (as go build leaves them under umask 022 and 002), and expects the
// same archive.
func TestTreeIgnoresUmaskAndHostModes(t *testing.T) {
	build := func(umask int, binMode os.FileMode) []byte {
		old := syscall.Umask(umask)
		defer syscall.Umask(old)
		dir := t.TempDir()
		bin := filepath.Join(dir, "bin")
		if err := os.WriteFile(bin, []byte("binary"), binMode); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(bin, binMode); err != nil {
			t.Fatal(err)
		}
		r, err := NewRootfs(filepath.Join(dir, "root"))
		if err != nil {
			t.Fatal(err)
		}
		for _, err := range []error{
			r.CopyFile(bin, "/usr/local/bin/tool"),
			r.WriteFile("/etc/deep/dir/conf", []byte("x\n"), 0o644),
			r.Symlink("tool", "/usr/local/bin/alias"),
			r.Mkdir("/var/lib/etcd", 0o700),
		} {
			if err != nil {
				t.Fatal(err)
			}
		}
		var buf bytes.Buffer
		if err := WriteTar(r.Dir, &buf); err != nil {
			t.Fatal(err)
		}
		return buf.Bytes()
	}
	a, b := build(0o022, 0o755), build(0o077, 0o775)
	if !bytes.Equal(a, b) {
		t.Fatal("the archive depends on the umask or the host file's mode")
	}
}

// TestSaveIsReproducible saves images with several tags twice (map order differs from
// run to run) and expects the same archive, which go-containerregistry reads back.
func TestSaveIsReproducible(t *testing.T) {
	dir := t.TempDir()
	r, err := NewRootfs(filepath.Join(dir, "root"))
	if err != nil {
		t.Fatal(err)
	}
	if err := r.WriteFile("/x", []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	one, err := Image(ImageSpec{Rootfs: r.Dir, Entrypoint: []string{"/x"}})
	if err != nil {
		t.Fatal(err)
	}
	two, err := Image(ImageSpec{Rootfs: r.Dir, Entrypoint: []string{"/y"}})
	if err != nil {
		t.Fatal(err)
	}
	images := map[string]v1.Image{}
	for _, tag := range []string{"plinth.local/a:1", "plinth.local/b:1", "plinth.local/c:1", "plinth.local/d:1", "plinth.local/e:1"} {
		images[tag] = one
	}
	images["plinth.local/z:1"] = two
	var sums [][]byte
	for i := range 4 {
		p := filepath.Join(dir, "bundle"+string(rune('0'+i))+".tar")
		saved, err := Save(p, images)
		if err != nil {
			t.Fatal(err)
		}
		if len(saved) != 2 || strings.Join(saved[0].Tags, ",") != "plinth.local/a:1,plinth.local/b:1,plinth.local/c:1,plinth.local/d:1,plinth.local/e:1" {
			t.Fatalf("saved %+v", saved)
		}
		data, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		sums = append(sums, data)
		tag, _ := name.NewTag("plinth.local/z:1")
		back, err := tarball.ImageFromPath(p, &tag)
		if err != nil {
			t.Fatal(err)
		}
		if d, _ := back.Digest(); d.String() != saved[1].Digest {
			t.Fatalf("read back %s, saved %s", d, saved[1].Digest)
		}
	}
	for _, s := range sums[1:] {
		if !bytes.Equal(s, sums[0]) {
			t.Fatal("two saves of the same images differ")
		}
	}
}

func TestLockRoundTripAndDiff(t *testing.T) {
	l := Lock{
		Toolchain: "go1.26.8",
		Packages:  map[string]string{"iptables": "1.8.9-2", "libc6": "2.36-9"},
		Files:     map[string]string{"/usr/lib/x": "sha256:00"},
		Images:    []Saved{{Digest: "sha256:aa", Tags: []string{"plinth.local/a:1", "plinth.local/b:1"}}, {Digest: "sha256:bb", Tags: []string{"plinth.local/c:1"}}},
	}
	back, err := ParseLock(l.Format())
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(back.Format(), l.Format()) {
		t.Fatalf("round trip:\n%s\n%s", back.Format(), l.Format())
	}
	if d := l.HostDiff(back, false); len(d) != 0 {
		t.Fatalf("same lock differs: %v", d)
	}
	got := back
	got.Packages = map[string]string{"iptables": "1.8.9-3"}
	got.Images = []Saved{{Digest: "sha256:aa", Tags: []string{"plinth.local/a:1", "plinth.local/b:1"}}, {Digest: "sha256:cc", Tags: []string{"plinth.local/c:1"}}}
	if d := strings.Join(l.HostDiff(got, true), "\n"); !strings.Contains(d, "iptables: this build has 1.8.9-3, the lock says 1.8.9-2") || strings.Contains(d, "libc6") {
		t.Errorf("subset host diff:\n%s", d)
	}
	if d := strings.Join(l.HostDiff(got, false), "\n"); !strings.Contains(d, "libc6") {
		t.Errorf("host diff misses the package this build lacks:\n%s", d)
	}
	if d := l.ImageDiff(got); len(d) != 1 || !strings.Contains(d[0], "image plinth.local/c:1: this build has sha256:cc, the lock says sha256:bb") {
		t.Errorf("image diff %v", d)
	}
	if _, err := ParseLock([]byte("what is this\n")); err == nil {
		t.Error("a bad line parses")
	}
}

// TestCommittedLockParses keeps payload/images.lock readable by the imager.
func TestCommittedLockParses(t *testing.T) {
	data, err := os.ReadFile("../../payload/images.lock")
	if err != nil {
		t.Fatal(err)
	}
	l, err := ParseLock(data)
	if err != nil {
		t.Fatal(err)
	}
	if len(l.Images) == 0 || l.Toolchain == "" || len(l.Packages) == 0 {
		t.Fatalf("payload/images.lock lacks images, toolchain or packages: %+v", l)
	}
}
