// Package iso writes Plinth's boot media: an ISO 9660 image that UEFI firmware boots from
// a CD (El Torito, EFI platform) into the live system, which runs in maintenance mode and
// installs Plinth to the machine's disk from the media's files.
//
// Layout:
//
//	/boot/efi.img    the El Torito boot image: a FAT16 EFI partition (package esp) with
//	                 systemd-boot and one entry booting the media's kernel with plinth.live
//	/plinth/...      the installer's files (Files), found by machined under the mount
//
// The volume identifier is VolumeID: stage 0 finds the media by it.
package iso

import (
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"

	"github.com/diskfs/go-diskfs/backend/file"
	"github.com/diskfs/go-diskfs/filesystem/iso9660"

	"github.com/plinthos/plinth/internal/osimage/esp"
)

// VolumeID is the ISO's volume identifier.
const VolumeID = "PLINTH"

// BootImage is the El Torito boot image's path in the ISO.
const BootImage = "/boot/efi.img"

// Spec is the ISO's content.
type Spec struct {
	// Loader, Kernel and Initramfs boot the live system.
	Loader, Kernel, Initramfs []byte
	Version                   string
	// Files are copied into the ISO: its path (under /plinth/) to a file's path.
	Files map[string]string
}

// bootImageSize is the El Torito image's size: room for the kernel, the initramfs and the
// loader, rounded up to a MiB, and no more than El Torito's 16-bit count of 512-byte
// sectors says.
func (s Spec) bootImageSize() (int64, error) {
	n := int64(len(s.Loader)+len(s.Kernel)+len(s.Initramfs)) + 2<<20
	n = (n + 1<<20 - 1) &^ (1<<20 - 1)
	if n >= 32<<20 {
		return 0, fmt.Errorf("ISO: the kernel, initramfs and boot loader (%d MiB) do not fit an El Torito boot image (under 32 MiB)", n>>20)
	}
	return max(n, 8<<20), nil
}

// Write makes the ISO at out (replaced if it exists), using work for temporary files.
func Write(out, work string, s Spec) error {
	size, err := s.bootImageSize()
	if err != nil {
		return err
	}
	ws, err := os.MkdirTemp(work, "iso-")
	if err != nil {
		return fmt.Errorf("ISO: %w", err)
	}
	defer os.RemoveAll(ws)
	boot := filepath.Join(ws, "efi.img")
	spec := esp.Spec{Loader: s.Loader, Entries: []esp.Entry{{Slot: "A", Title: "Plinth " + s.Version + " (install media)",
		Version: s.Version, Kernel: s.Kernel, Initramfs: s.Initramfs, Options: esp.LiveKernelArgs}}}
	if err := esp.WriteImage(boot, size, spec); err != nil {
		return err
	}
	files := map[string]string{BootImage: boot}
	for p, src := range s.Files {
		if !strings.HasPrefix(p, "/plinth/") || path.Clean(p) != p {
			return fmt.Errorf("ISO: %s: files go under /plinth/", p)
		}
		files[p] = src
	}

	tmp := out + ".tmp"
	if err := os.Remove(tmp); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("ISO: %w", err)
	}
	f, err := os.Create(tmp)
	if err != nil {
		return fmt.Errorf("ISO: %w", err)
	}
	defer os.Remove(tmp)
	defer f.Close()
	stage := filepath.Join(ws, "tree")
	if err := os.Mkdir(stage, 0o755); err != nil {
		return fmt.Errorf("ISO: %w", err)
	}
	fs, err := iso9660.Create(file.New(f, false), 0, 0, 2048, stage)
	if err != nil {
		return fmt.Errorf("ISO: %w", err)
	}
	dirs := map[string]bool{}
	for p := range files {
		dirs[path.Dir(p)] = true
	}
	for _, d := range slices.Sorted(maps.Keys(dirs)) {
		if err := fs.Mkdir(d); err != nil {
			return fmt.Errorf("ISO: mkdir %s: %w", d, err)
		}
	}
	for _, p := range slices.Sorted(maps.Keys(files)) {
		if err := copyIn(fs, p, files[p]); err != nil {
			return err
		}
	}
	err = fs.Finalize(iso9660.FinalizeOptions{
		VolumeIdentifier: VolumeID,
		RockRidge:        true, // long, lower-case names (Linux reads them)
		ElTorito: &iso9660.ElTorito{BootCatalog: "/boot/boot.cat", HideBootCatalog: true, Entries: []*iso9660.ElToritoEntry{
			{Platform: iso9660.EFI, Emulation: iso9660.NoEmulation, BootFile: BootImage},
		}},
	})
	if err != nil {
		return fmt.Errorf("ISO: finalize: %w", err)
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("ISO: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("ISO: %w", err)
	}
	if err := os.Rename(tmp, out); err != nil {
		return fmt.Errorf("ISO: %w", err)
	}
	return nil
}

func copyIn(fs *iso9660.FileSystem, p, src string) error {
	in, err := os.Open(src)
	if err != nil {
		return fmt.Errorf("ISO: %w", err)
	}
	defer in.Close()
	w, err := fs.OpenFile(p, os.O_CREATE|os.O_RDWR)
	if err != nil {
		return fmt.Errorf("ISO: create %s: %w", p, err)
	}
	if _, err := io.Copy(w, in); err != nil {
		w.Close()
		return fmt.Errorf("ISO: write %s: %w", p, err)
	}
	if err := w.Close(); err != nil {
		return fmt.Errorf("ISO: write %s: %w", p, err)
	}
	return nil
}

// The installer's files on the media, under /plinth (MediaDir once mounted by the live
// system).
const (
	MediaKernel    = "vmlinuz"
	MediaInitramfs = "initramfs.img"
	MediaLoader    = "systemd-bootx64.efi"
	MediaRootfs    = "rootfs.squashfs"
	MediaState     = "state.ext4.zst"
	MediaEphemeral = "ephemeral.ext4.zst"
	MediaManifest  = "media.json"
)

// Media is media.json: what the installer needs to know besides the files.
type Media struct {
	// Version is the OS version on the media.
	Version string `json:"version"`
	// RootSize is the size of each root slot in bytes.
	RootSize int64 `json:"rootSize"`
}
