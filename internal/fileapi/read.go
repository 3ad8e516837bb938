package fileapi

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"syscall"
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
// clientPath is resolved as by Resolve. Anything but a regular file (a directory, a
// device, a pipe, a socket) is refused with ErrNotRegular. Files that report a size of
// zero, as in /proc, are read to their end all the same.
//
// The slice passed to fn is reused for the next chunk: fn must not keep it. An error
// from fn stops Read and is returned. Read returns ctx.Err() when ctx is cancelled.
func (fsys FS) Read(ctx context.Context, clientPath string, admin bool, chunk int, fn func([]byte) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	t, err := fsys.locate("read", clientPath, admin)
	if err != nil {
		return err
	}
	if !t.info.Mode().IsRegular() {
		return &fs.PathError{Op: "read", Path: t.clean, Err: notRegular(t.info.Mode())}
	}
	f, _, err := openRegular(t.host)
	if err != nil {
		return &fs.PathError{Op: "read", Path: t.clean, Err: cause(err)}
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
			return &fs.PathError{Op: "read", Path: t.clean, Err: cause(err)}
		}
	}
}

// openRegular opens a host file for reading only if it is a regular file. It does not
// follow a final symbolic link and does not wait on a named pipe, should the file have
// been replaced since it was checked.
func openRegular(host string) (*os.File, fs.FileInfo, error) {
	f, err := os.OpenFile(host, os.O_RDONLY|syscall.O_NOFOLLOW|syscall.O_NONBLOCK, 0)
	if err != nil {
		if errors.Is(err, syscall.ELOOP) {
			err = notRegular(fs.ModeSymlink)
		}
		return nil, nil, err
	}
	info, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, nil, err
	}
	if !info.Mode().IsRegular() {
		f.Close()
		return nil, nil, notRegular(info.Mode())
	}
	return f, info, nil
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
