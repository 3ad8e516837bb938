package rootfs

import (
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func stage(t *testing.T) string {
	t.Helper()
	tmp := t.TempDir()
	machined := filepath.Join(tmp, "machined")
	ca := filepath.Join(tmp, "ca.crt")
	os.WriteFile(machined, []byte("\x7fELF machined"), 0o700)
	os.WriteFile(ca, []byte("-----BEGIN CERTIFICATE-----\n"), 0o600)
	dir := filepath.Join(tmp, "root")
	if err := Stage(dir, Spec{Machined: machined, Version: "v0.9.0", CABundle: ca}); err != nil {
		t.Fatal(err)
	}
	return dir
}

func TestStage(t *testing.T) {
	dir := stage(t)
	for d, perm := range Dirs {
		info, err := os.Stat(filepath.Join(dir, d))
		if err != nil || !info.IsDir() {
			t.Fatalf("%s: %v", d, err)
		}
		want := perm.Perm()
		if info.Mode().Perm() != want {
			t.Errorf("%s: mode %v, want %v", d, info.Mode().Perm(), want)
		}
	}
	if info, _ := os.Stat(filepath.Join(dir, "tmp")); info.Mode()&fs.ModeSticky == 0 {
		t.Error("/tmp is not sticky")
	}
	osr, err := os.ReadFile(filepath.Join(dir, "etc/os-release"))
	if err != nil || !strings.Contains(string(osr), "NAME=\"Plinth\"\n") || !strings.Contains(string(osr), "VERSION=\"v0.9.0\"\n") {
		t.Fatalf("os-release %q %v", osr, err)
	}
	if info, err := os.Stat(filepath.Join(dir, CABundlePath)); err != nil || info.Mode().Perm() != 0o644 {
		t.Fatalf("CA bundle: %v", err)
	}
	exes, err := Executables(dir)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(exes, []string{MachinedPath}) {
		t.Fatalf("executables %v: only machined may be executable", exes)
	}
}

func TestStageRefuses(t *testing.T) {
	dir := stage(t)
	if err := Stage(dir, Spec{Machined: filepath.Join(dir, MachinedPath), Version: "v1"}); err == nil {
		t.Fatal("staged into a non-empty directory")
	}
	if err := Stage(t.TempDir(), Spec{Machined: "/nonexistent", Version: "v1"}); err == nil {
		t.Fatal("missing machined accepted")
	}
	if err := Stage(t.TempDir(), Spec{Machined: "/nonexistent", Version: "v\"1"}); err == nil {
		t.Fatal("quote in version accepted")
	}
}
