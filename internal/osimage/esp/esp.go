// Package esp writes an EFI system partition that boots Plinth: a FAT32 file system with
// systemd-boot as the firmware's default loader (EFI/BOOT/BOOTX64.EFI), its configuration
// (loader/loader.conf: no menu, no editing of the kernel command line) and one boot entry
// per root slot (loader/entries/plinth-<slot>.conf) with that slot's kernel and initramfs
// under plinth/<slot>/.
//
// Every file and directory gets the same fixed timestamp and the volume a fixed serial, so
// equal inputs give byte-identical partitions.
package esp

import (
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"path"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/diskfs/go-diskfs/backend/file"
	"github.com/diskfs/go-diskfs/filesystem"
	"github.com/diskfs/go-diskfs/filesystem/fat16"
	"github.com/diskfs/go-diskfs/filesystem/fat32"
)

// Label is the FAT volume label.
const Label = "PLINTH-EFI"

// Paths inside the partition.
const (
	LoaderPath = "/EFI/BOOT/BOOTX64.EFI"
	ConfigPath = "/loader/loader.conf"
	EntriesDir = "/loader/entries"
)

// stamp is the time of every file: FAT cannot say before 1980.
var stamp = time.Date(1980, 1, 1, 0, 0, 0, 0, time.UTC)

// Entry is the boot entry of one root slot.
type Entry struct {
	// Slot is "A" or "B".
	Slot string
	// Title is what a boot menu shows, such as "Plinth v0.2.0".
	Title string
	// Version is the OS version the slot holds.
	Version string
	// Kernel and Initramfs are the slot's kernel image and initramfs.
	Kernel, Initramfs []byte
	// Options is the kernel command line.
	Options string
}

// Spec is the partition's content.
type Spec struct {
	// Loader is systemd-bootx64.efi.
	Loader []byte
	// Entries are the slots' boot entries; Default names the slot booted (the first entry's
	// when empty).
	Entries []Entry
	Default string
}

var optionsSafe = regexp.MustCompile(`^[[:print:]]*$`)

// Validate says what is wrong with s.
func (s Spec) Validate() error {
	if len(s.Loader) == 0 {
		return errors.New("EFI partition: no boot loader")
	}
	if len(s.Entries) == 0 {
		return errors.New("EFI partition: no boot entry")
	}
	for _, e := range s.Entries {
		if e.Slot != "A" && e.Slot != "B" {
			return fmt.Errorf("EFI partition: slot %q: want A or B", e.Slot)
		}
		if len(e.Kernel) == 0 || len(e.Initramfs) == 0 {
			return fmt.Errorf("EFI partition: slot %s has no kernel or no initramfs", e.Slot)
		}
		for _, v := range []string{e.Title, e.Version, e.Options} {
			if strings.ContainsAny(v, "\n\r") || !optionsSafe.MatchString(v) {
				return fmt.Errorf("EFI partition: slot %s: %q has a line break or an unprintable character", e.Slot, v)
			}
		}
	}
	if s.Default != "" && !slices.ContainsFunc(s.Entries, func(e Entry) bool { return e.Slot == s.Default }) {
		return fmt.Errorf("EFI partition: default slot %s has no entry", s.Default)
	}
	return nil
}

// KernelArgs is the kernel command line of an installed slot: the slot to mount, the
// consoles (the last one is /dev/console), and a reboot 10 s after a panic (so that a
// failed trial boot falls back to the other slot).
func KernelArgs(slot string) string {
	return "plinth.slot=" + slot + " console=tty0 console=ttyS0 panic=10"
}

// LiveKernelArgs is the kernel command line of the boot media (the ISO): the root file
// system is the media's, and machined installs from it.
const LiveKernelArgs = "plinth.live console=tty0 console=ttyS0 panic=10"

// EntryName is the file name of slot's boot entry.
func EntryName(slot string) string { return "plinth-" + strings.ToLower(slot) + ".conf" }

// LoaderConfig is loader/loader.conf: boot the default entry at once, without a menu, and
// refuse edits of the kernel command line at the console.
func (s Spec) LoaderConfig() string {
	def := s.Default
	if def == "" {
		def = s.Entries[0].Slot
	}
	return fmt.Sprintf("timeout 0\ndefault %s\neditor no\nauto-entries no\nauto-firmware no\n", EntryName(def))
}

// Config is the boot entry file of e.
func (e Entry) Config() string {
	dir := "/plinth/" + e.Slot
	return fmt.Sprintf("title %s\nversion %s\nlinux %s/vmlinuz\ninitrd %s/initramfs.img\noptions %s\n",
		e.Title, e.Version, dir, dir, e.Options)
}

// Write creates the FAT32 file system of size bytes at offset of the file or block device
// at dev, with s's content. What was there is overwritten.
func Write(dev string, offset, size int64, s Spec) error {
	if err := s.Validate(); err != nil {
		return err
	}
	return atStamp(func() error { return write(dev, offset, size, s) })
}

// epochMu serialises the writes that set SOURCE_DATE_EPOCH.
var epochMu sync.Mutex

