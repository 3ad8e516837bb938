package stage0

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/plinthos/plinth/internal/clock"
)

// BlockDevice is what a block device's uevent file in sysfs says about it.
type BlockDevice struct {
	// Name is the entry in /sys/class/block.
	Name string
	// DevName is the device node's name under /dev.
	DevName string
	// DevType is "disk" or "partition".
	DevType string
	// PartName is the GPT partition name; empty for disks and unnamed partitions.
	PartName     string
	Major, Minor uint32
}

func (d BlockDevice) String() string {
	s := d.Name
	if d.DevType != "" {
		s += " (" + d.DevType
		if d.DevType == "partition" {
			if d.PartName != "" {
				s += fmt.Sprintf(" %q", d.PartName)
			} else {
				s += ", no name"
			}
		}
		s += ")"
	}
	return s
}

// ScanBlockDevices reads <dir>/*/uevent (dir is normally /sys/class/block) and returns the
// devices sorted by name. A device that disappears while being read is skipped.
func ScanBlockDevices(dir string) ([]BlockDevice, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("list block devices: %w", err)
	}
	var devs []BlockDevice
	for _, e := range entries {
		d, err := readUevent(filepath.Join(dir, e.Name(), "uevent"))
		if err != nil {
			continue
		}
		d.Name = e.Name()
		devs = append(devs, d)
	}
	sort.Slice(devs, func(i, j int) bool { return devs[i].Name < devs[j].Name })
	return devs, nil
}

func readUevent(path string) (BlockDevice, error) {
	f, err := os.Open(path)
	if err != nil {
		return BlockDevice{}, err
	}
	defer func() { _ = f.Close() }()
	var d BlockDevice
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		key, value, ok := strings.Cut(sc.Text(), "=")
		if !ok {
			continue
		}
		switch key {
		case "DEVNAME":
			d.DevName = value
		case "DEVTYPE":
			d.DevType = value
		case "PARTNAME":
			d.PartName = value
		case "MAJOR":
			n, err := strconv.ParseUint(value, 10, 32)
			if err != nil {
				return BlockDevice{}, fmt.Errorf("%s: MAJOR=%s: %w", path, value, err)
			}
			d.Major = uint32(n)
		case "MINOR":
			n, err := strconv.ParseUint(value, 10, 32)
			if err != nil {
				return BlockDevice{}, fmt.Errorf("%s: MINOR=%s: %w", path, value, err)
			}
			d.Minor = uint32(n)
		}
	}
	if err := sc.Err(); err != nil {
		return BlockDevice{}, fmt.Errorf("read %s: %w", path, err)
	}
	return d, nil
}

// RootNotFoundError says that the root partition did not appear in time, and what was there
// instead.
type RootNotFoundError struct {
	Want   string
	Waited time.Duration
	// Seen is every block device of the last scan.
	Seen []BlockDevice
	// ScanErr is the last scan's error, if it failed.
	ScanErr error
	// Media says that Want is the install media, not a partition name.
	Media bool
}

func (e *RootNotFoundError) Error() string {
	var b strings.Builder
	what := "partition named " + e.Want
	if e.Media {
		what = e.Want
	}
	fmt.Fprintf(&b, "no %s appeared within %s", what, e.Waited)
	switch {
	case e.ScanErr != nil:
		fmt.Fprintf(&b, "\nblock devices: %v", e.ScanErr)
	case len(e.Seen) == 0:
		b.WriteString("\nblock devices seen: none (the disk's driver is probably not loaded)")
	default:
		names := make([]string, len(e.Seen))
		for i, d := range e.Seen {
			names[i] = d.String()
		}
		b.WriteString("\nblock devices seen: " + strings.Join(names, ", "))
	}
	return b.String()
}

// AmbiguousRootError says that more than one partition carries the wanted name, so stage 0
// cannot tell which disk it was booted from.
type AmbiguousRootError struct {
	Want    string
	Matches []BlockDevice
}

func (e *AmbiguousRootError) Error() string {
	names := make([]string, len(e.Matches))
	for i, d := range e.Matches {
		names[i] = d.Name
	}
	return fmt.Sprintf("several partitions are named %s (%s): remove the other Plinth disks, or boot another name with plinth.root=",
		e.Want, strings.Join(names, ", "))
}

// Waiter polls sysfs for a partition.
type Waiter struct {
	// Dir is the sysfs block class directory, normally /sys/class/block.
	Dir   string
	Clock clock.Clock
	// Poll is the time between scans.
	Poll time.Duration
}

// Wait scans for the partition named want until it appears or timeout has passed; it scans
// at least once, so a zero timeout asks "is it there now?".
func (w Waiter) Wait(ctx context.Context, want string, timeout time.Duration) (BlockDevice, error) {
	deadline := w.Clock.Now().Add(timeout)
	for {
		devs, err := ScanBlockDevices(w.Dir)
		var matches []BlockDevice
		for _, d := range devs {
			if d.DevType == "partition" && d.PartName == want {
				matches = append(matches, d)
			}
		}
		switch len(matches) {
		case 0:
		case 1:
			return matches[0], nil
		default:
			return BlockDevice{}, &AmbiguousRootError{Want: want, Matches: matches}
		}
		left := deadline.Sub(w.Clock.Now())
		if left <= 0 {
			return BlockDevice{}, &RootNotFoundError{Want: want, Waited: timeout, Seen: devs, ScanErr: err}
		}
		t := w.Clock.NewTimer(min(w.Poll, left))
		select {
		case <-ctx.Done():
			t.Stop()
			return BlockDevice{}, fmt.Errorf("wait for partition %s: %w", want, ctx.Err())
		case <-t.C():
		}
	}
}

// MediaVolumeID is the ISO 9660 volume identifier of Plinth's install media.
const MediaVolumeID = "PLINTH"

// isMedia says whether the device at path holds an ISO 9660 file system whose volume
// identifier is MediaVolumeID: the primary volume descriptor is at 32 KiB, type 1, "CD001",
// with the identifier at byte 40 (32 bytes, padded with spaces or NULs).
func isMedia(path string) bool {
	f, err := os.Open(path)
	if err != nil {
		return false
	}
	defer f.Close()
	b := make([]byte, 72)
	if _, err := f.ReadAt(b, 32768); err != nil {
		return false
	}
	return b[0] == 1 && string(b[1:6]) == "CD001" && strings.TrimRight(string(b[40:72]), " \x00") == MediaVolumeID
}

// WaitMedia scans the whole disks (CD-ROMs included) for the install media, reading their
// nodes under devDir, until one has it or timeout has passed.
func (w Waiter) WaitMedia(ctx context.Context, devDir string, timeout time.Duration) (BlockDevice, error) {
	deadline := w.Clock.Now().Add(timeout)
	for {
		devs, err := ScanBlockDevices(w.Dir)
		for _, d := range devs {
			if d.DevType == "disk" && isMedia(filepath.Join(devDir, d.DevName)) {
				return d, nil
			}
		}
		left := deadline.Sub(w.Clock.Now())
		if left <= 0 {
			return BlockDevice{}, &RootNotFoundError{Want: "install media (ISO 9660 volume " + MediaVolumeID + ")", Waited: timeout, Seen: devs, ScanErr: err, Media: true}
		}
		t := w.Clock.NewTimer(min(w.Poll, left))
		select {
		case <-ctx.Done():
			t.Stop()
			return BlockDevice{}, fmt.Errorf("wait for the install media: %w", ctx.Err())
		case <-t.C():
		}
	}
}
