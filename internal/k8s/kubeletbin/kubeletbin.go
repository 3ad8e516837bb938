// Package kubeletbin finds the kubelet program that machine.kubelet.image names. The image
// bundled with the node is the node's own /usr/bin/kubelet; any other image (another
// Kubernetes version, during plinthctl upgrade-k8s) must be in containerd's image store, and
// its kubelet is copied out of it once, keyed by the image's digest, and run from the copy.
package kubeletbin

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// Store is containerd's image store, as far as the kubelet needs it: a seam for tests, and
// for the two ways of reaching containerd (ctr on the node).
type Store interface {
	// Digest returns the digest of image, or ErrNoImage when the store does not have it.
	Digest(ctx context.Context, image string) (string, error)
	// Mount mounts image's root file system read-only at dir; the returned function
	// unmounts it.
	Mount(ctx context.Context, image, dir string) (unmount func(context.Context) error, err error)
}

// ErrNoImage is returned by Store.Digest for an image the store does not hold.
var ErrNoImage = errors.New("the image is not in the node's image store")

// Finder finds the kubelet program for an image.
type Finder struct {
	// Bundled is the kubelet image bundled with the node, whose program is Own.
	Bundled, Own string
	// Dir keeps the programs copied out of other images (on /var: they outlive a reboot).
	Dir   string
	Store Store
}

// candidates are where an image may keep its kubelet, relative to its root.
var candidates = []string{"usr/bin/kubelet", "usr/local/bin/kubelet", "bin/kubelet", "kubelet"}

// Path returns the kubelet program to run for image, copying it out of the image first when
// it is not the bundled one and was not copied before. Copies of other images are removed
// (all of them for the bundled image).
func (f Finder) Path(ctx context.Context, image string, logs io.Writer) (string, error) {
	if image == "" || image == f.Bundled {
		f.prune("", logs) // copies of other versions are no longer needed
		return f.Own, nil
	}
	digest, err := f.Store.Digest(ctx, image)
	if errors.Is(err, ErrNoImage) {
		return "", fmt.Errorf("machine.kubelet.image %s: %w: import it (its Kubernetes version's image bundle), or set the bundled %s", image, err, f.Bundled)
	}
	if err != nil {
		return "", fmt.Errorf("machine.kubelet.image %s: %w", image, err)
	}
	_, hex, ok := strings.Cut(digest, ":")
	if !ok || hex == "" || strings.ContainsAny(hex, "/.") {
		return "", fmt.Errorf("machine.kubelet.image %s: unexpected digest %q", image, digest)
	}
	dir := filepath.Join(f.Dir, hex)
	prog := filepath.Join(dir, "kubelet")
	if st, err := os.Stat(prog); err == nil && st.Mode().IsRegular() {
		f.prune(hex, logs)
		return prog, nil
	}
	mnt := filepath.Join(f.Dir, "mnt-"+hex)
	if err := os.MkdirAll(mnt, 0o700); err != nil {
		return "", err
	}
	defer os.Remove(mnt)
	unmount, err := f.Store.Mount(ctx, image, mnt)
	if err != nil {
		return "", fmt.Errorf("machine.kubelet.image %s: mount: %w", image, err)
	}
	defer func() {
		uctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		defer cancel()
		if err := unmount(uctx); err != nil {
			fmt.Fprintf(logs, "unmount %s: %v\n", mnt, err)
		}
	}()
	src, err := find(mnt)
	if err != nil {
		return "", fmt.Errorf("machine.kubelet.image %s: %w", image, err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	if err := copyFile(src, prog); err != nil {
		return "", fmt.Errorf("machine.kubelet.image %s: %w", image, err)
	}
	fmt.Fprintf(logs, "kubelet of %s (%s) copied to %s\n", image, digest, prog)
	f.prune(hex, logs)
	return prog, nil
}

// prune removes the copies of other images than the one whose digest is keep.
func (f Finder) prune(keep string, logs io.Writer) {
	entries, err := os.ReadDir(f.Dir)
	if err != nil {
		return
	}
	for _, e := range entries {
		if e.Name() == keep || strings.HasPrefix(e.Name(), "mnt-") {
			continue
		}
		if err := os.RemoveAll(filepath.Join(f.Dir, e.Name())); err != nil {
			fmt.Fprintf(logs, "remove an old kubelet: %v\n", err)
		}
	}
}

// find returns the path, under root, of the regular file the image's kubelet is, following
// symbolic links inside root (an absolute link is relative to root, not to this node).
func find(root string) (string, error) {
	for _, c := range candidates {
		p, err := resolve(root, c)
		if err != nil {
			continue
		}
		if st, err := os.Stat(p); err == nil && st.Mode().IsRegular() {
			return p, nil
		}
	}
	return "", fmt.Errorf("the image has no kubelet program (looked for /%s)", strings.Join(candidates, ", /"))
}

// resolve follows the symbolic links of rel inside root, at most 8 deep.
func resolve(root, rel string) (string, error) {
	for range 8 {
		p := filepath.Join(root, rel)
		st, err := os.Lstat(p)
		if err != nil {
			return "", err
		}
		if st.Mode()&os.ModeSymlink == 0 {
			return p, nil
		}
		target, err := os.Readlink(p)
		if err != nil {
			return "", err
		}
		if filepath.IsAbs(target) {
			rel = filepath.Clean(target)
		} else {
			rel = filepath.Join(filepath.Dir(rel), target)
		}
		if rel == ".." || strings.HasPrefix(rel, "../") {
			return "", fmt.Errorf("%s leads out of the image", p)
		}
	}
	return "", fmt.Errorf("too many links at %s", rel)
}

// copyFile copies src to dst as an executable, through a temporary file, so that an
// interrupted copy never leaves a partial program at dst.
func copyFile(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	tmp, err := os.CreateTemp(filepath.Dir(dst), ".kubelet-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := io.Copy(tmp, in); err != nil {
		tmp.Close()
		return fmt.Errorf("copy the kubelet: %w", err)
	}
	if err := tmp.Chmod(0o755); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), dst)
}

// ParseImageList returns the digest of image from the output of
// `ctr images ls name==IMAGE` (REF TYPE DIGEST ... columns), or ErrNoImage.
func ParseImageList(out []byte, image string) (string, error) {
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) >= 3 && fields[0] == image && strings.HasPrefix(fields[2], "sha256:") {
			return fields[2], nil
		}
	}
	return "", ErrNoImage
}
