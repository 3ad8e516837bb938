package storage

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"unsafe"

	"github.com/diskfs/go-diskfs/partition/gpt"
	"golang.org/x/sys/unix"
)

// fakeSys builds /sys/class/block links into a /sys/devices tree: disk vda with the named
// partitions, numbered from 1.
func fakeSys(t *testing.T, disk string, names ...string) string {
	t.Helper()
	root := t.TempDir()
	class := filepath.Join(root, "class", "block")
	devs := filepath.Join(root, "devices", "pci0000:00", disk)
	for _, d := range []string{class, devs} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	link := func(name, target, uevent string) {
		if err := os.MkdirAll(target, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(target, "uevent"), []byte(uevent), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink(target, filepath.Join(class, name)); err != nil {
			t.Fatal(err)
		}
	}
	link(disk, devs, "MAJOR=254\nMINOR=0\nDEVNAME="+disk+"\nDEVTYPE=disk\n")
	for i, n := range names {
		dev := disk + string(rune('1'+i))
		link(dev, filepath.Join(devs, dev), "MAJOR=254\nDEVNAME="+dev+"\nDEVTYPE=partition\nPARTN="+string(rune('1'+i))+"\nPARTNAME="+n+"\n")
	}
	return class
}

func TestFind(t *testing.T) {
	sys := fakeSys(t, "vda", "EFI", "ROOT-A", "ROOT-B", "META", "STATE", "EPHEMERAL")
	p, err := Find(sys, "EPHEMERAL")
	if err != nil {
		t.Fatal(err)
	}
	if p != (Partition{Name: "EPHEMERAL", Dev: "vda6", Disk: "vda", Number: 6}) || p.DevPath() != "/dev/vda6" {
		t.Errorf("found %+v", p)
	}
	_, err = Find(sys, "STAT")
	if err == nil || !strings.Contains(err.Error(), "vda5=STATE") {
		t.Errorf("a missing partition: %v", err)
	}
}

func TestFindRefusesTwo(t *testing.T) {
	sys := fakeSys(t, "vda", "STATE", "STATE")
	if _, err := Find(sys, "STATE"); err == nil || !strings.Contains(err.Error(), "2 partitions are named STATE") {
		t.Errorf("two partitions of one name: %v", err)
	}
}

// writeDisk writes a GPT to a sparse file of size bytes: 1 MiB EFI, 4 MiB STATE and 8 MiB
// EPHEMERAL (last).
func writeDisk(t *testing.T, size int64) *os.File {
	t.Helper()
	f, err := os.Create(filepath.Join(t.TempDir(), "disk.raw"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	if err := f.Truncate(size); err != nil {
		t.Fatal(err)
	}
	table := &gpt.Table{LogicalSectorSize: 512, PhysicalSectorSize: 512, ProtectiveMBR: true, GUID: "3f1c2b4a-1111-4222-8333-944455566677"}
	start := uint64(MiB / 512)
	for i, p := range []struct {
		name string
		size int64
	}{{"EFI", MiB}, {"STATE", 4 * MiB}, {"EPHEMERAL", 8 * MiB}} {
		end := start + uint64(p.size/512) - 1
		table.Partitions = append(table.Partitions, &gpt.Partition{Index: i + 1, Start: start, End: end, Size: uint64(p.size), Type: gpt.LinuxFilesystem, Name: p.name,
			GUID: fmt.Sprintf("3f1c2b4a-1111-4222-8333-94445556667%d", i), Attributes: uint64(i) << 48})
		start = end + 1
	}
	if err := table.Write(f, size); err != nil {
		t.Fatal(err)
	}
	return f
}

func TestGrowTable(t *testing.T) {
	f := writeDisk(t, 16*MiB)
	// The disk grows from 16 MiB to 64 MiB (a larger VM disk, or the image on a larger
	// disk): EPHEMERAL ends 1 MiB before the disk's end, the backup GPT moves there.
	if err := f.Truncate(64 * MiB); err != nil {
		t.Fatal(err)
	}
	g, grown, err := growTable(f, 3, 64*MiB)
	if err != nil || !grown {
		t.Fatalf("growTable = %+v, %v, %v", g, grown, err)
	}
	if g.OldEnd != 14*MiB || g.End != 63*MiB {
		t.Errorf("growth %+v", g)
	}
	table, err := gpt.Read(f, 512, 512)
	if err != nil {
		t.Fatal(err)
	}
	if table.RecoveredFromBackup {
		t.Error("the primary table is not valid")
	}
	byName := map[string]*gpt.Partition{}
	for _, p := range table.Partitions {
		byName[p.Name] = p
	}
	if e := byName["EPHEMERAL"]; e == nil || int64(e.End+1)*512 != 63*MiB || int64(e.Start)*512 != 6*MiB {
		t.Errorf("EPHEMERAL after growth: %+v", e)
	}
	for i, name := range []string{"EFI", "STATE", "EPHEMERAL"} {
		p := byName[name]
		if p == nil || !strings.EqualFold(p.GUID, fmt.Sprintf("3f1c2b4a-1111-4222-8333-94445556667%d", i)) || p.Attributes != uint64(i)<<48 || p.Index != i+1 {
			t.Errorf("%s lost its identity in the rewrite: %+v", name, p)
		}
	}
	if s := byName["STATE"]; s == nil || int64(s.End+1)*512 != 6*MiB {
		t.Errorf("STATE after growth: %+v", s)
	}
	if !strings.EqualFold(table.GUID, "3f1c2b4a-1111-4222-8333-944455566677") {
		t.Errorf("disk GUID %s", table.GUID)
	}
	// The backup header is at the disk's new last sector.
	backup := make([]byte, 8)
	if _, err := f.ReadAt(backup, 64*MiB-512); err != nil || string(backup) != "EFI PART" {
		t.Errorf("no backup GPT header at the new end: %q, %v", backup, err)
	}
	// Again: nothing to gain.
	if _, grown, err := growTable(f, 3, 64*MiB); err != nil || grown {
		t.Errorf("a second growth: %v, %v", grown, err)
	}
	// Only the last partition grows.
	if _, grown, err := growTable(f, 2, 64*MiB); err != nil || grown {
		t.Errorf("growth of a partition that is not the last: %v, %v", grown, err)
	}
}

// TestGrowTableLeavesAPartitionAfter: when another partition follows EPHEMERAL, the table
// is left alone.
func TestGrowTableLeavesAPartitionAfter(t *testing.T) {
	f := writeDisk(t, 16*MiB)
	if _, grown, err := growTable(f, 2, 64*MiB); err != nil || grown {
		t.Errorf("STATE, followed by EPHEMERAL, grew: %v, %v", grown, err)
	}
}

func TestKernelStructs(t *testing.T) {
	if n := unsafe.Sizeof(blkpgPartition{}); n != 152 {
		t.Errorf("struct blkpg_partition is %d bytes, want 152", n)
	}
	if n := unsafe.Sizeof(blkpgIoctlArg{}); n != 24 {
		t.Errorf("struct blkpg_ioctl_arg is %d bytes, want 24", n)
	}
}

func TestParseSuperblock(t *testing.T) {
	sb := make([]byte, 1024)
	sb[0x38], sb[0x39] = 0x53, 0xEF
	sb[0x18] = 2    // 4096-byte blocks
	sb[0x06] = 0x01 // 65536 blocks
	sb[0x60] = 0x80 // 64bit
	sb[0x150] = 1   // and 2^32 more
	bs, n, err := parseSuperblock(sb)
	if err != nil || bs != 4096 || n != 1<<32+65536 {
		t.Errorf("parseSuperblock = %d, %d, %v", bs, n, err)
	}
	if _, _, err := parseSuperblock(make([]byte, 1024)); err == nil {
		t.Error("no magic accepted")
	}
}

func TestDiskOf(t *testing.T) {
	root := t.TempDir()
	devs := filepath.Join(root, "devices", "vda")
	if err := os.MkdirAll(filepath.Join(devs, "vda2"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(devs, "vda2", "partition"), []byte("2\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	devBlock := filepath.Join(root, "dev", "block")
	if err := os.MkdirAll(devBlock, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Join(devs, "vda2"), filepath.Join(devBlock, "254:2")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(devs, filepath.Join(devBlock, "254:0")); err != nil {
		t.Fatal(err)
	}
	for dev, want := range map[uint64]string{unix.Mkdev(254, 2): "vda", unix.Mkdev(254, 0): "vda"} {
		if got, err := DiskOf(devBlock, dev); err != nil || got != want {
			t.Errorf("DiskOf(%d:%d) = %q, %v", unix.Major(dev), unix.Minor(dev), got, err)
		}
	}
	sys := fakeSys(t, "vdb", "STATE")
	if _, err := FindOn(sys, "vda", "STATE"); err == nil || !strings.Contains(err.Error(), "not on the boot disk vda") {
		t.Errorf("a STATE on another disk: %v", err)
	}
}

func TestWipeBoot(t *testing.T) {
	p := filepath.Join(t.TempDir(), "disk")
	data := bytes.Repeat([]byte{0xab}, int(8*MiB))
	if err := os.WriteFile(p, data, 0o644); err != nil {
		t.Fatal(err)
	}
	f, err := os.OpenFile(p, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := wipeBoot(f, 3*MiB); err != nil {
		t.Fatal(err)
	}
	got, _ := os.ReadFile(p)
	for _, r := range []struct {
		off  int64
		zero bool
	}{{0, true}, {MiB, false}, {3 * MiB, true}, {4 * MiB, false}, {7 * MiB, true}} {
		if isZero := bytes.Equal(got[r.off:r.off+MiB], make([]byte, MiB)); isZero != r.zero {
			t.Errorf("MiB at %d: zero %v, want %v", r.off>>20, isZero, r.zero)
		}
	}
}
