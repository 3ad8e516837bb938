// Package install writes Plinth onto a machine's disk from the install media the machine
// booted (package osimage/iso): a new GPT with the image's layout (EFI, ROOT-A, ROOT-B,
// META, STATE, EPHEMERAL; new GUIDs for this machine), systemd-boot and slot A's kernel on
// the EFI partition, the root file system in slot A, the empty STATE and EPHEMERAL file
// systems, and the machine's configuration on STATE. At the next boot the machine starts
// from the disk, and machined grows EPHEMERAL to the disk's end.
package install

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"
	"unsafe"

	"github.com/klauspost/compress/zstd"
	"golang.org/x/sys/unix"

	"github.com/plinthos/plinth/internal/osimage/diskimage"
	"github.com/plinthos/plinth/internal/osimage/esp"
	"github.com/plinthos/plinth/internal/osimage/iso"
	"github.com/plinthos/plinth/internal/storage"
)

// Options say what to install where.
type Options struct {
	// Disk is the whole disk to install to, such as /dev/vda.
	Disk string
	// MediaDir is the install media's directory of files (/media/plinth on the live system).
	MediaDir string
	// ExtraKernelArgs are added to slot A's kernel command line.
	ExtraKernelArgs []string
	// Store writes the machine's configuration into dir, the mounted STATE file system.
	Store func(dir string) error
	// SysBlock is /sys/class/block (a test may point elsewhere); MountDir is where STATE is
	// mounted for Store.
	SysBlock, MountDir string
	Log                *slog.Logger
}

