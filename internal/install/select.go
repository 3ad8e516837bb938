package install

import (
	"fmt"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"github.com/plinthos/plinth/pkg/config"
)

// Disk is a whole disk as the selector sees it.
type Disk struct {
	Name  string // as in /sys/block, such as vda
	Size  int64  // bytes
	Model string
	Bus   string // virtio, nvme, scsi, ata, usb
}

func (d Disk) String() string {
	return fmt.Sprintf("/dev/%s (%d MiB, bus %s, model %q)", d.Name, d.Size>>20, d.Bus, d.Model)
}

// notDisks are the /sys/block names that are never install targets.
var notDisks = []string{"loop", "ram", "zram", "sr", "fd", "dm-", "md", "nbd"}

// Disks lists the writable whole disks under sysBlock (/sys/block), sorted by name.
func Disks(sysBlock string) ([]Disk, error) {
	entries, err := os.ReadDir(sysBlock)
	if err != nil {
		return nil, fmt.Errorf("list disks: %w", err)
	}
	var out []Disk
	for _, e := range entries {
		name := e.Name()
		if hasAnyPrefix(name, notDisks) {
			continue
		}
		dir := filepath.Join(sysBlock, name)
		if ro := readTrim(filepath.Join(dir, "ro")); ro == "1" {
			continue
		}
		sectors, err := strconv.ParseInt(readTrim(filepath.Join(dir, "size")), 10, 64)
		if err != nil || sectors == 0 {
			continue
		}
		d := Disk{Name: name, Size: sectors * 512, Model: readTrim(filepath.Join(dir, "device", "model"))}
		target, _ := filepath.EvalSymlinks(dir)
		switch {
		case strings.HasPrefix(name, "vd"):
			d.Bus = "virtio"
		case strings.HasPrefix(name, "nvme"):
			d.Bus = "nvme"
		case strings.Contains(target, "/usb"):
			d.Bus = "usb"
		case strings.Contains(target, "/ata"):
			d.Bus = "ata"
		default:
			d.Bus = "scsi"
		}
		out = append(out, d)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// Select returns the device path of the first disk that matches every field of sel.
func Select(sysBlock string, sel config.DiskSelector) (string, error) {
	disks, err := Disks(sysBlock)
	if err != nil {
		return "", err
	}
	for _, d := range disks {
		if sel.Bus != "" && d.Bus != sel.Bus {
			continue
		}
		if sel.Model != "" {
			if ok, _ := path.Match(sel.Model, d.Model); !ok {
				continue
			}
		}
		if sel.Size != "" {
			ok, err := config.SizeMatches(sel.Size, d.Size)
			if err != nil {
				return "", fmt.Errorf("machine.install.diskSelector.size: %w", err)
			}
			if !ok {
				continue
			}
		}
		return "/dev/" + d.Name, nil
	}
	seen := make([]string, len(disks))
	for i, d := range disks {
		seen[i] = d.String()
	}
	return "", fmt.Errorf("install: no disk matches machine.install.diskSelector (size %q, model %q, bus %q); the disks are: %s",
		sel.Size, sel.Model, sel.Bus, strings.Join(seen, ", "))
}

func hasAnyPrefix(s string, prefixes []string) bool {
	for _, p := range prefixes {
		if strings.HasPrefix(s, p) {
			return true
		}
	}
	return false
}

func readTrim(p string) string {
	b, err := os.ReadFile(p)
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(b))
}
