package fileapi

import (
	"archive/tar"
	"context"
	"errors"
	"io"
	"io/fs"
	"os"
	"path"
	"time"

	"golang.org/x/sys/unix"
)

// Copy writes to w a tar archive (PAX format) of the file or directory tree clientPath,
// whose links are followed inside Root; a caller who is not admin may copy only from the
// FS's Allowed trees. Names in the archive are relative to the parent of
// clientPath, so copying /var/log gives "log/", "log/messages" and so on (copying "/"
// gives names relative to "/"). Regular files, directories and symbolic links (stored
// as links, with their target as written) are archived with their mode, modification
// time and numeric owner; devices, pipes and sockets are left out. Links met in the tree
// are archived as links, never followed. A file that disappears during the walk is left
// out; a file that shrinks while it is read is padded with zeros, one that
// grows is cut at the size it had when its header was written.
//
// On any other error Copy stops and returns it without ending the archive, so a
// reader sees a truncated archive rather than a complete-looking partial one. Copy
// returns ctx.Err() when ctx is cancelled.
func (fsys FS) Copy(ctx context.Context, clientPath string, admin bool, w io.Writer) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	t, err := fsys.locate("copy", clientPath, admin)
	if err != nil {
		return err
	}
	defer t.file.Close()
	prefix := path.Base(t.clean)
	if t.clean == "/" {
		prefix = ""
	}
	c := &copier{ctx: ctx, tw: tar.NewWriter(w)}
	switch {
	case t.info.Mode().IsRegular():
		if err := c.file(prefix, t.clean, t.file); err != nil {
			return err
		}
	case t.info.IsDir():
		if prefix != "" {
			if err := c.header(prefix, t.info, ""); err != nil {
				return err
			}
		}
		walk := &walker{visit: func(n walkNode) error {
			return c.node(path.Join(prefix, n.rel), path.Join(t.clean, n.rel), n)
		}}
		if err := walk.walkRoot(ctx, "copy", t); err != nil {
			return err
		}
	default:
		return &fs.PathError{Op: "copy", Path: t.clean, Err: notRegular(t.info.Mode())}
	}
	return c.tw.Close()
}

// copier writes the archive of one Copy.
type copier struct {
	ctx context.Context
	tw  *tar.Writer
	buf []byte
}

// node archives one walked entry under the archive name name.
func (c *copier) node(name, clientPath string, n walkNode) error {
	switch {
	case n.err != nil && errors.Is(n.err, fs.ErrNotExist):
		return fs.SkipDir // gone since its directory was read
	case n.err != nil:
		return &fs.PathError{Op: "copy", Path: clientPath, Err: cause(n.err)}
	}
	mode := n.info.Mode()
	switch {
	case mode.IsRegular():
		return c.file(name, clientPath, n.file)
	case mode.IsDir():
		return c.header(name, n.info, "")
	case mode&fs.ModeSymlink != 0:
		return c.header(name, n.info, n.link)
	}
	return nil // devices, pipes, sockets
}

// numericOwner makes tar.FileInfoHeader keep the numeric owner without looking up user
// and group names on the host.
type numericOwner struct{ fs.FileInfo }

// Uname returns no user name.
func (numericOwner) Uname() (string, error) { return "", nil }

// Gname returns no group name.
func (numericOwner) Gname() (string, error) { return "", nil }

// header writes the header of a file without content (a directory or a link), or of a
// regular file whose content follows.
func (c *copier) header(name string, info fs.FileInfo, link string) error {
	if err := c.ctx.Err(); err != nil {
		return err
	}
	hdr, err := tar.FileInfoHeader(numericOwner{info}, link)
	if err != nil {
		return err
	}
	hdr.Name = name
	if info.IsDir() {
		hdr.Name += "/"
	}
	hdr.Format = tar.FormatPAX
	hdr.AccessTime, hdr.ChangeTime = time.Time{}, time.Time{}
	return c.tw.WriteHeader(hdr)
}

// file archives the regular file opened with O_PATH as pathFile.
func (c *copier) file(name, clientPath string, pathFile *os.File) error {
	f, err := reopen(pathFile, unix.O_RDONLY)
	if err != nil {
		return &fs.PathError{Op: "copy", Path: clientPath, Err: cause(err)}
	}
	defer f.Close()
	info, err := f.Stat()
	if err != nil {
		return &fs.PathError{Op: "copy", Path: clientPath, Err: cause(err)}
	}
	if err := c.header(name, info, ""); err != nil {
		return err
	}
	if c.buf == nil {
		c.buf = make([]byte, DefaultChunk)
	}
	size := info.Size()
	for size > 0 {
		if err := c.ctx.Err(); err != nil {
			return err
		}
		n, err := f.Read(c.buf[:min(int64(len(c.buf)), size)])
		if n > 0 {
			if _, werr := c.tw.Write(c.buf[:n]); werr != nil {
				return werr
			}
			size -= int64(n)
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			return &fs.PathError{Op: "copy", Path: clientPath, Err: cause(err)}
		}
	}
	if size > 0 { // the file shrank: pad it to keep the archive consistent with the header
		clear(c.buf)
	}
	for size > 0 {
		n := min(int64(len(c.buf)), size)
		if _, err := c.tw.Write(c.buf[:n]); err != nil {
			return err
		}
		size -= n
	}
	return nil
}