// atStamp runs fn with SOURCE_DATE_EPOCH at stamp, unless the caller set it. go-diskfs
// dates the entries it makes itself (a directory's "." and "..") by that variable, else by
// the clock: two writes a second apart made different partitions (TestReproducible failed
// once so in CI). Chtimes cannot reach those entries.
func atStamp(fn func() error) error {
	epochMu.Lock()
	defer epochMu.Unlock()
	if _, set := os.LookupEnv("SOURCE_DATE_EPOCH"); set {
		return fn()
	}
	if err := os.Setenv("SOURCE_DATE_EPOCH", strconv.FormatInt(stamp.Unix(), 10)); err != nil {
		return err
	}
	defer os.Unsetenv("SOURCE_DATE_EPOCH")
	return fn()
}

// write is Write without the check of s.
func write(dev string, offset, size int64, s Spec) error {
	f, err := os.OpenFile(dev, os.O_RDWR, 0)
	if err != nil {
		return fmt.Errorf("EFI partition: %w", err)
	}
	defer f.Close()
	var fs fatFS
	if size < MinFAT32 {
		fs, err = fat16.Create(file.New(f, false), size, offset, 512, Label, true)
	} else {
		fs, err = fat32.Create(file.New(f, false), size, offset, 512, Label, true)
	}
	if err != nil {
		return fmt.Errorf("EFI partition: create a FAT file system on %s: %w", dev, err)
	}
	files := []espFile{{LoaderPath, s.Loader}, {ConfigPath, []byte(s.LoaderConfig())}}
	for _, e := range s.Entries {
		dir := "/plinth/" + e.Slot
		files = append(files, espFile{dir + "/vmlinuz", e.Kernel}, espFile{dir + "/initramfs.img", e.Initramfs},
			espFile{EntriesDir + "/" + EntryName(e.Slot), []byte(e.Config())})
	}
	dirs := map[string]bool{}
	for _, fl := range files {
		for d := path.Dir(fl.path); d != "/"; d = path.Dir(d) {
			dirs[d] = true
		}
	}
	sorted := slices.Sorted(maps.Keys(dirs))
	for _, d := range sorted {
		if err := fs.Mkdir(d); err != nil {
			return fmt.Errorf("EFI partition: mkdir %s: %w", d, err)
		}
	}
	for _, fl := range files {
		if err := writeFile(fs, fl.path, fl.data); err != nil {
			return err
		}
		sorted = append(sorted, fl.path)
	}
	for _, p := range sorted {
		if err := fs.Chtimes(p, stamp, stamp, stamp); err != nil {
			return fmt.Errorf("EFI partition: timestamp of %s: %w", p, err)
		}
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("EFI partition: %w", err)
	}
	return f.Close()
}

// WriteImage makes a new sparse file of size bytes at path (replacing one there) holding
// the file system of s.
func WriteImage(path string, size int64, s Spec) error {
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("EFI partition: %w", err)
	}
	err = f.Truncate(size)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("EFI partition: %w", err)
	}
	return Write(path, 0, size, s)
}

// MinFAT32 is the smallest size Write makes FAT32 (at least 65525 clusters of 512 bytes,
// or firmware reads it as FAT16); below it, FAT16. A CD's El Torito boot image, which
// holds only a kernel and an initramfs, is FAT16 (and its size fits El Torito's 16-bit
// count of 512-byte sectors: under 32 MiB).
const MinFAT32 = 33 << 20

// fatFS is what Write uses of a FAT16 or FAT32 file system.
type fatFS interface {
	Mkdir(p string) error
	OpenFile(p string, flag int) (filesystem.File, error)
	Chtimes(p string, ctime, atime, mtime time.Time) error
}

func writeFile(fs fatFS, p string, data []byte) error {
	w, err := fs.OpenFile(p, os.O_CREATE|os.O_RDWR|os.O_TRUNC)
	if err != nil {
		return fmt.Errorf("EFI partition: create %s: %w", p, err)
	}
	if _, err := w.Write(data); err != nil {
		w.Close()
		return fmt.Errorf("EFI partition: write %s: %w", p, err)
	}
	if err := w.Close(); err != nil {
		return fmt.Errorf("EFI partition: write %s: %w", p, err)
	}
	return nil
}

// ReadFile reads the file at p of the FAT file system Write made at offset of dev.
func ReadFile(dev string, offset, size int64, p string) ([]byte, error) {
	f, err := os.Open(dev)
	if err != nil {
		return nil, fmt.Errorf("EFI partition: %w", err)
	}
	defer f.Close()
	var fs interface {
		OpenFile(p string, flag int) (filesystem.File, error)
	}
	if size < MinFAT32 {
		fs, err = fat16.Read(file.New(f, true), size, offset, 512)
	} else {
		fs, err = fat32.Read(file.New(f, true), size, offset, 512)
	}
	if err != nil {
		return nil, fmt.Errorf("EFI partition: read the FAT file system of %s: %w", dev, err)
	}
	r, err := fs.OpenFile(p, os.O_RDONLY)
	if err != nil {
		return nil, fmt.Errorf("EFI partition: open %s: %w", p, err)
	}
	defer r.Close()
	return io.ReadAll(r)
}

// espFile is a file of the partition and its content.
type espFile struct {
	path string
	data []byte
}
