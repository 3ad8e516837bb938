package atomicfile_test

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"github.com/plinthos/plinth/internal/atomicfile"
)

// entries lists the names in dir.
func entries(t *testing.T, dir string) []string {
	t.Helper()
	des, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, de := range des {
		names = append(names, de.Name())
	}
	return names
}

func TestWriteCreatesAndReplaces(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "f.yaml")

	if err := atomicfile.Write(path, []byte("first\n"), 0o600); err != nil {
		t.Fatalf("first write: %v", err)
	}
	checkFile(t, path, "first\n", 0o600)

	if err := atomicfile.Write(path, []byte("second, longer content\n"), 0o644); err != nil {
		t.Fatalf("second write: %v", err)
	}
	checkFile(t, path, "second, longer content\n", 0o644)

	// Shorter content must not leave a tail of the old content.
	if err := atomicfile.Write(path, []byte("x"), 0o640); err != nil {
		t.Fatalf("third write: %v", err)
	}
	checkFile(t, path, "x", 0o640)

	if err := atomicfile.Write(path, nil, 0o600); err != nil {
		t.Fatalf("empty write: %v", err)
	}
	checkFile(t, path, "", 0o600)

	if got := entries(t, dir); len(got) != 1 || got[0] != "f.yaml" {
		t.Errorf("directory holds %q, want only f.yaml (temporary files left behind?)", got)
	}
}

func TestWritePermIgnoresUmaskAndExistingMode(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "secret")
	if err := os.WriteFile(path, []byte("old"), 0o666); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, 0o666); err != nil {
		t.Fatal(err)
	}
	if err := atomicfile.Write(path, []byte("new"), 0o600); err != nil {
		t.Fatal(err)
	}
	checkFile(t, path, "new", 0o600)
}

func TestWriteMissingDirectory(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "missing", "f.yaml")
	err := atomicfile.Write(path, []byte("data"), 0o600)
	if err == nil {
		t.Fatal("Write into a missing directory succeeded")
	}
	if !bytes.Contains([]byte(err.Error()), []byte(path)) {
		t.Errorf("error %q does not name the path %s", err, path)
	}
	if _, err := os.Stat(filepath.Join(dir, "missing")); !os.IsNotExist(err) {
		t.Errorf("the missing directory was created (stat: %v)", err)
	}
	if got := entries(t, dir); len(got) != 0 {
		t.Errorf("directory holds %q after a failed write, want nothing", got)
	}
}

func TestWriteOverDirectoryFailsAndCleansUp(t *testing.T) {
	dir := t.TempDir()
	target := filepath.Join(dir, "sub")
	if err := os.Mkdir(target, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(target, "keep"), []byte("k"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := atomicfile.Write(target, []byte("data"), 0o600); err == nil {
		t.Fatal("Write over a non-empty directory succeeded")
	}
	if got := entries(t, dir); len(got) != 1 || got[0] != "sub" {
		t.Errorf("directory holds %q after a failed write, want only sub (temporary file left behind?)", got)
	}
	if fi, err := os.Stat(target); err != nil || !fi.IsDir() {
		t.Errorf("the directory was replaced: %v", err)
	}
}

func checkFile(t *testing.T, path, want string, perm os.FileMode) {
	t.Helper()
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != want {
		t.Errorf("%s holds %q, want %q", path, got, want)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != perm {
		t.Errorf("%s has mode %v, want %v", path, fi.Mode().Perm(), perm)
	}
	if !fi.Mode().IsRegular() {
		t.Errorf("%s is not a regular file: %v", path, fi.Mode())
	}
}
