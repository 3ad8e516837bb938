// Package slots manages the A/B root slots of an installed Plinth disk: it writes an
// upgrade artifact into the slot that is not running (root filesystem to its partition,
// kernel and initramfs and a boot entry to the EFI partition), arms a one-shot trial boot
// of it, makes a slot the default, and says which slot is which.
//
// The trial and the default are systemd-boot's own EFI variables: LoaderEntryOneShot is
// booted once and removed by the boot loader before it boots it, so any failure of the
// trial boot (a kernel panic, which reboots with panic=10; an init that exits; a health
// gate that reboots) comes back on the default entry; LoaderEntryDefault, which overrides
// loader.conf, is set only when the trial is committed. loader.conf's default is kept in
// step so that a machine whose firmware variables are lost still boots the committed slot.
package slots

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/plinthos/plinth/internal/osimage/artifact"
	"github.com/plinthos/plinth/internal/osimage/esp"
)

// Disk is an installed disk's slots as this boot sees them.
type Disk struct {
	// Booted is the running slot, "A" or "B" (plinth.slot).
	Booted string
	// Roots are the root partitions' device nodes (or files, in tests) by slot.
	Roots map[string]string
	// ESP mounts the EFI partition, returning its directory and how to unmount it.
	ESP func() (dir string, unmount func() error, err error)
	// EFIVars is the efivarfs directory (/sys/firmware/efi/efivars).
	EFIVars string
}

// Other is the slot that is not s.
func Other(s string) string {
	if s == "A" {
		return "B"
	}
	return "A"
}

func (d Disk) vars() efiVars { return efiVars(d.EFIVars) }

// Slot is what the boot entry of a slot says.
type Slot struct {
	Name    string // A or B
	Version string // the entry's version; "" when the slot has no entry
	Options string // the entry's kernel command line
}

// Slots reads both slots' boot entries and the default slot: the firmware variable when set,
// else loader.conf's.
func (d Disk) Slots() (slots []Slot, def string, err error) {
	err = d.withESP(func(dir string) error {
		for _, s := range []string{"A", "B"} {
			e, err := readEntry(dir, s)
			if err != nil {
				return err
			}
			slots = append(slots, e)
		}
		if def, err = d.defaultSlot(dir); err != nil {
			return err
		}
		return nil
	})
	return slots, def, err
}

func (d Disk) defaultSlot(espDir string) (string, error) {
	name, err := d.vars().get(VarDefault)
	if err != nil {
		return "", err
	}
	if name == "" {
		data, err := os.ReadFile(filepath.Join(espDir, esp.ConfigPath))
		if err != nil {
			return "", fmt.Errorf("EFI partition: %w", err)
		}
		for line := range strings.SplitSeq(string(data), "\n") {
			if v, ok := strings.CutPrefix(line, "default "); ok {
				name = strings.TrimSpace(v)
			}
		}
	}
	for _, s := range []string{"A", "B"} {
		if strings.EqualFold(name, esp.EntryName(s)) {
			return s, nil
		}
	}
	return "", fmt.Errorf("the default boot entry %q is not a slot's", name)
}

// readEntry parses slot s's boot entry; a missing entry is a Slot without version.
func readEntry(espDir, s string) (Slot, error) {
	out := Slot{Name: s}
	data, err := os.ReadFile(filepath.Join(espDir, esp.EntriesDir, esp.EntryName(s)))
	if errors.Is(err, os.ErrNotExist) {
		return out, nil
	}
	if err != nil {
		return out, fmt.Errorf("EFI partition: boot entry of slot %s: %w", s, err)
	}
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		k, v, _ := strings.Cut(sc.Text(), " ")
		switch k {
		case "version":
			out.Version = strings.TrimSpace(v)
		case "options":
			out.Options = strings.TrimSpace(v)
		}
	}
	return out, nil
}

