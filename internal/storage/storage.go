// Package storage finds the partitions of the boot disk by their GPT names, mounts them,
// and grows the last one (EPHEMERAL) to the disk's end: the partition table is rewritten
// with the backup GPT at the new end, the kernel is told the partition's new size, and the
// mounted ext4 file system is grown online. Nothing here formats: the image ships its file
// systems (see internal/osimage/ext4img).
package storage

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"unsafe"

	"github.com/diskfs/go-diskfs/partition/gpt"
	"golang.org/x/sys/unix"
)

// MiB is the alignment of partitions.
const MiB = int64(1) << 20

const sectorSize = 512

// Partition is a partition of a disk, found by its GPT name.
type Partition struct {
	// Name is the GPT partition name, such as EPHEMERAL.
	Name string
	// Dev is the partition's block device name (vda6), Disk its disk's (vda).
	Dev, Disk string
	// Number is the partition's number on its disk.
	Number int
}

// DevPath is the partition's device node.
func (p Partition) DevPath() string { return "/dev/" + p.Dev }

// DiskOf returns the disk that holds the block device dev (a stat's st_dev), looked up
// in sysDevBlock (/sys/dev/block): the disk of the root file system is the boot disk.
func DiskOf(sysDevBlock string, dev uint64) (string, error) {
	link := filepath.Join(sysDevBlock, fmt.Sprintf("%d:%d", unix.Major(dev), unix.Minor(dev)))
	real, err := filepath.EvalSymlinks(link)
	if err != nil {
		return "", fmt.Errorf("the block device %d:%d: %w", unix.Major(dev), unix.Minor(dev), err)
	}
	if _, err := os.Stat(filepath.Join(real, "partition")); err == nil {
		return filepath.Base(filepath.Dir(real)), nil
	}
	return filepath.Base(real), nil
}

// FindOn looks for the partition named name on disk among the block devices of sysBlock
// (/sys/class/block). More than one partition with the name on the disk is an error.
func FindOn(sysBlock, disk, name string) (Partition, error) {
	p, err := Find(sysBlock, name)
	if err != nil {
		return p, err
	}
	if p.Disk != disk {
		return Partition{}, fmt.Errorf("partition %s is on %s, not on the boot disk %s: the boot disk lacks it", name, p.Disk, disk)
	}
	return p, nil
}

// Find looks for the partition named name among the block devices of sysBlock
// (/sys/class/block). More than one partition with the name is an error: which disk the
// node booted from would be a guess.
func Find(sysBlock, name string) (Partition, error) {
	entries, err := os.ReadDir(sysBlock)
	if err != nil {
		return Partition{}, fmt.Errorf("list block devices: %w", err)
	}
	var found []Partition
	var seen []string
	for _, e := range entries {
		dir := filepath.Join(sysBlock, e.Name())
		ue, err := readUevent(filepath.Join(dir, "uevent"))
		if err != nil || ue["DEVTYPE"] != "partition" {
			continue
		}
		seen = append(seen, e.Name()+"="+ue["PARTNAME"])
		if ue["PARTNAME"] != name {
			continue
		}
		num, err := strconv.Atoi(ue["PARTN"])
		if err != nil {
			return Partition{}, fmt.Errorf("partition %s: no number in its uevent", e.Name())
		}
		// The partition's directory is inside its disk's: /sys/devices/.../vda/vda6.
		real, err := filepath.EvalSymlinks(dir)
		if err != nil {
			return Partition{}, fmt.Errorf("partition %s: %w", e.Name(), err)
		}
		found = append(found, Partition{Name: name, Dev: e.Name(), Disk: filepath.Base(filepath.Dir(real)), Number: num})
	}
	switch len(found) {
	case 0:
		return Partition{}, fmt.Errorf("no partition named %s (partitions seen: %s)", name, strings.Join(seen, ", "))
	case 1:
		return found[0], nil
	}
	return Partition{}, fmt.Errorf("%d partitions are named %s (%v): remove the other disk's, or wipe it", len(found), name, found)
}

func readUevent(path string) (map[string]string, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	out := map[string]string{}
	for _, line := range strings.Split(string(data), "\n") {
		if k, v, ok := strings.Cut(line, "="); ok {
			out[k] = v
		}
	}
	return out, nil
}

// Mount mounts the ext4 file system of p at target, creating target.
func Mount(p Partition, target string) error {
	if err := os.MkdirAll(target, 0o755); err != nil && !errors.Is(err, fs.ErrExist) {
		return fmt.Errorf("create %s: %w", target, err)
	}
	if err := unix.Mount(p.DevPath(), target, "ext4", unix.MS_NOSUID|unix.MS_NODEV, ""); err != nil {
		return fmt.Errorf("mount %s (%s) on %s: %w", p.Name, p.DevPath(), target, err)
	}
	return nil
}

// minGrowth is the least gain worth rewriting the partition table for.
const minGrowth = 16 * MiB

// Growth says how a partition grows: to End (exclusive, bytes), from its old end.
type Growth struct {
	OldEnd, End int64
}

