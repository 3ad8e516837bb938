// Package deb reads Debian binary packages: the ar container and its data.tar.* member,
// extracting chosen files without dpkg.
package deb

import (
	"archive/tar"
	"bufio"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/klauspost/compress/zstd"
	"github.com/ulikunitz/xz"
)

const arMagic = "!<arch>\n"

// Member is one file of an ar archive.
type Member struct {
	Name string
	Size int64
}

// ArReader reads the members of an ar archive in order.
type ArReader struct {
	r    *bufio.Reader
	data int64 // unread data bytes of the current member
	pad  int64 // padding byte after the current member's data (0 or 1)
}

// NewArReader checks the ar magic.
func NewArReader(r io.Reader) (*ArReader, error) {
	br := bufio.NewReader(r)
	magic := make([]byte, len(arMagic))
	if _, err := io.ReadFull(br, magic); err != nil || string(magic) != arMagic {
		return nil, errors.New("not an ar archive (a .deb starts with !<arch>)")
	}
	return &ArReader{r: br}, nil
}

// Next skips the rest of the current member and returns the next one; io.EOF at the end.
func (a *ArReader) Next() (Member, error) {
	if skip := a.data + a.pad; skip > 0 {
		if _, err := io.CopyN(io.Discard, a.r, skip); err != nil {
			return Member{}, fmt.Errorf("ar: skip member: %w", err)
		}
	}
	a.data, a.pad = 0, 0
	var h [60]byte
	if _, err := io.ReadFull(a.r, h[:]); err != nil {
		if err == io.EOF {
			return Member{}, io.EOF
		}
		return Member{}, fmt.Errorf("ar: read header: %w", err)
	}
	if string(h[58:60]) != "`\n" {
		return Member{}, errors.New("ar: bad header terminator")
	}
	size, err := strconv.ParseInt(strings.TrimSpace(string(h[48:58])), 10, 64)
	if err != nil || size < 0 {
		return Member{}, fmt.Errorf("ar: bad member size %q", h[48:58])
	}
	name := strings.TrimSuffix(strings.TrimSpace(string(h[0:16])), "/") // GNU ar ends names with /
	a.data, a.pad = size, size%2
	return Member{Name: name, Size: size}, nil
}

// Read reads the current member's data.
func (a *ArReader) Read(p []byte) (int, error) {
	if a.data <= 0 {
		return 0, io.EOF
	}
	if int64(len(p)) > a.data {
		p = p[:a.data]
	}
	n, err := a.r.Read(p)
	a.data -= int64(n)
	if err == io.EOF && a.data > 0 {
		err = io.ErrUnexpectedEOF
	}
	return n, err
}

// OpenData finds the data.tar.* member of a .deb read by ar and returns a reader of the
// uncompressed tar stream (xz, zstd, gzip or none).
func OpenData(ar *ArReader) (io.Reader, error) {
	for {
		m, err := ar.Next()
		if err == io.EOF {
			return nil, errors.New("deb: no data.tar member")
		}
		if err != nil {
			return nil, err
		}
		switch m.Name {
		case "data.tar":
			return ar, nil
		case "data.tar.xz":
			r, err := xz.NewReader(ar)
			if err != nil {
				return nil, fmt.Errorf("deb: data.tar.xz: %w", err)
			}
			return r, nil
		case "data.tar.zst":
			r, err := zstd.NewReader(ar)
			if err != nil {
				return nil, fmt.Errorf("deb: data.tar.zst: %w", err)
			}
			return r.IOReadCloser(), nil
		case "data.tar.gz":
			r, err := gzip.NewReader(ar)
			if err != nil {
				return nil, fmt.Errorf("deb: data.tar.gz: %w", err)
			}
			return r, nil
		}
		if strings.HasPrefix(m.Name, "data.tar") {
			return nil, fmt.Errorf("deb: unsupported data member %s", m.Name)
		}
	}
}

// Extract writes the regular files of debPath's data archive for which keep returns true
// into dest, at their package paths (keep sees them without the leading "./", e.g.
// "boot/vmlinuz-6.1.0-57-cloud-amd64"). It returns the kept paths in archive order.
func Extract(ctx context.Context, debPath, dest string, keep func(name string) bool) ([]string, error) {
	f, err := os.Open(debPath)
	if err != nil {
		return nil, fmt.Errorf("open package: %w", err)
	}
	defer f.Close()
	ar, err := NewArReader(f)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", debPath, err)
	}
	data, err := OpenData(ar)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", debPath, err)
	}
	var kept []string
	tr := tar.NewReader(data)
	for {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		h, err := tr.Next()
		if err == io.EOF {
			return kept, nil
		}
		if err != nil {
			return nil, fmt.Errorf("%s: data archive: %w", debPath, err)
		}
		name := strings.TrimPrefix(path.Clean(h.Name), "./")
		if h.Typeflag != tar.TypeReg || !keep(name) {
			continue
		}
		if !filepath.IsLocal(name) {
			return nil, fmt.Errorf("%s: refusing non-local path %q", debPath, h.Name)
		}
		if err := writeFile(filepath.Join(dest, filepath.FromSlash(name)), tr, os.FileMode(h.Mode).Perm()); err != nil {
			return nil, fmt.Errorf("%s: extract %s: %w", debPath, name, err)
		}
		kept = append(kept, name)
	}
}

func writeFile(dst string, r io.Reader, mode os.FileMode) error {
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return err
	}
	f, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, mode)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, r); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
