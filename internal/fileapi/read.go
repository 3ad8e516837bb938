package fileapi

import (
	"context"
	"fmt"
	"io"
	"io/fs"
	"os"

	"golang.org/x/sys/unix"
)

const (
	// DefaultChunk is the chunk size Read uses when it is given none.
	DefaultChunk = 64 << 10
	// MaxChunk caps the chunk size a client may ask Read for, bounding the memory a
	// request takes.
	MaxChunk = 4 << 20
)

// Read streams the regular file clientPath to fn in chunks of chunk bytes (the last one
// may be shorter; chunk <= 0 means DefaultChunk, and more than MaxChunk is MaxChunk).
// Links in clientPath are followed inside Root; a caller who is not admin may read only
// files in the FS's Allowed trees. Anything but a regular file (a directory, a device, a
// pipe, a socket) is refused with ErrNotRegular, without being opened for reading.
// Files that report a size of zero, as in /proc, are read to their end all the same.
//
// The slice passed to fn is reused for the next chunk: fn must not keep it. An error
// from fn stops Read and is returned. Read returns ctx.Err() when ctx is cancelled.
func (fsys FS) Read(ctx context.Context, clientPath string, admin bool, chunk int, fn func([]byte) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	f, err := fsys.openRegular("read", clientPath, admin)
	if err != nil {
		return err
	}
	defer f.Close()
	if chunk <= 0 {
		chunk = DefaultChunk
	}
	buf := make([]byte, min(chunk, MaxChunk))
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		n, err := io.ReadFull(f, buf)
		if n > 0 {
			if err := fn(buf[:n]); err != nil {
				return err
			}
		}
		switch {
		case err == io.EOF || err == io.ErrUnexpectedEOF:
			return nil
		case err != nil:
			return &fs.PathError{Op: "read", Path: f.Name(), Err: cause(err)}
		}
	}
}

// Open opens the regular file clientPath for reading, resolved and checked as by Read,
// for a caller that reads the file itself (following a growing log, say). The file's
// Name is the cleaned client path. The caller must close it.
func (fsys FS) Open(clientPath string, admin bool) (*os.File, error) {
	return fsys.openRegular("open", clientPath, admin)
}

// openRegular opens the regular file clientPath for reading for the operation op.
func (fsys FS) openRegular(op, clientPath string, admin bool) (*os.File, error) {
	t, err := fsys.locate(op, clientPath, admin)
	if err != nil {
		return nil, err
	}
	defer t.file.Close()
	if !t.info.Mode().IsRegular() {
		return nil, &fs.PathError{Op: op, Path: t.clean, Err: notRegular(t.info.Mode())}
	}
	f, err := reopen(t.file, unix.O_RDONLY)
	if err != nil {
		return nil, &fs.PathError{Op: op, Path: t.clean, Err: cause(err)}
	}
	return f, nil
}

// notRegular builds the ErrNotRegular error for a file of mode m.
func notRegular(m fs.FileMode) error {
	return fmt.Errorf("%w (%s)", ErrNotRegular, kind(m))
}

// kind names the type of a file mode for messages.
func kind(m fs.FileMode) string {
	switch {
	case m.IsDir():
		return "directory"
	case m&fs.ModeSymlink != 0:
		return "symbolic link"
	case m&fs.ModeCharDevice != 0:
		return "character device"
	case m&fs.ModeDevice != 0:
		return "block device"
	case m&fs.ModeNamedPipe != 0:
		return "named pipe"
	case m&fs.ModeSocket != 0:
		return "socket"
	case m.IsRegular():
		return "regular file"
	}
	return "irregular file"
}
