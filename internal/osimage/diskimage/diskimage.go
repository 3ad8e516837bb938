// Package diskimage lays out and writes the raw GPT disk image of a Plinth node:
//
//	EFI        128 MiB  EFI system partition: systemd-boot and slot A's kernel (package esp)
//	ROOT-A     slot A   the root squashfs, written raw
//	ROOT-B     slot B   empty; upgrades write the inactive slot
//	META       1 MiB    boot state (slot, trial, install progress), written by machined
//	STATE      64 MiB   ext4: the configuration and the node's identity
//	EPHEMERAL  256 MiB  ext4 at /var; machined grows it to the disk's end at boot
//
// Partitions are 1 MiB aligned and named exactly as above (GPT partition names), since
// stage 0 and machined find them by PARTNAME. STATE and EPHEMERAL hold empty ext4 file
// systems made at build time (package ext4img): the node never formats. Disk and partition
// GUIDs are derived from a seed (a digest of the image's inputs), so equal inputs give
// byte-identical images.
package diskimage

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"

	diskfs "github.com/diskfs/go-diskfs"
	"github.com/diskfs/go-diskfs/partition/gpt"
	"github.com/google/uuid"
)

// Partition names, as stage 0 and machined look them up.
const (
	EFI       = "EFI"
	RootA     = "ROOT-A"
	RootB     = "ROOT-B"
	Meta      = "META"
	State     = "STATE"
	Ephemeral = "EPHEMERAL"
)

const (
	MiB        = int64(1) << 20
	sectorSize = 512
	// EFISize and MetaSize are the fixed sizes of the EFI and META partitions.
	EFISize       = 128 * MiB
	MetaSize      = 1 * MiB
	StateSize     = 64 * MiB
	EphemeralSize = 256 * MiB
	// DefaultRootSize is the size of each root slot: room for the Kubernetes profile, and the
	// same in every release so that any release fits the inactive slot.
	DefaultRootSize = 1024 * MiB
)

// Partition types: the EFI system partition, Linux root (x86-64) for the slots, Linux data
// for META.
const (
	typeEFI  = gpt.EFISystemPartition
	typeRoot = gpt.LinuxRootX86_64
	typeData = gpt.LinuxFilesystem
)

// namespace is the UUIDv5 namespace of Plinth disk GUIDs.
var namespace = uuid.MustParse("4b8c6a57-6a43-4c5e-9d0e-5f1e3c2a9b71")

// Partition is one partition of the layout, in bytes.
type Partition struct {
	Name  string
	Type  gpt.Type
	Start int64
	Size  int64
	GUID  string
}

// Layout is the partition table of an image.
type Layout struct {
	Size       int64 // the whole disk
	GUID       string
	Partitions []Partition
}

// GUID derives a stable GUID (UUIDv5) for what (the disk, or a partition name) from seed.
func GUID(seed []byte, what string) string {
	return uuid.NewSHA1(namespace, append(append([]byte{}, seed...), "/"+what...)).String()
}

// NewLayout places EFI, ROOT-A, ROOT-B, META, STATE and EPHEMERAL, each 1 MiB aligned from
// 1 MiB, and sizes the disk to end 1 MiB after EPHEMERAL (room for the backup GPT).
func NewLayout(rootSize int64, seed []byte) (Layout, error) {
	if rootSize <= 0 || rootSize%MiB != 0 {
		return Layout{}, fmt.Errorf("disk layout: root slot size %d is not a positive multiple of 1 MiB", rootSize)
	}
	l := Layout{GUID: GUID(seed, "disk")}
	next := MiB
	for _, p := range []struct {
		name string
		typ  gpt.Type
		size int64
	}{{EFI, typeEFI, EFISize}, {RootA, typeRoot, rootSize}, {RootB, typeRoot, rootSize}, {Meta, typeData, MetaSize},
		{State, typeData, StateSize}, {Ephemeral, typeData, EphemeralSize}} {
		l.Partitions = append(l.Partitions, Partition{Name: p.name, Type: p.typ, Start: next, Size: p.size, GUID: GUID(seed, p.name)})
		next += p.size
	}
	l.Size = next + MiB
	return l, nil
}