// Run installs. Everything on o.Disk is lost. A failure before the partition table is
// written leaves the disk untouched.
func Run(ctx context.Context, o Options) error {
	log := o.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if o.SysBlock == "" {
		o.SysBlock = "/sys/class/block"
	}
	name, size, err := checkDisk(o.SysBlock, o.Disk)
	if err != nil {
		return err
	}
	var media iso.Media
	data, err := os.ReadFile(filepath.Join(o.MediaDir, iso.MediaManifest))
	if err != nil {
		return fmt.Errorf("install: the media's %s: %w (is this the install media?)", iso.MediaManifest, err)
	}
	if err := json.Unmarshal(data, &media); err != nil {
		return fmt.Errorf("install: the media's %s: %w", iso.MediaManifest, err)
	}
	seed := make([]byte, 32)
	if _, err := rand.Read(seed); err != nil {
		return fmt.Errorf("install: %w", err)
	}
	layout, err := diskimage.NewLayout(media.RootSize, seed)
	if err != nil {
		return fmt.Errorf("install: %w", err)
	}
	if size < layout.Size {
		return fmt.Errorf("install: %s holds %d MiB; Plinth needs at least %d MiB", o.Disk, size>>20, layout.Size>>20)
	}
	spec := esp.Spec{Entries: []esp.Entry{{Slot: "A", Title: "Plinth " + media.Version, Version: media.Version,
		Options: strings.Join(append([]string{esp.KernelArgs("A")}, o.ExtraKernelArgs...), " ")}}}
	for dst, file := range map[*[]byte]string{&spec.Loader: iso.MediaLoader, &spec.Entries[0].Kernel: iso.MediaKernel, &spec.Entries[0].Initramfs: iso.MediaInitramfs} {
		if *dst, err = os.ReadFile(filepath.Join(o.MediaDir, file)); err != nil {
			return fmt.Errorf("install: the media's %s: %w", file, err)
		}
	}
	if err := spec.Validate(); err != nil {
		return fmt.Errorf("install: %w", err)
	}

	log.Info("install: writing the partition table", "disk", o.Disk, "size_mib", size>>20)
	f, err := os.OpenFile(o.Disk, os.O_RDWR|unix.O_EXCL, 0)
	if err != nil {
		return fmt.Errorf("install: open %s: %w", o.Disk, err)
	}
	defer f.Close()
	// Old partition tables and file system signatures go: the head and tail of the disk and
	// every partition's content that is not fully written below.
	zero := [][2]int64{{0, diskimage.MiB}, {size - diskimage.MiB, diskimage.MiB}}
	for _, p := range layout.Partitions {
		switch p.Name {
		case diskimage.Meta, diskimage.State, diskimage.Ephemeral:
			zero = append(zero, [2]int64{p.Start, p.Size})
		case diskimage.RootB:
			zero = append(zero, [2]int64{p.Start, diskimage.MiB})
		}
	}
	for _, r := range zero {
		if err := zeroRange(f, r[0], r[1]); err != nil {
			return fmt.Errorf("install: clear %s at %d MiB: %w", o.Disk, r[0]>>20, err)
		}
	}
	if err := layout.Table().Write(f, size); err != nil {
		return fmt.Errorf("install: write the partition table of %s: %w", o.Disk, err)
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("install: %w", err)
	}

	efi, _ := layout.Find(diskimage.EFI)
	log.Info("install: writing the boot loader and kernel", "partition", diskimage.EFI)
	if err := esp.Write(o.Disk, efi.Start, efi.Size, spec); err != nil {
		return fmt.Errorf("install: %w", err)
	}
	root, _ := layout.Find(diskimage.RootA)
	log.Info("install: writing the root file system", "partition", diskimage.RootA)
	if err := copyAt(f, root, filepath.Join(o.MediaDir, iso.MediaRootfs), false); err != nil {
		return err
	}
	for part, file := range map[string]string{diskimage.State: iso.MediaState, diskimage.Ephemeral: iso.MediaEphemeral} {
		p, _ := layout.Find(part)
		log.Info("install: writing an empty file system", "partition", part)
		if err := copyAt(f, p, filepath.Join(o.MediaDir, file), true); err != nil {
			return err
		}
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("install: %w", err)
	}
	if err := unix.IoctlSetInt(int(f.Fd()), unix.BLKRRPART, 0); err != nil {
		return fmt.Errorf("install: make the kernel read the new partition table of %s: %w", o.Disk, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("install: %w", err)
	}
	return storeConfig(ctx, o, name, log)
}

// storeConfig mounts the new STATE and lets o.Store write the configuration into it.
func storeConfig(ctx context.Context, o Options, disk string, log *slog.Logger) error {
	var state storage.Partition
	var err error
	for deadline := time.Now().Add(10 * time.Second); ; {
		if state, err = storage.FindOn(o.SysBlock, disk, diskimage.State); err == nil {
			if _, serr := os.Stat(state.DevPath()); serr == nil {
				break
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("install: the new STATE partition did not appear: %v", err)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
	dir := o.MountDir
	if dir == "" {
		dir = "/run/plinth-install"
	}
	if err := storage.Mount(state, dir); err != nil {
		return fmt.Errorf("install: %w", err)
	}
	log.Info("install: storing the configuration", "partition", diskimage.State)
	serr := o.Store(dir)
	unix.Sync()
	if err := unix.Unmount(dir, 0); err != nil && serr == nil {
		serr = fmt.Errorf("unmount the new STATE: %w", err)
	}
	if serr != nil {
		return fmt.Errorf("install: %w", serr)
	}
	return nil
}

// checkDisk says whether path is a whole disk nothing uses, and returns its name and size.
func checkDisk(sysBlock, path string) (string, int64, error) {
	if path == "" {
		return "", 0, errors.New("install: no disk: set machine.install.disk (such as /dev/vda)")
	}
	var st unix.Stat_t
	if err := unix.Stat(path, &st); err != nil {
		return "", 0, fmt.Errorf("install: machine.install.disk %s: %w", path, err)
	}
	if st.Mode&unix.S_IFMT != unix.S_IFBLK {
		return "", 0, fmt.Errorf("install: machine.install.disk %s is not a block device", path)
	}
	name := filepath.Base(path)
	if _, err := os.Stat(filepath.Join(sysBlock, name, "partition")); err == nil {
		return "", 0, fmt.Errorf("install: machine.install.disk %s is a partition: give the whole disk", path)
	}
	if ro, err := os.ReadFile(filepath.Join(sysBlock, name, "ro")); err == nil && strings.TrimSpace(string(ro)) == "1" {
		return "", 0, fmt.Errorf("install: machine.install.disk %s is read-only (the install media?)", path)
	}
	f, err := os.Open(path)
	if err != nil {
		return "", 0, fmt.Errorf("install: %w", err)
	}
	defer f.Close()
	var size uint64
	if _, _, errno := unix.Syscall(unix.SYS_IOCTL, f.Fd(), unix.BLKGETSIZE64, uintptr(unsafe.Pointer(&size))); errno != 0 {
		return "", 0, fmt.Errorf("install: size of %s: %w", path, errno)
	}
	return name, int64(size), nil
}

// zeroRange makes length bytes at off read as zeros: BLKZEROOUT (cheap where the device
// can), else plain writes.
func zeroRange(f *os.File, off, length int64) error {
	r := [2]uint64{uint64(off), uint64(length)}
	if _, _, errno := unix.Syscall(unix.SYS_IOCTL, f.Fd(), unix.BLKZEROOUT, uintptr(unsafe.Pointer(&r[0]))); errno == 0 {
		return nil
	}
	buf := make([]byte, 1<<20)
	for done := int64(0); done < length; {
		n := min(int64(len(buf)), length-done)
		if _, err := f.WriteAt(buf[:n], off+done); err != nil {
			return err
		}
		done += n
	}
	return nil
}

// copyAt writes the file src (zstd-compressed when compressed) into partition p of the
// disk open in f. Blocks of zeros are skipped: the partition was zeroed.
func copyAt(f *os.File, p diskimage.Partition, src string, compressed bool) error {
	in, err := os.Open(src)
	if err != nil {
		return fmt.Errorf("install: the media's %s: %w", filepath.Base(src), err)
	}
	defer in.Close()
	var r io.Reader = in
	if compressed {
		dec, err := zstd.NewReader(in, zstd.WithDecoderConcurrency(1))
		if err != nil {
			return fmt.Errorf("install: %s: %w", filepath.Base(src), err)
		}
		defer dec.Close()
		r = dec
	}
	buf := make([]byte, 256<<10)
	var off int64
	for {
		n, err := io.ReadFull(r, buf)
		if n > 0 {
			if off+int64(n) > p.Size {
				return fmt.Errorf("install: %s is larger than partition %s (%d bytes)", filepath.Base(src), p.Name, p.Size)
			}
			if !compressed || !allZero(buf[:n]) {
				if _, werr := f.WriteAt(buf[:n], p.Start+off); werr != nil {
					return fmt.Errorf("install: write %s: %w", p.Name, werr)
				}
			}
			off += int64(n)
		}
		if err == io.EOF || err == io.ErrUnexpectedEOF {
			return nil
		}
		if err != nil {
			return fmt.Errorf("install: read %s: %w", filepath.Base(src), err)
		}
	}
}

func allZero(b []byte) bool {
	for len(b) >= 8 {
		if binary.LittleEndian.Uint64(b) != 0 {
			return false
		}
		b = b[8:]
	}
	return len(bytes.Trim(b, "\x00")) == 0
}
