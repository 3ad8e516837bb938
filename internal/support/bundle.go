// Package support builds the support bundle: the files collected from the nodes and the
// cluster, with any private key masked, and a summary of what could not be collected,
// written as one gzipped tar.
package support

import (
	"archive/tar"
	"bytes"
	"encoding/base64"
	"fmt"
	"io"
	"maps"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/klauspost/compress/gzip"
)

// Masked replaces a private key found in a collected file.
const Masked = "(private key masked by plinthctl support)"

// Bundle gathers named files; it is safe for concurrent use.
type Bundle struct {
	mu       sync.Mutex
	files    map[string][]byte
	problems map[string][]string // where (a node, or "cluster") -> what failed
	masked   []string
}

// New returns an empty bundle.
func New() *Bundle {
	return &Bundle{files: map[string][]byte{}, problems: map[string][]string{}}
}

// Add puts a file in the bundle under name (a slash-separated path), with every private
// key in it masked.
func (b *Bundle) Add(name string, data []byte) {
	clean, n := MaskKeys(data)
	b.mu.Lock()
	defer b.mu.Unlock()
	b.files[name] = clean
	if n > 0 {
		b.masked = append(b.masked, fmt.Sprintf("%s: %d private key(s)", name, n))
	}
}

// Fail records that item could not be collected from where, and why.
func (b *Bundle) Fail(where, item string, err error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.problems[where] = append(b.problems[where], fmt.Sprintf("%s: %v", item, err))
}

// Problems returns how many items failed, everywhere.
func (b *Bundle) Problems() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	n := 0
	for _, p := range b.problems {
		n += len(p)
	}
	return n
}

// Names returns the files' names, sorted.
func (b *Bundle) Names() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return slices.Sorted(maps.Keys(b.files))
}

// Summary is summary.txt: header, then what failed where, and what was masked.
func (b *Bundle) Summary(header string) []byte {
	b.mu.Lock()
	defer b.mu.Unlock()
	var s strings.Builder
	s.WriteString(header)
	if !strings.HasSuffix(header, "\n") {
		s.WriteString("\n")
	}
	fmt.Fprintf(&s, "\n%d files collected.\n", len(b.files))
	if len(b.problems) == 0 {
		s.WriteString("Everything asked for was collected.\n")
	}
	for _, where := range slices.Sorted(maps.Keys(b.problems)) {
		fmt.Fprintf(&s, "\nNot collected from %s:\n", where)
		for _, p := range b.problems[where] {
			fmt.Fprintf(&s, "  %s\n", p)
		}
	}
	if len(b.masked) > 0 {
		s.WriteString("\nMasked:\n")
		for _, m := range slices.Sorted(slices.Values(b.masked)) {
			fmt.Fprintf(&s, "  %s\n", m)
		}
	}
	return []byte(s.String())
}

// Write writes the bundle as a gzipped tar under the directory root, summary.txt first.
func (b *Bundle) Write(w io.Writer, root, header string, now time.Time) error {
	zw := gzip.NewWriter(w)
	tw := tar.NewWriter(zw)
	add := func(name string, data []byte) error {
		h := &tar.Header{Name: root + "/" + name, Mode: 0o600, Size: int64(len(data)), ModTime: now, Typeflag: tar.TypeReg}
		if err := tw.WriteHeader(h); err != nil {
			return err
		}
		_, err := tw.Write(data)
		return err
	}
	if err := add("summary.txt", b.Summary(header)); err != nil {
		return err
	}
	for _, name := range b.Names() {
		b.mu.Lock()
		data := b.files[name]
		b.mu.Unlock()
		if err := add(name, data); err != nil {
			return err
		}
	}
	if err := tw.Close(); err != nil {
		return err
	}
	return zw.Close()
}

var (
	// pemKey is a PEM private key block: PRIVATE KEY, RSA PRIVATE KEY, EC PRIVATE KEY...
	pemKey = regexp.MustCompile(`-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----[\s\S]*?-----END [A-Z0-9 ]*PRIVATE KEY-----`)
	// base64PEM is base64 text that starts with "-----BEGIN" (how the configuration and
	// kubeconfigs carry PEM).
	base64PEM = regexp.MustCompile(`LS0tLS1CRUdJTi[A-Za-z0-9+/]*={0,2}`)
)

// MaskKeys returns data with every private key masked, PEM or base64-encoded PEM, and
// how many there were.
func MaskKeys(data []byte) ([]byte, int) {
	n := 0
	out := pemKey.ReplaceAllFunc(data, func([]byte) []byte {
		n++
		return []byte(Masked)
	})
	out = base64PEM.ReplaceAllFunc(out, func(m []byte) []byte {
		dec, err := base64.StdEncoding.DecodeString(string(m))
		if err != nil {
			dec, err = base64.RawStdEncoding.DecodeString(strings.TrimRight(string(m), "="))
		}
		if err != nil || !bytes.Contains(dec, []byte("PRIVATE KEY-----")) {
			return m
		}
		n++
		return []byte(Masked)
	})
	return out, n
}
