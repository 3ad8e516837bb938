// Package initramfs builds the initramfs of a Plinth image: a gzip-compressed newc cpio
// archive holding the stage-0 init and the kernel modules it loads.
//
// The contract with the stage-0 init (cmd/plinth-init): the archive has /init, the modules
// as /lib/modules/<name>.ko (uncompressed, <name> the kernel's module name), and
// /lib/modules/plinth.load listing their file names one per line in load order
// (dependencies first). It also has /dev/console and /dev/null, so that the kernel can give
// /init its standard file descriptors before devtmpfs is mounted (a Go program whose fds
// 0-2 are closed aborts at start when it cannot open /dev/null), and the empty mount points
// /dev /proc /sys /newroot.
package initramfs

import (
	"bytes"
	"compress/gzip"
	"fmt"
	"io"
	"io/fs"
	"slices"
	"strings"
)

// LoadList is the path, inside the initramfs, of the module load-order list.
const LoadList = "lib/modules/plinth.load"

// Module is one kernel module to ship, uncompressed.
type Module struct {
	Name string // the kernel's module name, e.g. virtio_pci
	Data []byte // the .ko file
}

// Spec is what goes into the initramfs.
type Spec struct {
	Init    []byte   // the stage-0 init binary
	Modules []Module // in load order
}

// Entries returns the archive's members, sorted by path (parents before children).
func Entries(s Spec) ([]Entry, error) {
	if len(s.Init) == 0 {
		return nil, fmt.Errorf("initramfs: the init binary is empty")
	}
	entries := []Entry{
		{Name: "dev", Mode: fs.ModeDir | 0o755},
		{Name: "dev/console", Mode: fs.ModeDevice | fs.ModeCharDevice | 0o600, Major: 5, Minor: 1},
		{Name: "dev/null", Mode: fs.ModeDevice | fs.ModeCharDevice | 0o666, Major: 1, Minor: 3},
		{Name: "init", Mode: 0o755, Data: s.Init},
		{Name: "lib", Mode: fs.ModeDir | 0o755},
		{Name: "lib/modules", Mode: fs.ModeDir | 0o755},
		{Name: "newroot", Mode: fs.ModeDir | 0o755},
		{Name: "proc", Mode: fs.ModeDir | 0o555},
		{Name: "sys", Mode: fs.ModeDir | 0o555},
	}
	var load strings.Builder
	seen := map[string]bool{}
	for _, m := range s.Modules {
		if m.Name == "" || strings.ContainsAny(m.Name, "/\n") || m.Name == "plinth" {
			return nil, fmt.Errorf("initramfs: bad module name %q", m.Name)
		}
		if seen[m.Name] {
			return nil, fmt.Errorf("initramfs: module %s given twice", m.Name)
		}
		seen[m.Name] = true
		file := m.Name + ".ko"
		entries = append(entries, Entry{Name: "lib/modules/" + file, Mode: 0o644, Data: m.Data})
		load.WriteString(file + "\n")
	}
	entries = append(entries, Entry{Name: LoadList, Mode: 0o644, Data: []byte(load.String())})
	slices.SortFunc(entries, func(a, b Entry) int { return strings.Compare(a.Name, b.Name) })
	return entries, nil
}

// Write writes the gzip-compressed archive. The same Spec always gives the same bytes (no
// timestamps, owners or file names in the gzip header; inode numbers in path order).
func Write(w io.Writer, s Spec) error {
	entries, err := Entries(s)
	if err != nil {
		return err
	}
	var raw bytes.Buffer
	if err := writeNewc(&raw, entries); err != nil {
		return fmt.Errorf("initramfs: %w", err)
	}
	zw, err := gzip.NewWriterLevel(w, gzip.BestCompression)
	if err != nil {
		return fmt.Errorf("initramfs: %w", err)
	}
	if _, err := zw.Write(raw.Bytes()); err != nil {
		return fmt.Errorf("initramfs: compress: %w", err)
	}
	if err := zw.Close(); err != nil {
		return fmt.Errorf("initramfs: compress: %w", err)
	}
	return nil
}
