package machined

import (
	"errors"
	"fmt"
	"os"
	"sync"

	"golang.org/x/sys/unix"

	"github.com/plinthos/plinth/internal/machineapi"
	"github.com/plinthos/plinth/internal/osimage/diskimage"
	"github.com/plinthos/plinth/internal/slots"
	"github.com/plinthos/plinth/internal/stage0"
	"github.com/plinthos/plinth/internal/storage"
)

// Where the metal platform reaches the boot loader's state.
const (
	// EFIVarsDir is where efivarfs is mounted (the firmware's variables).
	EFIVarsDir = "/sys/firmware/efi/efivars"
	// ESPMount is where the EFI partition is mounted while an upgrade or a rollback changes
	// it; it is unmounted otherwise.
	ESPMount = "/run/plinth/efi"
	// efivarfsMagic is EFIVARFS_MAGIC of linux/magic.h.
	efivarfsMagic = 0xde5e81e4
)

// Slots implements slotted: the root slots of the boot disk, the slot booted (plinth.slot),
// the EFI partition and the firmware's variables.
func (metalPlatform) Slots() (slots.Disk, error) {
	if liveBoot() {
		return slots.Disk{}, machineapi.ErrNoSlots
	}
	data, err := os.ReadFile("/proc/cmdline")
	if err != nil {
		return slots.Disk{}, fmt.Errorf("kernel command line: %w", err)
	}
	cl, err := stage0.ParseCmdline(string(data))
	if err != nil {
		return slots.Disk{}, fmt.Errorf("kernel command line: %w", err)
	}
	disk, err := bootDisk()
	if err != nil {
		return slots.Disk{}, err
	}
	d := slots.Disk{Booted: cl.Slot, Roots: map[string]string{}, EFIVars: EFIVarsDir}
	for slot, name := range map[string]string{"A": diskimage.RootA, "B": diskimage.RootB} {
		p, err := storage.FindOn("/sys/class/block", disk, name)
		if err != nil {
			return d, err
		}
		d.Roots[slot] = p.DevPath()
	}
	efi, err := storage.FindOn("/sys/class/block", disk, diskimage.EFI)
	if err != nil {
		return d, err
	}
	if err := mountEFIVars(); err != nil {
		return d, err
	}
	d.ESP = func() (string, func() error, error) {
		if err := os.MkdirAll(ESPMount, 0o700); err != nil {
			return "", nil, fmt.Errorf("EFI partition: %w", err)
		}
		if err := unix.Mount(efi.DevPath(), ESPMount, "vfat", unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, "codepage=437,iocharset=ascii"); err != nil {
			return "", nil, fmt.Errorf("EFI partition: mount %s on %s: %w", efi.DevPath(), ESPMount, err)
		}
		return ESPMount, func() error {
			if err := unix.Unmount(ESPMount, 0); err != nil {
				return fmt.Errorf("unmount %s: %w", ESPMount, err)
			}
			return nil
		}, nil
	}
	return d, nil
}

// efiVarsMu orders the callers of mountEFIVars: two at once would both mount.
var efiVarsMu sync.Mutex

// mountEFIVars mounts efivarfs unless it is mounted; a machine not booted through UEFI
// has none.
func mountEFIVars() error {
	efiVarsMu.Lock()
	defer efiVarsMu.Unlock()
	if _, err := os.Stat("/sys/firmware/efi"); errors.Is(err, os.ErrNotExist) {
		return errors.New("this machine did not boot through UEFI firmware: the boot loader's variables, which arm and commit an upgrade, are not there")
	}
	var st unix.Statfs_t
	if err := unix.Statfs(EFIVarsDir, &st); err == nil && uint32(st.Type) == efivarfsMagic {
		return nil
	}
	if err := unix.Mount("efivarfs", EFIVarsDir, "efivarfs", unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, ""); err != nil {
		return fmt.Errorf("mount efivarfs on %s: %w", EFIVarsDir, err)
	}
	return nil
}