// planGrowth returns the growth of the partition numbered number in t, the last of a disk
// of diskSize bytes: its end moves to the last 1 MiB boundary that leaves 1 MiB for the
// backup GPT. ok is false when it is not the last partition or would gain too little.
func planGrowth(t *gpt.Table, number int, diskSize int64) (g Growth, ok bool) {
	var target *gpt.Partition
	var lastEnd uint64
	for _, p := range t.Partitions {
		if p.Type == gpt.Unused {
			continue
		}
		lastEnd = max(lastEnd, p.End)
		if p.Index == number {
			target = p
		}
	}
	if target == nil || target.End != lastEnd {
		return Growth{}, false
	}
	end := (diskSize - MiB) / MiB * MiB
	old := int64(target.End+1) * sectorSize
	if end-old < minGrowth {
		return Growth{}, false
	}
	return Growth{OldEnd: old, End: end}, true
}

// growTable rewrites the partition table of the disk open in f (of diskSize bytes) with
// partition number ending at g.End, and the backup GPT at the disk's end.
func growTable(f *os.File, number int, diskSize int64) (Growth, bool, error) {
	t, err := gpt.Read(f, sectorSize, sectorSize)
	if err != nil {
		return Growth{}, false, fmt.Errorf("read the partition table: %w", err)
	}
	g, ok := planGrowth(t, number, diskSize)
	if !ok {
		return Growth{}, false, nil
	}
	// A new table (not the one read, whose backup header and last usable sector are those
	// of the old disk size) with the same disk GUID and partitions.
	nt := &gpt.Table{LogicalSectorSize: sectorSize, PhysicalSectorSize: sectorSize, ProtectiveMBR: true, GUID: t.GUID}
	for _, p := range t.Partitions {
		if p.Type == gpt.Unused {
			continue
		}
		np := &gpt.Partition{Index: p.Index, Start: p.Start, End: p.End, Type: p.Type, Name: p.Name, GUID: p.GUID, Attributes: p.Attributes}
		if p.Index == number {
			np.End = uint64(g.End/sectorSize) - 1
		}
		np.Size = (np.End - np.Start + 1) * sectorSize
		nt.Partitions = append(nt.Partitions, np)
	}
	if err := nt.Write(f, diskSize); err != nil {
		return Growth{}, false, fmt.Errorf("write the partition table: %w", err)
	}
	return g, true, nil
}

// GrowToDisk grows p, the last partition of its disk, to the disk's end and then the ext4
// file system mounted at mountpoint to the partition's size. Each step is repeated at the
// next boot if it did not happen (a power loss between them): the file system is grown
// whenever it is smaller than its partition. It reports the file system's new size in
// bytes, or 0 when there was nothing to grow.
func GrowToDisk(p Partition, mountpoint string) (int64, error) {
	f, err := os.OpenFile("/dev/"+p.Disk, os.O_RDWR, 0)
	if err != nil {
		return 0, fmt.Errorf("open the boot disk: %w", err)
	}
	defer f.Close()
	if ssz, err := unix.IoctlGetInt(int(f.Fd()), unix.BLKSSZGET); err == nil && ssz != sectorSize {
		return 0, fmt.Errorf("/dev/%s has %d-byte sectors: the image's partition table is for 512-byte sectors", p.Disk, ssz)
	}
	size, err := f.Seek(0, 2)
	if err != nil {
		return 0, fmt.Errorf("size of /dev/%s: %w", p.Disk, err)
	}
	g, grown, err := growTable(f, p.Number, size)
	if err != nil {
		return 0, err
	}
	start, err := partitionStart(p)
	if err != nil {
		return 0, err
	}
	partSize := int64(0)
	if grown {
		partSize = g.End - start
		if err := resizePartition(f, p, start, partSize); err != nil {
			return 0, err
		}
	} else if partSize, err = sysSize(p); err != nil {
		return 0, err
	}
	blockSize, blocks, err := ext4Size(p.DevPath())
	if err != nil {
		return 0, err
	}
	want := uint64(partSize) / blockSize
	if want <= blocks {
		return 0, nil
	}
	if err := resizeExt4(mountpoint, want); err != nil {
		return 0, err
	}
	return int64(want * blockSize), nil
}

// sysSize is the partition's size as the kernel knows it.
func sysSize(p Partition) (int64, error) {
	data, err := os.ReadFile(filepath.Join("/sys/class/block", p.Dev, "size"))
	if err != nil {
		return 0, fmt.Errorf("size of %s: %w", p.Dev, err)
	}
	n, err := strconv.ParseInt(strings.TrimSpace(string(data)), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("size of %s: %w", p.Dev, err)
	}
	return n * sectorSize, nil // sysfs counts 512-byte sectors
}