// Stage writes the artifact read from r into the slot that is not booted and returns its
// manifest and the slot. accept sees the manifest before anything is written and may
// refuse it. The root filesystem goes to the slot's partition and is read back from the
// disk and checked; the kernel and initramfs go to the EFI partition under the slot's
// directory, and its boot entry gets the booted entry's kernel command line with the slot
// changed. Nothing is armed: the machine boots as before until ArmTrial.
func (d Disk) Stage(ctx context.Context, r io.Reader, accept func(artifact.Manifest) error) (artifact.Manifest, string, error) {
	target := Other(d.Booted)
	dev := d.Roots[target]
	if dev == "" {
		return artifact.Manifest{}, "", fmt.Errorf("slot %s has no root partition", target)
	}
	// Once the artifact is accepted and before its root filesystem overwrites the slot,
	// the slot's boot entry goes: nothing may boot (or roll back to) a slot being
	// rewritten, nor one whose new content failed its check.
	dropEntry := func() error {
		return d.withESP(func(dir string) error {
			err := os.Remove(filepath.Join(dir, esp.EntriesDir, esp.EntryName(target)))
			if err != nil && !errors.Is(err, os.ErrNotExist) {
				return fmt.Errorf("EFI partition: remove the boot entry of slot %s: %w", target, err)
			}
			return nil
		})
	}
	sink := &stageSink{ctx: ctx, dev: dev, accept: accept, beforeWrite: dropEntry, small: map[string][]byte{}}
	m, err := artifact.Read(r, sink)
	if err != nil {
		return m, target, err
	}
	if err := verifyPartition(dev, m.Files[artifact.RootfsName]); err != nil {
		return m, target, err
	}
	err = d.withESP(func(dir string) error {
		booted, err := readEntry(dir, d.Booted)
		if err != nil {
			return err
		}
		if booted.Options == "" {
			return fmt.Errorf("EFI partition: the booted slot %s has no boot entry to take the kernel command line from", d.Booted)
		}
		slotDir := filepath.Join(dir, "plinth", target)
		if err := os.MkdirAll(slotDir, 0o755); err != nil {
			return fmt.Errorf("EFI partition: %w", err)
		}
		for name, data := range map[string][]byte{
			filepath.Join(slotDir, "vmlinuz"):       sink.small[artifact.KernelName],
			filepath.Join(slotDir, "initramfs.img"): sink.small[artifact.InitramfsName],
		} {
			if err := replaceFile(name, data); err != nil {
				return err
			}
		}
		entry := esp.Entry{Slot: target, Title: "Plinth " + m.Version, Version: m.Version,
			Options: withSlot(booted.Options, target)}
		return replaceFile(filepath.Join(dir, esp.EntriesDir, esp.EntryName(target)), []byte(entry.Config()))
	})
	return m, target, err
}

// withSlot replaces plinth.slot=X in a kernel command line (or adds it).
func withSlot(options, slot string) string {
	fields := strings.Fields(options)
	found := false
	for i, f := range fields {
		if strings.HasPrefix(f, "plinth.slot=") {
			fields[i] = "plinth.slot=" + slot
			found = true
		}
	}
	if !found {
		fields = append([]string{"plinth.slot=" + slot}, fields...)
	}
	return strings.Join(fields, " ")
}

// ArmTrial makes the next boot, and only the next one, boot slot s.
func (d Disk) ArmTrial(s string) error {
	return d.vars().set(VarOneShot, esp.EntryName(s))
}

// Disarm cancels a trial that has not booted yet.
func (d Disk) Disarm() error { return d.vars().remove(VarOneShot) }

// Armed is the slot of a trial that has not booted yet, "" when none.
func (d Disk) Armed() (string, error) {
	name, err := d.vars().get(VarOneShot)
	if err != nil || name == "" {
		return "", err
	}
	for _, s := range []string{"A", "B"} {
		if strings.EqualFold(name, esp.EntryName(s)) {
			return s, nil
		}
	}
	return "", fmt.Errorf("the one-shot boot entry %q is not a slot's", name)
}

// SetDefault makes slot s the one the machine boots: the firmware variable, then
// loader.conf. The slot must have a boot entry.
func (d Disk) SetDefault(s string) error {
	return d.withESP(func(dir string) error {
		e, err := readEntry(dir, s)
		if err != nil {
			return err
		}
		if e.Version == "" {
			return fmt.Errorf("slot %s has no boot entry: nothing was ever installed there", s)
		}
		if err := d.vars().set(VarDefault, esp.EntryName(s)); err != nil {
			return err
		}
		conf := filepath.Join(dir, esp.ConfigPath)
		data, err := os.ReadFile(conf)
		if err != nil {
			return fmt.Errorf("EFI partition: %w", err)
		}
		var out []string
		for line := range strings.SplitSeq(strings.TrimRight(string(data), "\n"), "\n") {
			if strings.HasPrefix(line, "default ") {
				line = "default " + esp.EntryName(s)
			}
			out = append(out, line)
		}
		return replaceFile(conf, []byte(strings.Join(out, "\n")+"\n"))
	})
}

