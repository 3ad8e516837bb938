// Package artifact is the OS upgrade artifact: what `plinthctl upgrade --image` streams to a
// node. It is an uncompressed tar (the root filesystem is squashfs, compressed already) whose
// first member, artifact.json, names the version and each file's size and SHA-256, followed
// by the kernel, the initramfs and the root filesystem in that order. A reader verifies each
// file's digest while it streams, so a node can write the root filesystem straight to its
// slot and refuse the artifact before arming anything.
//
// The digests protect against a corrupted or truncated transfer, not against a malicious
// sender: who may upgrade a node is the node API's role check (os:admin).
package artifact

import (
	"archive/tar"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"time"
)

// Format is the artifact format this package writes and reads.
const Format = 1

// Member names, in the order they appear.
const (
	ManifestName  = "artifact.json"
	KernelName    = "vmlinuz"
	InitramfsName = "initramfs.img"
	RootfsName    = "rootfs.squashfs"
)

// FileNames are the payload members in their order.
var FileNames = []string{KernelName, InitramfsName, RootfsName}

// maxSmall bounds the kernel and the initramfs (they are kept in memory and go to the EFI
// partition); maxManifest bounds artifact.json.
const (
	maxSmall    = 256 << 20
	maxManifest = 1 << 20
)

// File is one payload member.
type File struct {
	Size   int64  `json:"size"`
	SHA256 string `json:"sha256"`
}

// Manifest is artifact.json.
type Manifest struct {
	Format  int    `json:"format"`
	Version string `json:"version"`
	// Profile is the root filesystem's profile (os or k8s).
	Profile string `json:"profile"`
	// KernelRelease is the kernel's uname -r.
	KernelRelease string          `json:"kernelRelease"`
	Files         map[string]File `json:"files"`
}

