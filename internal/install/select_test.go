package install

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/plinthos/plinth/pkg/config"
)

// fakeBlock makes a /sys/block with the devices' real directories under devices/ (the bus
// shows in the link's target, as in sysfs).
func fakeBlock(t *testing.T) string {
	t.Helper()
	root := t.TempDir()
	block := filepath.Join(root, "block")
	os.MkdirAll(block, 0o755)
	for _, d := range []struct{ name, parent, size, model, ro string }{
		{"vda", "pci0000:00/virtio2", "8388608", "", "0"},                                         // 4 GiB
		{"sda", "pci0000:00/ata1/host0/target0:0:0/0:0:0:0", "62914560", "Samsung SSD 860 ", "0"}, // 30 GiB
		{"sdb", "pci0000:00/usb1/1-1/host2/target2:0:0/2:0:0:0", "31457280", "Cruzer", "0"},       // 15 GiB
		{"sr0", "pci0000:00/ata2/host1", "83968", "QEMU DVD", "1"},
		{"loop0", "virtual", "2048", "", "0"},
		{"nvme0n1", "pci0000:00/nvme/nvme0", "209715200", "QEMU NVMe Ctrl", "0"}, // 100 GiB
	} {
		dev := filepath.Join(root, "devices", d.parent, "block", d.name)
		os.MkdirAll(filepath.Join(dev, "device"), 0o755)
		os.WriteFile(filepath.Join(dev, "size"), []byte(d.size+"\n"), 0o644)
		os.WriteFile(filepath.Join(dev, "ro"), []byte(d.ro+"\n"), 0o644)
		os.WriteFile(filepath.Join(dev, "device", "model"), []byte(d.model+"\n"), 0o644)
		if err := os.Symlink(dev, filepath.Join(block, d.name)); err != nil {
			t.Fatal(err)
		}
	}
	return block
}

func TestSelect(t *testing.T) {
	block := fakeBlock(t)
	disks, err := Disks(block)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, d := range disks {
		names = append(names, d.Name+":"+d.Bus)
	}
	if got := strings.Join(names, " "); got != "nvme0n1:nvme sda:ata sdb:usb vda:virtio" {
		t.Errorf("disks: %s", got)
	}
	for _, c := range []struct {
		sel  config.DiskSelector
		want string
	}{
		{config.DiskSelector{Bus: "virtio"}, "/dev/vda"},
		{config.DiskSelector{Size: ">= 20GiB"}, "/dev/nvme0n1"},
		{config.DiskSelector{Size: "<= 40GB", Bus: "ata"}, "/dev/sda"},
		{config.DiskSelector{Model: "Samsung*"}, "/dev/sda"},
		{config.DiskSelector{Bus: "usb"}, "/dev/sdb"},
	} {
		got, err := Select(block, c.sel)
		if err != nil || got != c.want {
			t.Errorf("Select(%+v) = %q, %v; want %s", c.sel, got, err, c.want)
		}
	}
	_, err = Select(block, config.DiskSelector{Size: ">= 1TB"})
	if err == nil || !strings.Contains(err.Error(), "no disk matches") || !strings.Contains(err.Error(), "/dev/vda (4096 MiB, bus virtio") {
		t.Errorf("no match: %v", err)
	}
}