// ext4Size reads the block size and block count of the ext4 file system on dev from its
// superblock.
func ext4Size(dev string) (blockSize, blocks uint64, err error) {
	f, err := os.Open(dev)
	if err != nil {
		return 0, 0, err
	}
	defer f.Close()
	sb := make([]byte, 1024)
	if _, err := f.ReadAt(sb, 1024); err != nil {
		return 0, 0, fmt.Errorf("read the superblock of %s: %w", dev, err)
	}
	return parseSuperblock(sb)
}

// parseSuperblock reads the block size and count of an ext4 superblock.
func parseSuperblock(sb []byte) (blockSize, blocks uint64, err error) {
	if len(sb) < 0x160 || binary.LittleEndian.Uint16(sb[0x38:]) != 0xEF53 {
		return 0, 0, errors.New("no ext4 file system")
	}
	blockSize = 1024 << binary.LittleEndian.Uint32(sb[0x18:])
	blocks = uint64(binary.LittleEndian.Uint32(sb[0x04:]))
	const incompat64bit = 0x80
	if binary.LittleEndian.Uint32(sb[0x60:])&incompat64bit != 0 {
		blocks |= uint64(binary.LittleEndian.Uint32(sb[0x150:])) << 32
	}
	return blockSize, blocks, nil
}

// partitionStart reads the partition's start from sysfs (in 512-byte sectors).
func partitionStart(p Partition) (int64, error) {
	data, err := os.ReadFile(filepath.Join("/sys/class/block", p.Dev, "start"))
	if err != nil {
		return 0, fmt.Errorf("start of %s: %w", p.Dev, err)
	}
	s, err := strconv.ParseInt(strings.TrimSpace(string(data)), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("start of %s: %w", p.Dev, err)
	}
	return s * sectorSize, nil
}

// blkpgPartition and blkpgIoctlArg are the kernel's struct blkpg_partition and struct
// blkpg_ioctl_arg (linux/blkpg.h).
type blkpgPartition struct {
	Start   int64
	Length  int64
	Pno     int32
	Devname [64]byte
	Volname [64]byte
	_       [4]byte
}

type blkpgIoctlArg struct {
	Op      int32
	Flags   int32
	Datalen int32
	_       [4]byte
	Data    uintptr
}

const (
	blkpgIoctl           = 0x1269 // BLKPG
	blkpgResizePartition = 3      // BLKPG_RESIZE_PARTITION
)

// resizePartition tells the kernel the partition's new size, while its file system is
// mounted (rereading the whole table would fail: the root slot is in use).
func resizePartition(disk *os.File, p Partition, start, length int64) error {
	part := &blkpgPartition{Start: start, Length: length, Pno: int32(p.Number)}
	arg := &blkpgIoctlArg{Op: blkpgResizePartition, Datalen: int32(unsafe.Sizeof(*part)), Data: uintptr(unsafe.Pointer(part))}
	_, _, errno := unix.Syscall(unix.SYS_IOCTL, disk.Fd(), blkpgIoctl, uintptr(unsafe.Pointer(arg)))
	runtime.KeepAlive(part)
	if errno != 0 {
		return fmt.Errorf("tell the kernel %s's new size: %w", p.Dev, errno)
	}
	return nil
}

// ext4ResizeFS is EXT4_IOC_RESIZE_FS, _IOW('f', 16, __u64).
const ext4ResizeFS = 0x40086610

// resizeExt4 grows the ext4 file system mounted at mountpoint to blocks of its blocks.
func resizeExt4(mountpoint string, blocks uint64) error {
	f, err := os.Open(mountpoint)
	if err != nil {
		return fmt.Errorf("grow the file system at %s: %w", mountpoint, err)
	}
	defer f.Close()
	if _, _, errno := unix.Syscall(unix.SYS_IOCTL, f.Fd(), ext4ResizeFS, uintptr(unsafe.Pointer(&blocks))); errno != 0 {
		return fmt.Errorf("grow the file system at %s to %d blocks: %w", mountpoint, blocks, errno)
	}
	return nil
}

// WipeBoot zeroes the primary and backup GPT of the disk at diskPath (its first and last
// MiB) and the first MiB of its EFI partition efi, so that firmware finds nothing to boot
// there. Nothing else is touched: the kernel keeps the partition table it read.
func WipeBoot(diskPath string, efi Partition) error {
	start, err := partitionStart(efi)
	if err != nil {
		return err
	}
	f, err := os.OpenFile(diskPath, os.O_RDWR, 0)
	if err != nil {
		return fmt.Errorf("wipe %s: %w", diskPath, err)
	}
	defer f.Close()
	if err := wipeBoot(f, start); err != nil {
		return fmt.Errorf("wipe %s: %w", diskPath, err)
	}
	return f.Close()
}

func wipeBoot(f *os.File, efiStart int64) error {
	size, err := f.Seek(0, io.SeekEnd)
	if err != nil {
		return err
	}
	zero := make([]byte, MiB)
	for _, off := range []int64{0, efiStart, size - MiB} {
		if off < 0 || off >= size {
			continue
		}
		if _, err := f.WriteAt(zero[:min(MiB, size-off)], off); err != nil {
			return err
		}
	}
	return f.Sync()
}
