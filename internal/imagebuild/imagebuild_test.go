package imagebuild

import (
	"archive/tar"
	"bytes"
	"context"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

func TestCopyProgramRunsInTheRoot(t *testing.T) {
	prog, err := exec.LookPath("true")
	if err != nil {
		t.Skip("no true program")
	}
	r, err := NewRootfs(filepath.Join(t.TempDir(), "root"))
	if err != nil {
		t.Fatal(err)
	}
	if err := r.CopyProgram(context.Background(), prog, "/bin/true"); err != nil {
		t.Fatal(err)
	}
	libs, err := SharedLibraries(context.Background(), prog)
	if err != nil {
		t.Fatal(err)
	}
	if len(libs) == 0 {
		t.Skip("true is static here; nothing to check")
	}
	for _, l := range libs {
		if _, err := os.Stat(filepath.Join(r.Dir, l)); err != nil {
			t.Errorf("library %s not copied: %v", l, err)
		}
	}
	// The copied program runs with only the root's files (needs root for chroot).
	if os.Geteuid() == 0 {
		if out, err := exec.Command("chroot", r.Dir, "/bin/true").CombinedOutput(); err != nil {
			t.Errorf("the copied program does not run in its root: %v\n%s", err, out)
		}
	}
}

func TestWriteTarIsReproducible(t *testing.T) {
	build := func() []byte {
		r, err := NewRootfs(filepath.Join(t.TempDir(), "root"))
		if err != nil {
			t.Fatal(err)
		}
		must := func(err error) {
			t.Helper()
			if err != nil {
				t.Fatal(err)
			}
		}
		must(r.WriteFile("/etc/os-release", []byte("NAME=Plinth\n"), 0o644))
		must(r.WriteFile("/usr/bin/tool", []byte("#!bin\n"), 0o755))
		must(r.Symlink("tool", "/usr/bin/alias"))
		must(r.Mkdir("/var", 0o755))
		var buf bytes.Buffer
		must(WriteTar(r.Dir, &buf))
		return buf.Bytes()
	}
	a, b := build(), build()
	if !bytes.Equal(a, b) {
		t.Fatal("two builds of the same tree differ")
	}
	tr := tar.NewReader(bytes.NewReader(a))
	var names []string
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		names = append(names, h.Name)
		if h.Uid != 0 || !h.ModTime.Equal(Epoch) {
			t.Errorf("%s: uid %d time %v", h.Name, h.Uid, h.ModTime)
		}
		if h.Name == "usr/bin/alias" && (h.Typeflag != tar.TypeSymlink || h.Linkname != "tool") {
			t.Errorf("alias is %v -> %q", h.Typeflag, h.Linkname)
		}
		if h.Name == "usr/bin/tool" && h.Mode&0o777 != 0o755 {
			t.Errorf("tool mode %o", h.Mode)
		}
	}
	if got := strings.Join(names, ","); got != "etc/,etc/os-release,usr/,usr/bin/,usr/bin/alias,usr/bin/tool,var/" {
		t.Errorf("entries %s", got)
	}
}