var (
	sha256Hex   = regexp.MustCompile(`^[0-9a-f]{64}$`)
	versionSafe = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._+~-]{0,63}$`)
)

// Validate says what is wrong with m.
func (m Manifest) Validate() error {
	if m.Format != Format {
		return fmt.Errorf("upgrade artifact: format %d, this node reads format %d", m.Format, Format)
	}
	if !versionSafe.MatchString(m.Version) {
		return fmt.Errorf("upgrade artifact: version %q is not a version (letters, digits, . _ + ~ -)", m.Version)
	}
	if len(m.Files) != len(FileNames) {
		return fmt.Errorf("upgrade artifact: it lists %d files, want %v", len(m.Files), FileNames)
	}
	for _, name := range FileNames {
		f, ok := m.Files[name]
		if !ok {
			return fmt.Errorf("upgrade artifact: no %s", name)
		}
		if f.Size <= 0 {
			return fmt.Errorf("upgrade artifact: %s is empty", name)
		}
		if name != RootfsName && f.Size > maxSmall {
			return fmt.Errorf("upgrade artifact: %s is %d bytes, more than %d", name, f.Size, maxSmall)
		}
		if !sha256Hex.MatchString(f.SHA256) {
			return fmt.Errorf("upgrade artifact: %s has no SHA-256 (%q)", name, f.SHA256)
		}
	}
	return nil
}

// Write writes the artifact of m's version from dir, which holds vmlinuz, initramfs.img
// and rootfs.squashfs (an OS image directory), to w. The files' sizes and digests are
// computed here; m.Files is ignored. Members get a fixed time, so equal files give an
// equal artifact.
func Write(w io.Writer, dir string, m Manifest) error {
	m.Format = Format
	m.Files = map[string]File{}
	for _, name := range FileNames {
		f, err := describe(filepath.Join(dir, name))
		if err != nil {
			return err
		}
		m.Files[name] = f
	}
	if err := m.Validate(); err != nil {
		return err
	}
	manifest, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return fmt.Errorf("upgrade artifact: %w", err)
	}
	tw := tar.NewWriter(w)
	stamp := time.Date(1980, 1, 1, 0, 0, 0, 0, time.UTC)
	header := func(name string, size int64) *tar.Header {
		return &tar.Header{Name: name, Size: size, Mode: 0o644, ModTime: stamp, Typeflag: tar.TypeReg, Format: tar.FormatPAX}
	}
	if err := tw.WriteHeader(header(ManifestName, int64(len(manifest)))); err != nil {
		return fmt.Errorf("upgrade artifact: %w", err)
	}
	if _, err := tw.Write(manifest); err != nil {
		return fmt.Errorf("upgrade artifact: %w", err)
	}
	for _, name := range FileNames {
		if err := copyMember(tw, header(name, m.Files[name].Size), filepath.Join(dir, name)); err != nil {
			return err
		}
	}
	if err := tw.Close(); err != nil {
		return fmt.Errorf("upgrade artifact: %w", err)
	}
	return nil
}

func copyMember(tw *tar.Writer, h *tar.Header, path string) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("upgrade artifact: %w", err)
	}
	defer f.Close()
	if err := tw.WriteHeader(h); err != nil {
		return fmt.Errorf("upgrade artifact: %w", err)
	}
	if n, err := io.Copy(tw, f); err != nil || n != h.Size {
		return fmt.Errorf("upgrade artifact: %s: copied %d of %d bytes: %v", path, n, h.Size, err)
	}
	return nil
}

func describe(path string) (File, error) {
	f, err := os.Open(path)
	if err != nil {
		return File{}, fmt.Errorf("upgrade artifact: %w", err)
	}
	defer f.Close()
	h := sha256.New()
	n, err := io.Copy(h, f)
	if err != nil {
		return File{}, fmt.Errorf("upgrade artifact: %s: %w", path, err)
	}
	return File{Size: n, SHA256: hex.EncodeToString(h.Sum(nil))}, nil
}

// Sink takes the artifact apart as Read streams it.
type Sink interface {
	// Accept sees the manifest (valid already) before any payload; an error stops Read
	// before anything is written.
	Accept(m Manifest) error
	// Take consumes a payload member; r ends at the member's end. What it wrote must not be
	// used until Read returns nil: the digest is checked after Take returns.
	Take(name string, f File, r io.Reader) error
}

// Read reads an artifact from r into s, checking each member's size and SHA-256 against the
// manifest and that nothing else follows. It returns the manifest.
func Read(r io.Reader, s Sink) (Manifest, error) {
	var m Manifest
	tr := tar.NewReader(r)
	h, err := next(tr, ManifestName)
	if err != nil {
		return m, err
	}
	if h.Size > maxManifest {
		return m, fmt.Errorf("upgrade artifact: %s is %d bytes: not an upgrade artifact", ManifestName, h.Size)
	}
	data, err := io.ReadAll(tr)
	if err != nil {
		return m, fmt.Errorf("upgrade artifact: %s: %w", ManifestName, err)
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&m); err != nil {
		return m, fmt.Errorf("upgrade artifact: %s: %w", ManifestName, err)
	}
	if err := m.Validate(); err != nil {
		return m, err
	}
	if err := s.Accept(m); err != nil {
		return m, err
	}
	for _, name := range FileNames {
		h, err := next(tr, name)
		if err != nil {
			return m, err
		}
		want := m.Files[name]
		if h.Size != want.Size {
			return m, fmt.Errorf("upgrade artifact: %s is %d bytes, the manifest says %d", name, h.Size, want.Size)
		}
		sum := sha256.New()
		body := io.TeeReader(tr, sum)
		if err := s.Take(name, want, body); err != nil {
			return m, err
		}
		// What Take left unread still counts (and a short stream is an error here).
		if _, err := io.Copy(io.Discard, body); err != nil {
			return m, fmt.Errorf("upgrade artifact: %s: %w", name, err)
		}
		if got := hex.EncodeToString(sum.Sum(nil)); got != want.SHA256 {
			return m, fmt.Errorf("upgrade artifact: %s has SHA-256 %s, the manifest says %s: the artifact is corrupt", name, got, want.SHA256)
		}
	}
	if h, err := tr.Next(); err == nil {
		return m, fmt.Errorf("upgrade artifact: unexpected member %q after %s", h.Name, RootfsName)
	} else if !errors.Is(err, io.EOF) {
		return m, fmt.Errorf("upgrade artifact: after %s: %w", RootfsName, err)
	}
	return m, nil
}

func next(tr *tar.Reader, want string) (*tar.Header, error) {
	h, err := tr.Next()
	if errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("upgrade artifact: it ends before %s (truncated?)", want)
	}
	if err != nil {
		return nil, fmt.Errorf("upgrade artifact: before %s: %w (is it an upgrade artifact? build one with make image-os)", want, err)
	}
	if h.Name != want || h.Typeflag != tar.TypeReg {
		return nil, fmt.Errorf("upgrade artifact: member %q where %s was expected", h.Name, want)
	}
	return h, nil
}
