package fileapi

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// How files are opened. Every file is first opened with O_PATH, which neither reads
// nor has the side effects an open may have on a device or a named pipe, and is only
// reopened for reading (through reopen) once it is known to be a regular file or a
// directory the caller may read.
const (
	// pathFlags open a file as a handle without access: fstat, readlinkat and openat
	// relative to it work, read does not.
	pathFlags = unix.O_PATH | unix.O_CLOEXEC
	// inRoot resolves a path as if the directory it starts from were the root: ".."
	// stops there and absolute link targets start again there. Magic links, which lead
	// anywhere whatever the root, are refused.
	inRoot = unix.RESOLVE_IN_ROOT | unix.RESOLVE_NO_MAGICLINKS
	// beneathNoLinks opens one entry of a directory without following any link, not
	// even a final one: with O_PATH|O_NOFOLLOW a link is opened as itself.
	beneathNoLinks = unix.RESOLVE_BENEATH | unix.RESOLVE_NO_SYMLINKS
	// openRetries is how many times an openat2 interrupted by a signal or by a
	// concurrent rename (EAGAIN, which RESOLVE_IN_ROOT returns when it cannot rule out
	// an escape through "..") is tried again.
	openRetries = 16
)

// openRoot opens the FS's Root as the directory every client path starts from.
func (fsys FS) openRoot() (*os.File, error) {
	if fsys.Root == "" {
		return nil, errors.New("fileapi: FS.Root is not set")
	}
	fd, err := unix.Open(fsys.Root, pathFlags|unix.O_DIRECTORY, 0)
	if err != nil {
		// The host path stays out of the message: it reaches clients.
		return nil, fmt.Errorf("fileapi: open the root directory: %w", err)
	}
	return os.NewFile(uintptr(fd), "/"), nil
}

// openInRoot opens the clean, absolute client path clean below root with O_PATH,
// following symbolic links inside root. The error is a bare cause, without a path.
func openInRoot(root *os.File, clean string) (*os.File, error) {
	rel := strings.TrimPrefix(clean, "/")
	if rel == "" {
		rel = "."
	}
	return openat2(root, rel, clean, &unix.OpenHow{Flags: pathFlags, Resolve: inRoot})
}

// openChild opens the entry name of the directory dir with O_PATH, without following
// it if it is a link: what is opened is what dir holds under that name now.
func openChild(dir *os.File, name string) (*os.File, error) {
	return openat2(dir, name, name, &unix.OpenHow{Flags: pathFlags | unix.O_NOFOLLOW, Resolve: beneathNoLinks})
}

// openat2 opens name relative to dir, trying again when the kernel asks for it. The
// file gets the name shown, for the errors of its methods.
func openat2(dir *os.File, name, shown string, how *unix.OpenHow) (*os.File, error) {
	for attempt := 0; ; attempt++ {
		fd, err := unix.Openat2(int(dir.Fd()), name, how)
		if err == nil {
			return os.NewFile(uintptr(fd), shown), nil
		}
		if (err == unix.EAGAIN || err == unix.EINTR) && attempt < openRetries {
			continue
		}
		if err == unix.ELOOP {
			return nil, ErrTooManyLinks
		}
		return nil, err
	}
}

// fdPath is the name of the open descriptor of f in /proc/self/fd: a magic link to the
// file itself, whatever has become of its path since it was opened. machined relies on
// /proc being the kernel's procfs, as only root can mount over it.
func fdPath(f *os.File) string {
	return "/proc/self/fd/" + strconv.FormatUint(uint64(f.Fd()), 10)
}

// reopen opens the file f (opened with O_PATH) again with flags, for reading: through
// its descriptor's magic link, so that it is the same file and no path is looked up
// again. The file opened is checked to be f's all the same.
func reopen(f *os.File, flags int) (*os.File, error) {
	fd, err := unix.Open(fdPath(f), flags|unix.O_CLOEXEC|unix.O_NOCTTY, 0)
	if err != nil {
		return nil, err
	}
	r := os.NewFile(uintptr(fd), f.Name())
	was, err1 := f.Stat()
	is, err2 := r.Stat()
	if err := errors.Join(err1, err2); err != nil {
		r.Close()
		return nil, cause(err)
	}
	if !os.SameFile(was, is) {
		r.Close()
		return nil, errors.New("the file changed while it was opened")
	}
	return r, nil
}

// realPath returns the host path of the file f was opened as, as the kernel reports
// it (see allowedReal for why it can be trusted). The path of a file removed since
// ends in " (deleted)".
func realPath(f *os.File) (string, error) {
	p, err := os.Readlink(fdPath(f))
	if err != nil {
		return "", cause(err)
	}
	return p, nil
}

// readlinkFD returns the target of the symbolic link f, opened with O_PATH|O_NOFOLLOW.
func readlinkFD(f *os.File) (string, error) {
	for size := 256; ; size *= 2 {
		buf := make([]byte, size)
		n, err := unix.Readlinkat(int(f.Fd()), "", buf)
		if err != nil {
			return "", err
		}
		if n < size {
			return string(buf[:n]), nil
		}
	}
}

// checkOpened checks the file f, just opened below root for the clean client path
// clean, against what the caller may read: it must be inside Root, and for a caller
// who is not admin inside one of the allowed trees, by its real location.
func checkOpened(op, clean string, root, f *os.File, admin bool, trees []string) error {
	real, err := realPath(f)
	if err != nil {
		return &fs.PathError{Op: op, Path: clean, Err: fmt.Errorf("locate the file opened: %w", err)}
	}
	rootReal, err := realPath(root)
	if err != nil {
		return &fs.PathError{Op: op, Path: clean, Err: fmt.Errorf("locate the root directory: %w", err)}
	}
	if !within(real, rootReal) {
		return &fs.PathError{Op: op, Path: clean, Err: ErrOutsideRoot}
	}
	if admin {
		return nil
	}
	for _, allowed := range allowedReal(root, trees) {
		if within(real, allowed) {
			return nil
		}
	}
	return restricted(op, clean, trees)
}

// allowedReal returns the host paths the allowed trees have now, resolved as client
// paths are. Trees that cannot be opened are left out: they allow nothing.
//
// The allow-list is checked on the file opened by comparing the path the kernel
// reports for its descriptor (readlink of /proc/self/fd/N) with these. That path is
// computed by the kernel from the open file itself (its dentry and mount), under the
// rename lock, when it is asked for; it is not the path the client gave, so no link or
// rename before the open can make a file outside the allowed trees look as if it were
// inside. Comparing device and inode numbers while walking up with openat(fd, "..")
// would be as sound for directories but does not work for a regular file, whose parent
// cannot be opened from its descriptor. What the path cannot tell apart is a file that
// is genuinely inside an allowed tree: a hard link to a secret made there, or a secret
// renamed into it between the open and the check. Either needs rights over the secret
// file itself (fs.protected_hardlinks, write access to its directory, the same mount),
// which is the rights to expose it anyway.
func allowedReal(root *os.File, trees []string) []string {
	var out []string
	for _, t := range trees {
		f, err := openInRoot(root, t)
		if err != nil {
			continue
		}
		p, err := realPath(f)
		f.Close()
		if err == nil {
			out = append(out, p)
		}
	}
	return out
}
