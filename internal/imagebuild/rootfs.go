// Package imagebuild assembles file system trees for Plinth's images (the node image and
// the images of the cluster's bundle) and writes them as reproducible tar archives. Host
// programs that are dynamically linked are copied with the shared libraries they load.
package imagebuild

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"regexp"
	"strings"
)

// Rootfs is a directory being filled as an image's root file system.
type Rootfs struct {
	Dir string
}

// NewRootfs creates an empty root in dir (which must not exist or be empty).
func NewRootfs(dir string) (*Rootfs, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("create rootfs: %w", err)
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	if len(entries) > 0 {
		return nil, fmt.Errorf("rootfs %s is not empty", dir)
	}
	return &Rootfs{Dir: dir}, nil
}

// host maps an image path to its place under Dir.
func (r *Rootfs) host(imagePath string) string {
	return filepath.Join(r.Dir, filepath.FromSlash(path.Clean("/"+imagePath)))
}

// WriteFile writes data at imagePath with mode.
func (r *Rootfs) WriteFile(imagePath string, data []byte, mode os.FileMode) error {
	p := r.host(imagePath)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return err
	}
	if err := os.WriteFile(p, data, mode); err != nil {
		return err
	}
	return os.Chmod(p, mode) // not subject to the umask
}

// Mkdir creates a directory at imagePath.
func (r *Rootfs) Mkdir(imagePath string, mode os.FileMode) error {
	p := r.host(imagePath)
	if err := os.MkdirAll(p, mode); err != nil {
		return err
	}
	return os.Chmod(p, mode)
}

// Symlink creates imagePath pointing at target (as written, relative or absolute).
func (r *Rootfs) Symlink(target, imagePath string) error {
	p := r.host(imagePath)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return err
	}
	_ = os.Remove(p)
	return os.Symlink(target, p)
}

// CopyFile copies a host file to imagePath, keeping its mode. Symlinks on the host path
// are followed.
func (r *Rootfs) CopyFile(hostPath, imagePath string) error {
	src, err := os.Open(hostPath)
	if err != nil {
		return err
	}
	defer src.Close()
	st, err := src.Stat()
	if err != nil {
		return err
	}
	if !st.Mode().IsRegular() {
		return fmt.Errorf("%s is not a regular file", hostPath)
	}
	p := r.host(imagePath)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return err
	}
	dst, err := os.OpenFile(p, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, st.Mode().Perm())
	if err != nil {
		return err
	}
	if _, err := io.Copy(dst, src); err != nil {
		dst.Close()
		return fmt.Errorf("copy %s: %w", hostPath, err)
	}
	if err := dst.Close(); err != nil {
		return err
	}
	return os.Chmod(p, st.Mode().Perm())
}

// CopyTree copies a host directory tree to imagePath, keeping symlinks as links.
func (r *Rootfs) CopyTree(hostDir, imagePath string) error {
	return filepath.WalkDir(hostDir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(hostDir, p)
		if err != nil {
			return err
		}
		dest := path.Join(imagePath, filepath.ToSlash(rel))
		switch {
		case d.Type()&fs.ModeSymlink != 0:
			target, err := os.Readlink(p)
			if err != nil {
				return err
			}
			return r.Symlink(target, dest)
		case d.IsDir():
			return r.Mkdir(dest, 0o755)
		case d.Type().IsRegular():
			return r.CopyFile(p, dest)
		}
		return nil // sockets, devices: not image material
	})
}

// CopyProgram copies a host program to imagePath together with the shared libraries and
// the dynamic loader it needs, each at the same path as on the host (so the loader finds
// them). Symlinked library names are recreated as links.
func (r *Rootfs) CopyProgram(ctx context.Context, hostPath, imagePath string) error {
	if err := r.CopyFile(hostPath, imagePath); err != nil {
		return err
	}
	return r.CopyLibraries(ctx, hostPath)
}

// CopyLibraries copies the shared libraries a host program or library loads, at their
// host paths.
func (r *Rootfs) CopyLibraries(ctx context.Context, hostPath string) error {
	libs, err := SharedLibraries(ctx, hostPath)
	if err != nil {
		return err
	}
	for _, lib := range libs {
		if err := r.copyKeepingLinks(lib); err != nil {
			return fmt.Errorf("%s needs %s: %w", hostPath, lib, err)
		}
	}
	return nil
}

// copyKeepingLinks copies a host path to the same image path; when it is a symlink, the
// link is recreated and its target copied too.
func (r *Rootfs) copyKeepingLinks(hostPath string) error {
	for range 16 {
		st, err := os.Lstat(hostPath)
		if err != nil {
			return err
		}
		if st.Mode()&fs.ModeSymlink == 0 {
			return r.CopyFile(hostPath, hostPath)
		}
		target, err := os.Readlink(hostPath)
		if err != nil {
			return err
		}
		if err := r.Symlink(target, hostPath); err != nil {
			return err
		}
		if !filepath.IsAbs(target) {
			target = filepath.Join(filepath.Dir(hostPath), target)
		}
		hostPath = target
	}
	return fmt.Errorf("too many levels of symbolic links at %s", hostPath)
}

var lddLine = regexp.MustCompile(`^\s*(?:\S+\s+=>\s+)?(/\S+)\s+\(0x[0-9a-f]+\)`)

// SharedLibraries lists the absolute paths of the shared libraries and loader a program
// loads at start, as ldd reports them; none for a static program.
func SharedLibraries(ctx context.Context, program string) ([]string, error) {
	out, err := exec.CommandContext(ctx, "ldd", program).CombinedOutput()
	text := string(out)
	if err != nil {
		if strings.Contains(text, "not a dynamic executable") || strings.Contains(text, "statically linked") {
			return nil, nil
		}
		return nil, fmt.Errorf("ldd %s: %v: %s", program, err, strings.TrimSpace(text))
	}
	var libs []string
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		if strings.Contains(sc.Text(), "not found") {
			return nil, fmt.Errorf("ldd %s: %s", program, strings.TrimSpace(sc.Text()))
		}
		if m := lddLine.FindStringSubmatch(sc.Text()); m != nil {
			libs = append(libs, m[1])
		}
	}
	return libs, sc.Err()
}
