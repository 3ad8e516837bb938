package controllers

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/plinthos/plinth/internal/controller"
	"github.com/plinthos/plinth/internal/resources"
)

// DefaultDiskResync is how often DiskStatus re-reads sysfs.
const DefaultDiskResync = 15 * time.Second

// sectorSize is the unit of the sysfs size attributes, whatever the device's block size.
const sectorSize = 512

// DiskStatus mirrors the block devices of sysfs, with their partitions, as DiskStatus
// resources. It re-reads sysfs every Resync.
type DiskStatus struct {
	// SysfsRoot is where sysfs is mounted; "/sys" when empty.
	SysfsRoot string
	// Resync is the period of the re-reads; DefaultDiskResync when zero.
	Resync time.Duration
}

// Name implements controller.Controller.
func (c *DiskStatus) Name() string { return "block.DiskStatus" }

// Inputs implements controller.Controller.
func (c *DiskStatus) Inputs() []controller.Input { return nil }

// Outputs implements controller.Controller.
func (c *DiskStatus) Outputs() []controller.Output {
	return []controller.Output{{Type: resources.DiskStatusType}}
}

// Run implements controller.Controller.
func (c *DiskStatus) Run(ctx context.Context, rt controller.Runtime, _ *slog.Logger) error {
	root := c.SysfsRoot
	if root == "" {
		root = "/sys"
	}
	period := c.Resync
	if period <= 0 {
		period = DefaultDiskResync
	}
	for {
		disks, err := ReadDisks(root)
		if err != nil {
			return err
		}
		if err := mirror(ctx, rt, resources.NamespaceBlock, resources.DiskStatusType, disks); err != nil {
			return err
		}
		timer := rt.Clock().NewTimer(period)
		select {
		case <-ctx.Done():
			timer.Stop()
			return nil
		case <-timer.C():
		}
	}
}

// ReadDisks reads the block devices of the sysfs mounted at root, by device name. Partitions
// are reported with their disk; devices without a medium that only the kernel makes (unused
// loop and ram devices) are left out.
func ReadDisks(root string) (map[string]resources.DiskStatusSpec, error) {
	entries, err := os.ReadDir(filepath.Join(root, "class", "block"))
	if errors.Is(err, fs.ErrNotExist) {
		return map[string]resources.DiskStatusSpec{}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("list block devices: %w", err)
	}
	out := map[string]resources.DiskStatusSpec{}
	for _, e := range entries {
		name := e.Name()
		if exists(filepath.Join(root, "class", "block", name, "partition")) {
			continue // listed with its disk
		}
		dir := filepath.Join(root, "block", name)
		if !exists(dir) {
			continue // gone since the listing
		}
		spec := readDisk(root, dir)
		if spec.Size == 0 && spec.Transport == "virtual" {
			continue
		}
		out[name] = spec
	}
	return out, nil
}

// readDisk reads the attributes of the disk whose sysfs directory is dir.
func readDisk(root, dir string) resources.DiskStatusSpec {
	spec := resources.DiskStatusSpec{
		Size:       readUint(filepath.Join(dir, "size")) * sectorSize,
		Rotational: readString(filepath.Join(dir, "queue", "rotational")) == "1",
		ReadOnly:   readString(filepath.Join(dir, "ro")) == "1",
		Removable:  readString(filepath.Join(dir, "removable")) == "1",
		Model:      readString(filepath.Join(dir, "device", "model")),
		Transport:  transport(root, dir),
	}
	// virtio-blk has its serial on the disk, NVMe and some others on the device.
	for _, p := range []string{filepath.Join(dir, "serial"), filepath.Join(dir, "device", "serial")} {
		if s := readString(p); s != "" {
			spec.Serial = s
			break
		}
	}
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		pdir := filepath.Join(dir, e.Name())
		if !exists(filepath.Join(pdir, "partition")) {
			continue
		}
		part := resources.DiskPartition{
			Name:   e.Name(),
			Number: int(readUint(filepath.Join(pdir, "partition"))),
			Size:   readUint(filepath.Join(pdir, "size")) * sectorSize,
		}
		uevent := readUevent(filepath.Join(pdir, "uevent"))
		part.Label = uevent["PARTNAME"]
		if part.Number == 0 {
			n, _ := strconv.Atoi(uevent["PARTN"])
			part.Number = n
		}
		spec.Partitions = append(spec.Partitions, part)
	}
	slices.SortFunc(spec.Partitions, func(a, b resources.DiskPartition) int {
		if a.Number != b.Number {
			return a.Number - b.Number
		}
		return strings.Compare(a.Name, b.Name)
	})
	return spec
}

// transports maps a component of the device path to the bus, most specific first: a USB
// stick is a SCSI disk below a USB device, a SATA disk a SCSI disk below an ATA port.
var transports = []struct{ component, transport string }{
	{"usb", "usb"},
	{"ata", "ata"},
	{"nvme", "nvme"},
	{"mmc", "mmc"},
	{"virtio", "virtio"},
	{"host", "scsi"},
	{"virtual", "virtual"},
}

// transport guesses the bus of the disk at dir from the sysfs device path it links to.
func transport(root, dir string) string {
	real, err := filepath.EvalSymlinks(dir)
	if err != nil {
		return ""
	}
	if r, err := filepath.EvalSymlinks(root); err == nil {
		root = r
	}
	rel, err := filepath.Rel(root, real)
	if err != nil {
		return ""
	}
	parts := strings.Split(filepath.ToSlash(rel), "/")
	for _, t := range transports {
		for _, p := range parts {
			// Components such as usb1, ata2, nvme0, mmc0, virtio3, host0.
			if strings.HasPrefix(p, t.component) && strings.Trim(p[len(t.component):], "0123456789:.-") == "" {
				return t.transport
			}
		}
	}
	return ""
}

func exists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

// readString reads a sysfs attribute, trimmed; empty when it is missing.
func readString(p string) string {
	b, err := os.ReadFile(p)
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(b))
}

// readUint reads a numeric sysfs attribute; 0 when it is missing or not a number.
func readUint(p string) uint64 {
	n, _ := strconv.ParseUint(readString(p), 10, 64)
	return n
}

// readUevent reads the KEY=value lines of a uevent file.
func readUevent(p string) map[string]string {
	out := map[string]string{}
	b, err := os.ReadFile(p)
	if err != nil {
		return out
	}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		if k, v, ok := strings.Cut(sc.Text(), "="); ok {
			out[k] = v
		}
	}
	return out
}
