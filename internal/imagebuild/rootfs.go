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
	"sort"
	"strings"
)

// Rootfs is a directory being filled as an image's root file system. Modes are set
// explicitly (never left to the umask) so that the tree, and the archive written from it,
// depend only on what was put in.
type Rootfs struct {
	Dir string
	// hostFiles are the build machine's own files copied in (programs, libraries and their
	// symlinks, trees): inputs that the payload's go.mod does not pin (see HostFiles).
	hostFiles map[string]bool
}

// HostFiles lists, sorted, the host paths copied in by CopyProgram, CopyLibraries and
// CopyTree (payload binaries copied with CopyFile are not host files: go.mod pins them).
func (r *Rootfs) HostFiles() []string {
	out := make([]string, 0, len(r.hostFiles))
	for p := range r.hostFiles {
		out = append(out, p)
	}
	sort.Strings(out)
	return out
}

func (r *Rootfs) addHostFile(p string) {
	if r.hostFiles == nil {
		r.hostFiles = map[string]bool{}
	}
	r.hostFiles[p] = true
}

// mkdirAll creates dir and its missing parents with mode 0755, whatever the umask.
func mkdirAll(dir string) error {
	if st, err := os.Stat(dir); err == nil {
		if !st.IsDir() {
			return fmt.Errorf("%s is not a directory", dir)
		}
		return nil
	}
	if parent := filepath.Dir(dir); parent != dir {
		if err := mkdirAll(parent); err != nil {
			return err
		}
	}
	if err := os.Mkdir(dir, 0o755); err != nil && !os.IsExist(err) {
		return err
	}
	return os.Chmod(dir, 0o755)
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
	if err := mkdirAll(filepath.Dir(p)); err != nil {
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
	if err := mkdirAll(p); err != nil {
		return err
	}
	return os.Chmod(p, mode)
}

// Symlink creates imagePath pointing at target (as written, relative or absolute).
func (r *Rootfs) Symlink(target, imagePath string) error {
	p := r.host(imagePath)
	if err := mkdirAll(filepath.Dir(p)); err != nil {
		return err
	}
	_ = os.Remove(p)
	return os.Symlink(target, p)
}

// CopyFile copies a host file to imagePath. Symlinks on the host path are followed. The
// mode is normalized, so that the umask the file was built or installed under does not
// show: 0755 when the host file is executable by anyone, 0644 otherwise (no setuid).
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
	mode := os.FileMode(0o644)
	if st.Mode().Perm()&0o111 != 0 {
		mode = 0o755
	}
	p := r.host(imagePath)
	if err := mkdirAll(filepath.Dir(p)); err != nil {
		return err
	}
	// A link already at imagePath is replaced, not written through.
	if st, err := os.Lstat(p); err == nil && st.Mode()&fs.ModeSymlink != 0 {
		if err := os.Remove(p); err != nil {
			return err
		}
	}
	dst, err := os.OpenFile(p, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, mode)
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
	return os.Chmod(p, mode)
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
		if !d.IsDir() {
			r.addHostFile(p)
		}
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
	r.addHostFile(hostPath)
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
		r.addHostFile(hostPath)
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
