package initramfs

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
)

// Entry is one member of a newc cpio archive. Owner, group and mtime are always 0.
type Entry struct {
	Name string      // path without a leading "/", e.g. "lib/modules/plinth.load"
	Mode fs.FileMode // fs.ModeDir, fs.ModeCharDevice|fs.ModeDevice, or a regular file; with permissions
	Data []byte      // contents of a regular file
	// Major and Minor are the device numbers of a character device.
	Major, Minor uint32
}

// Unix st_mode type bits, as the newc header carries them.
const (
	sIFREG = 0o100000
	sIFDIR = 0o040000
	sIFCHR = 0o020000
)

func unixMode(m fs.FileMode) (uint32, error) {
	perm := uint32(m.Perm())
	if m&fs.ModeSticky != 0 {
		perm |= 0o1000
	}
	switch {
	case m.IsRegular():
		return sIFREG | perm, nil
	case m.IsDir():
		return sIFDIR | perm, nil
	case m&fs.ModeCharDevice != 0:
		return sIFCHR | perm, nil
	}
	return 0, fmt.Errorf("unsupported file type %v", m.Type())
}

// writeNewc writes entries, in the order given, as a newc ("070701") archive with its
// trailer. Inode numbers are assigned 1, 2, ... in that order, so equal input gives equal
// bytes.
func writeNewc(w io.Writer, entries []Entry) error {
	pad := func(n int) error {
		if r := n % 4; r != 0 {
			_, err := w.Write(make([]byte, 4-r))
			return err
		}
		return nil
	}
	header := func(ino int, mode uint32, nlink, size int, major, minor uint32, name string) error {
		if size > 0xffffffff {
			return errors.New("file larger than 4 GiB")
		}
		h := fmt.Sprintf("070701%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X",
			ino, mode, 0, 0, nlink, 0, size, 0, 0, major, minor, len(name)+1, 0)
		if _, err := io.WriteString(w, h+name+"\x00"); err != nil {
			return err
		}
		return pad(len(h) + len(name) + 1)
	}
	for i, e := range entries {
		if e.Name == "" || e.Name[0] == '/' {
			return fmt.Errorf("cpio entry %q: name must be relative", e.Name)
		}
		mode, err := unixMode(e.Mode)
		if err != nil {
			return fmt.Errorf("cpio entry %s: %w", e.Name, err)
		}
		nlink, size := 1, 0
		switch {
		case e.Mode.IsDir():
			nlink = 2
		case e.Mode.IsRegular():
			size = len(e.Data)
		}
		if err := header(i+1, mode, nlink, size, e.Major, e.Minor, e.Name); err != nil {
			return fmt.Errorf("cpio entry %s: %w", e.Name, err)
		}
		if size > 0 {
			if _, err := w.Write(e.Data); err != nil {
				return fmt.Errorf("cpio entry %s: %w", e.Name, err)
			}
			if err := pad(size); err != nil {
				return fmt.Errorf("cpio entry %s: %w", e.Name, err)
			}
		}
	}
	if err := header(0, 0, 1, 0, 0, 0, "TRAILER!!!"); err != nil {
		return fmt.Errorf("cpio trailer: %w", err)
	}
	return nil
}
