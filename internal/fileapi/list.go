package fileapi

import (
	"context"
	"io/fs"
	"path"
	"time"
)

// Entry describes one file met by List.
type Entry struct {
	// Name is the file's base name.
	Name string
	// RelativeName is the slash-separated path relative to the listed path; "." when
	// the listed path is itself a file.
	RelativeName string
	// ClientPath is the file's absolute client path: the listed path, as the client
	// gave it but cleaned, joined with RelativeName.
	ClientPath string
	// Size is the size in bytes, as Lstat reports it.
	Size int64
	// Mode holds the type and permission bits.
	Mode fs.FileMode
	// Modified is the modification time.
	Modified time.Time
	// IsDir reports whether the entry is a directory.
	IsDir bool
	// Link is the target of a symbolic link, as stored in the link.
	Link string
	// Err is set when the entry could not be read: the metadata is then missing or
	// partial.
	Err string
}

// List calls fn for the files under clientRoot. Without recurse it lists the direct
// children of a directory; with recurse it goes depth levels down (1 is the direct
// children; 0 means no limit). When clientRoot names a file, fn is called once for the
// file itself. Links in clientRoot are followed inside Root, so a link to a directory
// lists the directory; links met while walking are listed, not followed. A caller who
// is not admin may list only inside the FS's Allowed trees; anything else, "/" included
// unless it is allowed, is refused with ErrRestricted.
//
// Entries come depth first, each directory's entries in lexical order and a directory
// before its contents. An entry that cannot be read is passed to fn with Err set and
// walking goes on.
//
// fn may return fs.SkipDir to keep List out of a directory, fs.SkipAll to stop with no
// error; any other error stops List and is returned. List returns ctx.Err() when ctx is
// cancelled.
func (fsys FS) List(ctx context.Context, clientRoot string, recurse bool, depth int, admin bool, fn func(Entry) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	t, err := fsys.locate("list", clientRoot, admin)
	if err != nil {
		return err
	}
	defer t.file.Close()
	if !t.info.IsDir() {
		err := fn(entryOf(t.clean, walkNode{name: path.Base(t.clean), rel: ".", info: t.info}))
		if err == fs.SkipDir || err == fs.SkipAll {
			return nil
		}
		return err
	}
	maxDepth := 1
	if recurse {
		maxDepth = max(depth, 0)
	}
	w := &walker{maxDepth: maxDepth, visit: func(n walkNode) error {
		return fn(entryOf(t.clean, n))
	}}
	return w.walkRoot(ctx, "list", t)
}

// entryOf turns a walked node into the Entry a client sees.
func entryOf(clientRoot string, n walkNode) Entry {
	e := Entry{Name: n.name, RelativeName: n.rel, ClientPath: path.Join(clientRoot, n.rel), Link: n.link}
	if n.info != nil {
		e.Size = n.info.Size()
		e.Mode = n.info.Mode()
		e.Modified = n.info.ModTime()
		e.IsDir = n.info.IsDir()
	}
	if n.err != nil {
		e.Err = cause(n.err).Error()
	}
	return e
}
