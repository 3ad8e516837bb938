package osimage

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/plinthos/plinth/internal/atomicfile"
	"github.com/plinthos/plinth/internal/osimage/apt"
	"github.com/plinthos/plinth/internal/osimage/deb"
	"github.com/plinthos/plinth/internal/osimage/kernellock"
)

const arch = "amd64"

// bumpHint is how to move the pin, said whenever the pinned kernel cannot be had.
const bumpHint = "Debian keeps only the newest kernel of a suite: run `apt-get update && make kernel-bump` to pin the newest one in boot/kernel.lock, then rebuild"

// Kernel is a pinned kernel, fetched, verified and unpacked in the cache.
type Kernel struct {
	Lock kernellock.Lock
	// Vmlinuz is the kernel image's path.
	Vmlinuz string
	// ModulesDir is lib/modules/<abi>: the module tree with modules.order and modules.builtin.
	ModulesDir string
}

// FetchKernel downloads the pinned package into cacheDir with apt-get (unless cached),
// checks its sha256 against the lock, and unpacks the kernel image and the module tree
// into cacheDir/<package>_<version>/ (once: a later call reuses it).
func FetchKernel(ctx context.Context, lock kernellock.Lock, cacheDir string) (Kernel, error) {
	abi := lock.ABI()
	modPrefix := "lib/modules/" + abi + "/"
	dir, err := fetchPackage(ctx, lock, cacheDir, "boot/vmlinuz-"+abi, bumpHint, func(name string) bool {
		if name == "boot/vmlinuz-"+abi {
			return true
		}
		rest, ok := strings.CutPrefix(name, modPrefix)
		return ok && (rest == "modules.order" || rest == "modules.builtin" || rest == "modules.dep" ||
			strings.HasPrefix(rest, "kernel/"))
	})
	if err != nil {
		return Kernel{}, err
	}
	return Kernel{Lock: lock, Vmlinuz: filepath.Join(dir, "boot", "vmlinuz-"+abi), ModulesDir: filepath.Join(dir, "lib", "modules", abi)}, nil
}

// BootloaderPath is where the systemd-boot-efi package has the boot loader.
const BootloaderPath = "usr/lib/systemd/boot/efi/systemd-bootx64.efi"

// FetchBootloader fetches the pinned boot loader package (boot/bootloader.lock) like
// FetchKernel and returns the path of systemd-bootx64.efi in the cache.
func FetchBootloader(ctx context.Context, lock kernellock.Lock, cacheDir string) (string, error) {
	hint := "pin a version apt offers in boot/bootloader.lock (apt-cache policy " + lock.Package + ")"
	dir, err := fetchPackage(ctx, lock, cacheDir, BootloaderPath, hint, func(name string) bool { return name == BootloaderPath })
	if err != nil {
		return "", err
	}
	return filepath.Join(dir, BootloaderPath), nil
}

// fetchPackage downloads the pinned package into cacheDir with apt-get (unless cached),
// checks its sha256 against the lock, and unpacks the files keep selects (must among them)
// into cacheDir/<package>_<version>/, once: a later call reuses it.
func fetchPackage(ctx context.Context, lock kernellock.Lock, cacheDir, must, hint string, keep func(string) bool) (string, error) {
	dir := filepath.Join(cacheDir, lock.Package+"_"+lock.Version)
	marker := filepath.Join(dir, ".sha256")
	if b, err := os.ReadFile(marker); err == nil && strings.TrimSpace(string(b)) == lock.SHA256 {
		return dir, nil
	}
	debPath, err := apt.Download(ctx, lock.Package, lock.Version, arch, cacheDir)
	if errors.Is(err, apt.ErrNotAvailable) {
		return "", fmt.Errorf("pinned %s=%s is no longer offered by apt (%v). %s", lock.Package, lock.Version, err, hint)
	}
	if err != nil {
		return "", fmt.Errorf("fetch pinned %s: %w", lock.Package, err)
	}
	sum, err := fileSHA256(debPath)
	if err != nil {
		return "", err
	}
	if sum != lock.SHA256 {
		return "", fmt.Errorf("%s has sha256 %s but the lock pins %s: delete it and retry; if apt keeps serving it, the pin is wrong", debPath, sum, lock.SHA256)
	}
	tmp := dir + ".tmp"
	if err := os.RemoveAll(tmp); err != nil {
		return "", fmt.Errorf("package cache: %w", err)
	}
	if _, err = deb.Extract(ctx, debPath, tmp, keep); err != nil {
		os.RemoveAll(tmp)
		return "", fmt.Errorf("unpack %s: %w", lock.Package, err)
	}
	if _, err := os.Stat(filepath.Join(tmp, must)); err != nil {
		os.RemoveAll(tmp)
		return "", fmt.Errorf("%s has no %s: is it the right package?", debPath, must)
	}
	if err := os.WriteFile(filepath.Join(tmp, ".sha256"), []byte(lock.SHA256+"\n"), 0o644); err != nil {
		return "", fmt.Errorf("package cache: %w", err)
	}
	if err := os.RemoveAll(dir); err != nil {
		return "", fmt.Errorf("package cache: %w", err)
	}
	if err := os.Rename(tmp, dir); err != nil {
		return "", fmt.Errorf("package cache: %w", err)
	}
	return dir, nil
}

// NewestKernel asks apt for the newest kernel that meta (a metapackage such as
// linux-image-cloud-amd64) depends on, and returns the lock that pins it.
func NewestKernel(ctx context.Context, meta string) (kernellock.Lock, error) {
	v, err := apt.Candidate(ctx, meta)
	if err != nil {
		return kernellock.Lock{}, fmt.Errorf("newest kernel: %w", err)
	}
	m, err := apt.Show(ctx, meta, v)
	if err != nil {
		return kernellock.Lock{}, fmt.Errorf("newest kernel: %w", err)
	}
	var pkg, ver string
	for p, pv := range apt.ExactDepends(m["Depends"]) {
		if strings.HasPrefix(p, "linux-image-") {
			pkg, ver = p, pv
		}
	}
	if pkg == "" {
		return kernellock.Lock{}, fmt.Errorf("newest kernel: %s=%s depends on no linux-image-<abi> (Depends: %s)", meta, v, m["Depends"])
	}
	s, err := apt.Show(ctx, pkg, ver)
	if err != nil {
		return kernellock.Lock{}, fmt.Errorf("newest kernel: %w", err)
	}
	l := kernellock.Lock{Meta: meta, Package: pkg, Version: ver, SHA256: strings.ToLower(s["SHA256"])}
	if err := l.Validate(); err != nil {
		return kernellock.Lock{}, fmt.Errorf("newest kernel: %w", err)
	}
	return l, nil
}

// BumpKernel rewrites the lock at path to the newest kernel of its metapackage and returns
// the old and new pins.
func BumpKernel(ctx context.Context, path string) (old, bumped kernellock.Lock, err error) {
	old, err = kernellock.Read(path)
	if err != nil {
		return old, bumped, err
	}
	bumped, err = NewestKernel(ctx, old.Meta)
	if err != nil {
		return old, bumped, err
	}
	b, err := bumped.Marshal()
	if err != nil {
		return old, bumped, err
	}
	if err := atomicfile.Write(path, b, 0o644); err != nil {
		return old, bumped, fmt.Errorf("write %s: %w", path, err)
	}
	return old, bumped, nil
}

func fileSHA256(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", fmt.Errorf("sha256: %w", err)
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", fmt.Errorf("sha256 %s: %w", path, err)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}
