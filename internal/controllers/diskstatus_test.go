package controllers

import (
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/plinthos/plinth/internal/resources"
)

// fakeSysfs builds sysfs trees: devices under devices/, linked from class/block and block/
// as the kernel does.
type fakeSysfs struct {
	t    *testing.T
	root string
}

func (f *fakeSysfs) write(rel, content string) {
	f.t.Helper()
	p := filepath.Join(f.root, rel)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		f.t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(content+"\n"), 0o644); err != nil {
		f.t.Fatal(err)
	}
}

func (f *fakeSysfs) link(rel, target string) {
	f.t.Helper()
	p := filepath.Join(f.root, rel)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		f.t.Fatal(err)
	}
	relTarget, err := filepath.Rel(filepath.Dir(p), filepath.Join(f.root, target))
	if err != nil {
		f.t.Fatal(err)
	}
	if err := os.Symlink(relTarget, p); err != nil {
		f.t.Fatal(err)
	}
}

// disk adds a disk at devices/<path>/block/<name> with attrs (relative file -> content).
func (f *fakeSysfs) disk(path, name string, attrs map[string]string) string {
	dev := filepath.Join("devices", path, "block", name)
	for k, v := range attrs {
		f.write(filepath.Join(dev, k), v)
	}
	f.write(filepath.Join(dev, "uevent"), "DEVTYPE=disk\nDEVNAME="+name)
	f.link(filepath.Join("class", "block", name), dev)
	f.link(filepath.Join("block", name), dev)
	return dev
}

// partition adds partition n of the disk at dev.
func (f *fakeSysfs) partition(dev, name string, n int, sectors, label string) {
	p := filepath.Join(dev, name)
	f.write(filepath.Join(p, "partition"), strconv.Itoa(n))
	f.write(filepath.Join(p, "size"), sectors)
	uevent := "MAJOR=253\nDEVNAME=" + name + "\nDEVTYPE=partition\nPARTN=" + strconv.Itoa(n)
	if label != "" {
		uevent += "\nPARTNAME=" + label
	}
	f.write(filepath.Join(p, "uevent"), uevent)
	f.link(filepath.Join("class", "block", name), p)
}

func TestReadDisks(t *testing.T) {
	f := &fakeSysfs{t: t, root: t.TempDir()}
	vda := f.disk("pci0000:00/0000:00:02.0/virtio1", "vda", map[string]string{
		"size": "4194304", "ro": "0", "removable": "0", "serial": "disk-1", "queue/rotational": "0",
	})
	f.partition(vda, "vda2", 2, "2048", "ROOT-A")
	f.partition(vda, "vda1", 1, "1024", "EFI")
	f.partition(vda, "vda3", 3, "10", "")
	f.disk("pci0000:00/0000:00:1f.2/ata1/host0/target0:0:0/0:0:0:0", "sda", map[string]string{
		"size": "100", "ro": "1", "removable": "0", "queue/rotational": "1", "device/model": "SPINNER 9000",
	})
	f.disk("pci0000:00/0000:00:04.0/nvme/nvme0", "nvme0n1", map[string]string{"size": "8", "device/serial": "S123", "device/model": "Fast"})
	f.disk("virtual", "loop0", map[string]string{"size": "0", "ro": "0", "removable": "0"})
	f.disk("virtual", "loop1", map[string]string{"size": "16", "ro": "1", "removable": "0"})

	disks, err := ReadDisks(f.root)
	if err != nil {
		t.Fatal(err)
	}
	if len(disks) != 4 {
		t.Errorf("disks %v, want vda, sda, nvme0n1, loop1", disks)
	}
	got := disks["vda"]
	if got.Size != 4194304*512 || got.Serial != "disk-1" || got.Rotational || got.ReadOnly || got.Transport != "virtio" {
		t.Errorf("vda %+v", got)
	}
	want := []resources.DiskPartition{
		{Name: "vda1", Number: 1, Label: "EFI", Size: 1024 * 512},
		{Name: "vda2", Number: 2, Label: "ROOT-A", Size: 2048 * 512},
		{Name: "vda3", Number: 3, Size: 10 * 512},
	}
	if len(got.Partitions) != len(want) {
		t.Fatalf("vda partitions %+v, want %+v", got.Partitions, want)
	}
	for i := range want {
		if got.Partitions[i] != want[i] {
			t.Errorf("vda partition %d: %+v, want %+v", i, got.Partitions[i], want[i])
		}
	}
	if sda := disks["sda"]; sda.Model != "SPINNER 9000" || !sda.Rotational || !sda.ReadOnly || sda.Transport != "ata" || sda.Size != 100*512 || len(sda.Partitions) != 0 {
		t.Errorf("sda %+v", sda)
	}
	if nvme := disks["nvme0n1"]; nvme.Serial != "S123" || nvme.Model != "Fast" || nvme.Transport != "nvme" {
		t.Errorf("nvme0n1 %+v", nvme)
	}
	if loop := disks["loop1"]; loop.Transport != "virtual" || !loop.ReadOnly {
		t.Errorf("loop1 %+v", loop)
	}

	// No sysfs at all: no disks, no error.
	if disks, err := ReadDisks(filepath.Join(f.root, "missing")); err != nil || len(disks) != 0 {
		t.Errorf("missing sysfs: %v %v", disks, err)
	}
}

func TestDiskStatusMirrorsSysfs(t *testing.T) {
	f := &fakeSysfs{t: t, root: t.TempDir()}
	vda := f.disk("pci0000:00/0000:00:02.0/virtio1", "vda", map[string]string{"size": "2048", "queue/rotational": "0"})
	f.disk("pci0000:00/0000:00:03.0/virtio2", "vdb", map[string]string{"size": "4096"})
	const period = 10 * time.Second
	h := start(t, nil, &DiskStatus{SysfsRoot: f.root, Resync: period})
	waitSpec(t, h, resources.NamespaceBlock, resources.DiskStatusType, "vda",
		func(s resources.DiskStatusSpec) bool { return s.Size == 2048*512 && len(s.Partitions) == 0 })
	waitSpec(t, h, resources.NamespaceBlock, resources.DiskStatusType, "vdb",
		func(s resources.DiskStatusSpec) bool { return s.Transport == "virtio" })

	// A new partition table on vda and vdb unplugged: seen at the next resync.
	f.partition(vda, "vda1", 1, "1024", "META")
	for _, p := range []string{"class/block/vdb", "block/vdb"} {
		if err := os.Remove(filepath.Join(f.root, p)); err != nil {
			t.Fatal(err)
		}
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		h.clk.Advance(period)
		r, err := h.store.Get(resources.NamespaceBlock, resources.DiskStatusType, "vda")
		_, errGone := h.store.Get(resources.NamespaceBlock, resources.DiskStatusType, "vdb")
		if err == nil && errGone != nil {
			s := r.Spec().(*resources.DiskStatusSpec)
			if len(s.Partitions) == 1 && s.Partitions[0].Label == "META" {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("vda or vdb not updated: %v %v", r, errGone)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