func (d Disk) withESP(f func(dir string) error) error {
	dir, unmount, err := d.ESP()
	if err != nil {
		return err
	}
	err = f(dir)
	if uerr := unmount(); err == nil && uerr != nil {
		err = fmt.Errorf("EFI partition: %w", uerr)
	}
	return err
}

// replaceFile writes data to a new file beside p, syncs it and renames it over p.
func replaceFile(p string, data []byte) error {
	tmp := p + ".new"
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return fmt.Errorf("EFI partition: %w", err)
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return fmt.Errorf("EFI partition: write %s: %w", p, err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("EFI partition: sync %s: %w", p, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("EFI partition: %w", err)
	}
	if err := os.Rename(tmp, p); err != nil {
		return fmt.Errorf("EFI partition: %w", err)
	}
	return nil
}

// stageSink writes the root filesystem to the partition and keeps the kernel and
// initramfs in memory (they are small) for the EFI partition.
type stageSink struct {
	ctx         context.Context
	dev         string
	accept      func(artifact.Manifest) error
	beforeWrite func() error
	small       map[string][]byte
}

func (s *stageSink) Accept(m artifact.Manifest) error {
	size, err := deviceSize(s.dev)
	if err != nil {
		return err
	}
	if need := m.Files[artifact.RootfsName].Size; need > size {
		return fmt.Errorf("the root filesystem of %s is %d MiB; the slot's partition holds %d MiB", m.Version, need>>20, size>>20)
	}
	if s.accept != nil {
		if err := s.accept(m); err != nil {
			return err
		}
	}
	return s.beforeWrite()
}

func (s *stageSink) Take(name string, _ artifact.File, r io.Reader) error {
	if name != artifact.RootfsName {
		b, err := io.ReadAll(ctxReader{s.ctx, r})
		if err != nil {
			return fmt.Errorf("upgrade artifact: %s: %w", name, err)
		}
		s.small[name] = b
		return nil
	}
	f, err := os.OpenFile(s.dev, os.O_WRONLY, 0)
	if err != nil {
		return fmt.Errorf("root partition: %w", err)
	}
	if _, err := io.Copy(f, ctxReader{s.ctx, r}); err != nil {
		f.Close()
		return fmt.Errorf("write the root filesystem to %s: %w", s.dev, err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("write the root filesystem to %s: %w", s.dev, err)
	}
	return f.Close()
}

// ctxReader stops a copy when ctx ends (the client went away).
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}

// verifyPartition reads the first f.Size bytes of dev back, past the page cache where it
// is a block device, and checks their SHA-256.
func verifyPartition(dev string, f artifact.File) error {
	file, err := os.Open(dev)
	if err != nil {
		return fmt.Errorf("read back the root filesystem: %w", err)
	}
	defer file.Close()
	if st, err := file.Stat(); err == nil && st.Mode()&os.ModeDevice != 0 {
		// Drop the device's cached pages, so what is read comes from the disk.
		if err := unix.IoctlSetInt(int(file.Fd()), unix.BLKFLSBUF, 0); err != nil {
			return fmt.Errorf("read back the root filesystem: flush the cache of %s: %w", dev, err)
		}
	}
	h := sha256.New()
	if n, err := io.Copy(h, io.LimitReader(file, f.Size)); err != nil || n != f.Size {
		return fmt.Errorf("read back the root filesystem from %s: %d of %d bytes: %v", dev, n, f.Size, err)
	}
	if got := hex.EncodeToString(h.Sum(nil)); got != f.SHA256 {
		return fmt.Errorf("the root filesystem read back from %s has SHA-256 %s, not %s: the disk did not keep what was written", dev, got, f.SHA256)
	}
	return nil
}

// deviceSize is the size of a block device or file.
func deviceSize(dev string) (int64, error) {
	f, err := os.Open(dev)
	if err != nil {
		return 0, fmt.Errorf("root partition: %w", err)
	}
	defer f.Close()
	n, err := f.Seek(0, io.SeekEnd)
	if err != nil {
		return 0, fmt.Errorf("root partition %s: size: %w", dev, err)
	}
	return n, nil
}