// Find returns the partition called name.
func (l Layout) Find(name string) (Partition, bool) {
	for _, p := range l.Partitions {
		if p.Name == name {
			return p, true
		}
	}
	return Partition{}, false
}

func (l Layout) table() *gpt.Table {
	t := &gpt.Table{LogicalSectorSize: sectorSize, PhysicalSectorSize: sectorSize, ProtectiveMBR: true, GUID: l.GUID}
	for i, p := range l.Partitions {
		t.Partitions = append(t.Partitions, &gpt.Partition{
			Index: i + 1,
			Start: uint64(p.Start / sectorSize),
			End:   uint64((p.Start+p.Size)/sectorSize - 1),
			Size:  uint64(p.Size),
			Type:  p.Type,
			Name:  p.Name,
			GUID:  p.GUID,
		})
	}
	return t
}

// Write creates the sparse disk image at path with the layout's partition table and
// contents (partition name to the path of a file written raw at its start). An existing
// file at path is replaced.
func Write(ctx context.Context, path string, l Layout, contents map[string]string) error {
	for name, src := range contents {
		p, ok := l.Find(name)
		if !ok {
			return fmt.Errorf("disk image: no partition %s for %s", name, src)
		}
		info, err := os.Stat(src)
		if err != nil {
			return fmt.Errorf("disk image: %s content: %w", name, err)
		}
		if info.Size() > p.Size {
			return fmt.Errorf("disk image: %s (%d bytes) does not fit partition %s (%d bytes): raise the slot size",
				src, info.Size(), name, p.Size)
		}
	}
	tmp := path + ".tmp"
	if err := os.Remove(tmp); err != nil && !os.IsNotExist(err) {
		return fmt.Errorf("disk image: %w", err)
	}
	d, err := diskfs.Create(tmp, l.Size, diskfs.SectorSize512)
	if err != nil {
		return fmt.Errorf("disk image: create %s: %w", tmp, err)
	}
	err = d.Partition(l.table())
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(tmp)
		return fmt.Errorf("disk image: partition table: %w", err)
	}
	if err := writeContents(ctx, tmp, l, contents); err != nil {
		os.Remove(tmp)
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("disk image: %w", err)
	}
	return nil
}

func writeContents(ctx context.Context, img string, l Layout, contents map[string]string) error {
	f, err := os.OpenFile(img, os.O_WRONLY, 0)
	if err != nil {
		return fmt.Errorf("disk image: %w", err)
	}
	defer f.Close()
	for _, p := range l.Partitions {
		src, ok := contents[p.Name]
		if !ok {
			continue
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		in, err := os.Open(src)
		if err != nil {
			return fmt.Errorf("disk image: %s content: %w", p.Name, err)
		}
		err = copySparse(io.NewOffsetWriter(f, p.Start), io.LimitReader(in, p.Size))
		in.Close()
		if err != nil {
			return fmt.Errorf("disk image: write %s into %s: %w", src, p.Name, err)
		}
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("disk image: %w", err)
	}
	return f.Close()
}

// copySparse copies r to w in blocks, seeking over the blocks that are all zero: the image
// is a new sparse file, so they read as zero without being written.
func copySparse(w *io.OffsetWriter, r io.Reader) error {
	buf := make([]byte, 64<<10)
	zero := make([]byte, len(buf))
	for {
		n, err := io.ReadFull(r, buf)
		if n > 0 {
			if bytes.Equal(buf[:n], zero[:n]) {
				if _, serr := w.Seek(int64(n), io.SeekCurrent); serr != nil {
					return serr
				}
			} else if _, werr := w.Write(buf[:n]); werr != nil {
				return werr
			}
		}
		if err == io.EOF || err == io.ErrUnexpectedEOF {
			return nil
		}
		if err != nil {
			return err
		}
	}
}
