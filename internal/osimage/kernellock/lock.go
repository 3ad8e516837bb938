// Package kernellock reads and writes boot/kernel.lock, the pin of the Debian kernel package
// the OS image boots: its name, exact version and the .deb's sha256.
//
// The format is line based: `key = value`, blank lines and lines starting with `#` are
// ignored. Keys: meta (the Debian metapackage that follows the newest kernel, used to bump
// the pin), package, version, sha256. Every key is required and appears once.
package kernellock

import (
	"bufio"
	"bytes"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"strings"
)

// Lock pins one Debian kernel package.
type Lock struct {
	// Meta is the metapackage whose newest version depends on the newest kernel package,
	// e.g. linux-image-cloud-amd64. Bumping the pin follows it.
	Meta string
	// Package is the versioned kernel package, e.g. linux-image-6.1.0-57-cloud-amd64.
	Package string
	// Version is the package's exact Debian version, e.g. 6.1.192-3.
	Version string
	// SHA256 is the hex sha256 of the .deb file.
	SHA256 string
}

const packagePrefix = "linux-image-"

// ABI is the kernel release the package installs, e.g. 6.1.0-57-cloud-amd64: the name of
// its /lib/modules directory and the suffix of boot/vmlinuz-*.
func (l Lock) ABI() string { return strings.TrimPrefix(l.Package, packagePrefix) }

// Validate says what is missing or malformed in a kernel pin.
func (l Lock) Validate() error {
	if l.Meta == "" {
		return fmt.Errorf("kernel lock: meta is missing")
	}
	if err := l.ValidatePin(); err != nil {
		return err
	}
	if !strings.HasPrefix(l.Package, packagePrefix) || l.ABI() == "" {
		return fmt.Errorf("kernel lock: package %q does not start with %s<abi>", l.Package, packagePrefix)
	}
	return nil
}

// ValidatePin says what is missing or malformed in the pin of any package (meta optional).
func (l Lock) ValidatePin() error {
	for _, f := range []struct{ key, val string }{{"meta", l.Meta}, {"package", l.Package}, {"version", l.Version}, {"sha256", l.SHA256}} {
		if f.val == "" && f.key != "meta" {
			return fmt.Errorf("lock: %s is missing", f.key)
		}
		if strings.ContainsAny(f.val, " \t=#") {
			return fmt.Errorf("lock: %s %q contains a space, '=' or '#'", f.key, f.val)
		}
	}
	if b, err := hex.DecodeString(l.SHA256); err != nil || len(b) != 32 {
		return fmt.Errorf("lock: sha256 %q is not 64 hex digits", l.SHA256)
	}
	return nil
}

// Parse reads a kernel lock and validates it.
func Parse(r io.Reader) (Lock, error) {
	l, err := parse(r)
	if err != nil {
		return l, err
	}
	return l, l.Validate()
}

// ParsePin reads the lock of any Debian package (such as boot/bootloader.lock): the same
// format, meta optional.
func ParsePin(r io.Reader) (Lock, error) {
	l, err := parse(r)
	if err != nil {
		return l, err
	}
	return l, l.ValidatePin()
}

func parse(r io.Reader) (Lock, error) {
	var l Lock
	fields := map[string]*string{"meta": &l.Meta, "package": &l.Package, "version": &l.Version, "sha256": &l.SHA256}
	seen := map[string]bool{}
	sc := bufio.NewScanner(r)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		key, val, ok := strings.Cut(line, "=")
		if !ok {
			return Lock{}, fmt.Errorf("lock line %d: want key = value, got %q", n, line)
		}
		key, val = strings.TrimSpace(key), strings.TrimSpace(val)
		dst, known := fields[key]
		if !known {
			return Lock{}, fmt.Errorf("lock line %d: unknown key %q (known: meta, package, version, sha256)", n, key)
		}
		if seen[key] {
			return Lock{}, fmt.Errorf("lock line %d: %s given twice", n, key)
		}
		seen[key] = true
		*dst = val
	}
	if err := sc.Err(); err != nil {
		return Lock{}, fmt.Errorf("read lock: %w", err)
	}
	l.SHA256 = strings.ToLower(l.SHA256)
	return l, nil
}

// Read parses the kernel lock file at path.
func Read(path string) (Lock, error) { return readWith(path, Parse) }

// ReadPin parses the package lock file at path (ParsePin).
func ReadPin(path string) (Lock, error) { return readWith(path, ParsePin) }

func readWith(path string, parse func(io.Reader) (Lock, error)) (Lock, error) {
	f, err := os.Open(path)
	if err != nil {
		return Lock{}, fmt.Errorf("open lock: %w", err)
	}
	defer f.Close()
	l, err := parse(f)
	if err != nil {
		return Lock{}, fmt.Errorf("%s: %w", path, err)
	}
	return l, nil
}

const header = `# The kernel Plinth boots, pinned (see docs/os-image.md).
# Format: key = value; '#' starts a comment line. Keys:
#   meta     Debian metapackage that follows the newest kernel (used by make kernel-bump)
#   package  the versioned kernel package: linux-image-<abi>
#   version  its exact Debian version (apt-get download <package>=<version>)
#   sha256   sha256 of the .deb, checked before anything is extracted
# Bump with: apt-get update && make kernel-bump
`

// Marshal renders the lock in its canonical form, with the format described in a header.
func (l Lock) Marshal() ([]byte, error) {
	if err := l.Validate(); err != nil {
		return nil, err
	}
	var b bytes.Buffer
	b.WriteString(header)
	fmt.Fprintf(&b, "meta = %s\npackage = %s\nversion = %s\nsha256 = %s\n", l.Meta, l.Package, l.Version, l.SHA256)
	return b.Bytes(), nil
}
