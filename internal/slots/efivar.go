package slots

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"unicode/utf16"

	"golang.org/x/sys/unix"
)

// LoaderGUID is the vendor GUID of systemd-boot's variables (the Boot Loader Interface).
const LoaderGUID = "4a67b082-0a4c-41cf-b6c7-440b29bb8c4f"

// systemd-boot's variables that slots uses.
const (
	// VarOneShot names the entry to boot once; systemd-boot removes it as it boots.
	VarOneShot = "LoaderEntryOneShot"
	// VarDefault names the default entry; it overrides loader.conf's default.
	VarDefault = "LoaderEntryDefault"
	// VarSelected is the entry systemd-boot booted (set at each boot, volatile).
	VarSelected = "LoaderEntrySelected"
)

// attributes of the variables written: non-volatile, boot service and runtime access.
const attributes = 0x7

// efiVars reads and writes systemd-boot's variables in an efivarfs directory.
type efiVars string

func (d efiVars) path(name string) string { return filepath.Join(string(d), name+"-"+LoaderGUID) }

// get returns the variable's string, "" when it is not set.
func (d efiVars) get(name string) (string, error) {
	data, err := os.ReadFile(d.path(name))
	if errors.Is(err, fs.ErrNotExist) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("EFI variable %s: %w", name, err)
	}
	if len(data) < 4 || len(data)%2 != 0 {
		return "", fmt.Errorf("EFI variable %s: %d bytes is not a UTF-16 string", name, len(data))
	}
	u := make([]uint16, 0, (len(data)-4)/2)
	for i := 4; i+1 < len(data); i += 2 {
		c := binary.LittleEndian.Uint16(data[i:])
		if c == 0 {
			break
		}
		u = append(u, c)
	}
	return string(utf16.Decode(u)), nil
}

// set writes the variable as a NUL-terminated UTF-16 string, in one write (efivarfs makes
// each write one SetVariable call).
func (d efiVars) set(name, value string) error {
	buf := binary.LittleEndian.AppendUint32(nil, attributes)
	for _, c := range utf16.Encode([]rune(value)) {
		buf = binary.LittleEndian.AppendUint16(buf, c)
	}
	buf = append(buf, 0, 0)
	p := d.path(name)
	if err := mutable(p); err != nil {
		return fmt.Errorf("EFI variable %s: %w", name, err)
	}
	f, err := os.OpenFile(p, os.O_WRONLY|os.O_CREATE, 0o644)
	if err != nil {
		return fmt.Errorf("EFI variable %s: %w", name, err)
	}
	if _, err := f.Write(buf); err != nil {
		f.Close()
		return fmt.Errorf("EFI variable %s: write: %w", name, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("EFI variable %s: %w", name, err)
	}
	return nil
}

// remove deletes the variable; one that is not set is no error.
func (d efiVars) remove(name string) error {
	p := d.path(name)
	if err := mutable(p); err != nil {
		return fmt.Errorf("EFI variable %s: %w", name, err)
	}
	if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("EFI variable %s: %w", name, err)
	}
	return nil
}

// mutable clears the immutable flag that efivarfs puts on the variables it found at mount
// time (so that a stray write cannot brick firmware); a missing file, or a file system
// without flags (tests), is fine.
func mutable(p string) error {
	f, err := os.Open(p)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	defer f.Close()
	flags, err := unix.IoctlGetInt(int(f.Fd()), unix.FS_IOC_GETFLAGS)
	if errors.Is(err, unix.ENOTTY) || errors.Is(err, unix.EOPNOTSUPP) || errors.Is(err, unix.EINVAL) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("read its flags: %w", err)
	}
	if flags&fsImmutable == 0 {
		return nil
	}
	if err := unix.IoctlSetPointerInt(int(f.Fd()), unix.FS_IOC_SETFLAGS, flags&^fsImmutable); err != nil {
		return fmt.Errorf("clear its immutable flag: %w", err)
	}
	return nil
}

// fsImmutable is FS_IMMUTABLE_FL of linux/fs.h.
const fsImmutable = 0x10
