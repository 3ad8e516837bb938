// Package rootfs stages the root filesystem of a Plinth image and packs it as squashfs.
//
// The OS-only profile is machined and nothing else: no shell, no interpreter, no package
// manager. machined mounts tmpfs over /run, /tmp and /system and the node's disks over /var
// at boot; here they are empty mount points on a read-only filesystem.
package rootfs

import (
	"bytes"
	"context"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
)

// MachinedPath is where machined lives in the root filesystem; stage 0 executes it.
const MachinedPath = "usr/bin/machined"

// CABundlePath is where the CA roots go (Debian's path, which Go's crypto/x509 reads).
const CABundlePath = "etc/ssl/certs/ca-certificates.crt"

// Spec is what goes into the root filesystem.
type Spec struct {
	Machined string // path of the machined binary to install
	Version  string // the OS version, for /etc/os-release
	CABundle string // path of a PEM CA bundle to install; empty leaves it out
}

// Dirs are the directories of every root filesystem, with their permissions.
var Dirs = map[string]fs.FileMode{
	"dev": 0o755, "proc": 0o555, "sys": 0o555, "run": 0o755, "tmp": 0o1777, "var": 0o755,
	"etc": 0o755, "system": 0o755, "usr": 0o755, "usr/bin": 0o755,
	"media": 0o755, // where stage 0 moves the install media's mount, on the live system
	// kube-proxy mounts the host's /lib/modules (empty: stage 0 loaded the modules from the
	// initramfs); the container runtime cannot create it on a read-only root.
	"lib": 0o755, "lib/modules": 0o755,
}

// OSRelease is the /etc/os-release of version.
func OSRelease(version string) []byte {
	return fmt.Appendf(nil, "NAME=\"Plinth\"\nID=plinth\nVERSION=%q\nVERSION_ID=%q\nPRETTY_NAME=%q\n",
		version, version, "Plinth "+version)
}

// Stage writes the root filesystem tree into dir, which must be empty or missing.
// Permissions are set explicitly, whatever the umask.
func Stage(dir string, s Spec) error {
	if s.Version == "" || strings.ContainsAny(s.Version, "\"\\\n$`") {
		return fmt.Errorf("rootfs: bad version %q", s.Version)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("rootfs: %w", err)
	}
	if entries, err := os.ReadDir(dir); err != nil || len(entries) > 0 {
		return fmt.Errorf("rootfs: staging directory %s is not empty (%v)", dir, err)
	}
	return Write(dir, s)
}

// Write writes the tree of Stage into dir over what is there (the Kubernetes profile's
// node tree): directories, machined, os-release, the CA bundle.
func Write(dir string, s Spec) error {
	if s.Version == "" || strings.ContainsAny(s.Version, "\"\\\n$`") {
		return fmt.Errorf("rootfs: bad version %q", s.Version)
	}
	if err := os.Chmod(dir, 0o755); err != nil {
		return fmt.Errorf("rootfs: %w", err)
	}
	dirs := make([]string, 0, len(Dirs))
	for d := range Dirs {
		dirs = append(dirs, d)
	}
	slices.Sort(dirs)
	for _, d := range dirs {
		p := filepath.Join(dir, d)
		if err := os.MkdirAll(p, 0o755); err != nil {
			return fmt.Errorf("rootfs: %w", err)
		}
		if err := os.Chmod(p, Dirs[d]|modeBits(Dirs[d])); err != nil {
			return fmt.Errorf("rootfs: %w", err)
		}
	}
	machined, err := os.ReadFile(s.Machined)
	if err != nil {
		return fmt.Errorf("rootfs: machined: %w", err)
	}
	files := []struct {
		path string
		data []byte
		mode fs.FileMode
	}{
		{MachinedPath, machined, 0o755},
		{"etc/os-release", OSRelease(s.Version), 0o644},
	}
	if s.CABundle != "" {
		ca, err := os.ReadFile(s.CABundle)
		if err != nil {
			return fmt.Errorf("rootfs: CA bundle: %w", err)
		}
		files = append(files, struct {
			path string
			data []byte
			mode fs.FileMode
		}{CABundlePath, ca, 0o644})
	}
	for _, f := range files {
		p := filepath.Join(dir, f.path)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return fmt.Errorf("rootfs: %w", err)
		}
		if err := os.WriteFile(p, f.data, f.mode); err != nil {
			return fmt.Errorf("rootfs: %w", err)
		}
		if err := os.Chmod(p, f.mode); err != nil {
			return fmt.Errorf("rootfs: %w", err)
		}
	}
	return nil
}

// modeBits turns the sticky bit of an fs.FileMode into what os.Chmod expects (it takes
// fs.ModeSticky, so 0o1000 written as a literal must be translated).
func modeBits(m fs.FileMode) fs.FileMode {
	if m&0o1000 != 0 {
		return fs.ModeSticky
	}
	return 0
}

// Executables lists the regular files under dir with an execute bit, relative and sorted.
func Executables(dir string) ([]string, error) {
	var exes []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.Type().IsRegular() {
			return nil
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		if info.Mode().Perm()&0o111 != 0 {
			rel, _ := filepath.Rel(dir, p)
			exes = append(exes, filepath.ToSlash(rel))
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("rootfs: list executables: %w", err)
	}
	slices.Sort(exes)
	return exes, nil
}

// SquashArgs are the mksquashfs arguments that pack dir into out reproducibly: every file
// owned by root, all timestamps 0, no extended attributes, zstd level 3.
func SquashArgs(dir, out string) []string {
	return []string{dir, out, "-noappend", "-all-root", "-mkfs-time", "0", "-all-time", "0",
		"-no-xattrs", "-comp", "zstd", "-Xcompression-level", "3", "-quiet", "-no-progress"}
}

// Squash packs dir into the squashfs image out with mksquashfs (squashfs-tools).
func Squash(ctx context.Context, dir, out string) error {
	if _, err := exec.LookPath("mksquashfs"); err != nil {
		return fmt.Errorf("rootfs: mksquashfs not found: install squashfs-tools (make setup): %w", err)
	}
	if err := os.Remove(out); err != nil && !os.IsNotExist(err) {
		return fmt.Errorf("rootfs: %w", err)
	}
	cmd := exec.CommandContext(ctx, "mksquashfs", SquashArgs(dir, out)...)
	// The arguments fix every time; mksquashfs refuses SOURCE_DATE_EPOCH beside them.
	cmd.Env = slices.DeleteFunc(os.Environ(), func(kv string) bool { return strings.HasPrefix(kv, "SOURCE_DATE_EPOCH=") })
	var output bytes.Buffer
	cmd.Stdout, cmd.Stderr = &output, &output
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("rootfs: mksquashfs: %w: %s", err, strings.TrimSpace(output.String()))
	}
	return nil
}
