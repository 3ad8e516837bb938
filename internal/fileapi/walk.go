package fileapi

import (
	"context"
	"io/fs"
	"os"
	"path"
	"slices"
	"strings"

	"golang.org/x/sys/unix"
)

// target is the file a client path names, opened and checked: the start of a List, Read
// or Copy. Its file must be closed.
type target struct {
	clean string      // the client path as asked, cleaned
	file  *os.File    // the file opened with O_PATH, its symbolic links followed
	info  fs.FileInfo // fstat of file
}

// locate opens the file clientPath names, below Root, for a caller, and checks that the
// caller may read it: first the client path, so that a refusal does not depend on what
// exists, then the file actually opened.
func (fsys FS) locate(op, clientPath string, admin bool) (*target, error) {
	if !strings.HasPrefix(clientPath, "/") {
		return nil, &fs.PathError{Op: op, Path: clientPath, Err: ErrNotAbsolute}
	}
	clean := path.Clean(clientPath)
	trees := fsys.allowedTrees()
	if !admin && !allowedClient(clean, trees) {
		return nil, restricted(op, clean, trees)
	}
	root, err := fsys.openRoot()
	if err != nil {
		return nil, err
	}
	defer root.Close()
	f, err := openInRoot(root, clean)
	if err != nil {
		return nil, &fs.PathError{Op: op, Path: clean, Err: err}
	}
	if err := checkOpened(op, clean, root, f, admin, trees); err != nil {
		f.Close()
		return nil, err
	}
	info, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, &fs.PathError{Op: op, Path: clean, Err: cause(err)}
	}
	return &target{clean: clean, file: f, info: info}, nil
}

// walkNode is one entry met while walking a directory tree.
type walkNode struct {
	name string // base name
	rel  string // slash-separated path relative to the walk's root; "." for the root
	// file is the entry opened with O_PATH, links not followed; nil when it could not
	// be opened. It is valid only while the node is visited.
	file *os.File
	info fs.FileInfo // fstat of file; nil when it failed
	link string      // the target of a symbolic link
	err  error       // why the entry, or the listing of a directory, could not be read
}

// walker walks a directory tree depth first, each directory's entries in lexical
// order, parents before their children, never following symbolic links.
//
// Every entry is opened relative to the descriptor of its directory, by its name alone,
// without following links (openChild), and a directory is read and descended through
// the descriptor so opened. Whatever is renamed or replaced meanwhile, the walk meets
// only entries of the directory it started from, which was checked when it was opened:
// a link swapped in is met as a link and never followed.
type walker struct {
	maxDepth int // how many levels below the root to visit; 0 for all
	// visit is called for every entry. Returning fs.SkipDir keeps the walk out of a
	// directory; fs.SkipAll or any other error ends the walk.
	visit func(walkNode) error
}

// walkRoot walks the directory t from its children down.
func (w *walker) walkRoot(ctx context.Context, op string, t *target) error {
	dir, names, err := readDir(t.file)
	if dir != nil {
		defer dir.Close()
	}
	if err != nil {
		return &fs.PathError{Op: op, Path: t.clean, Err: cause(err)}
	}
	err = w.children(ctx, dir, ".", names, 1)
	if err == fs.SkipAll {
		return nil
	}
	return err
}

// readDir opens the directory f (opened with O_PATH) for reading and returns it with
// the names of its entries in lexical order. On an error the names read so far come
// with it, and the directory if it could be opened.
func readDir(f *os.File) (*os.File, []string, error) {
	d, err := reopen(f, unix.O_RDONLY|unix.O_DIRECTORY)
	if err != nil {
		return nil, nil, err
	}
	names, err := d.Readdirnames(-1)
	slices.Sort(names)
	return d, names, err
}

// children walks the entries names of the directory dir, whose relative path is rel and
// whose entries sit at level (the root's children are level 1).
func (w *walker) children(ctx context.Context, dir *os.File, rel string, names []string, level int) error {
	for _, name := range names {
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := w.child(ctx, dir, path.Join(rel, name), name, level); err != nil {
			return err
		}
	}
	return nil
}

// child visits the entry name of dir and walks it if it is a directory to descend.
func (w *walker) child(ctx context.Context, dir *os.File, rel, name string, level int) error {
	n := walkNode{name: name, rel: rel}
	n.file, n.err = openChild(dir, name)
	if n.err == nil {
		n.info, n.err = n.file.Stat()
	}
	var sub *os.File
	var kids []string
	if n.err == nil {
		switch {
		case n.info.Mode()&fs.ModeSymlink != 0:
			n.link, n.err = readlinkFD(n.file)
		case n.info.IsDir() && (w.maxDepth <= 0 || level < w.maxDepth):
			// Read the directory before visiting it so that a failure is reported on
			// its own entry. A partial listing is still walked.
			sub, kids, n.err = readDir(n.file)
		}
	}
	err := w.visit(n)
	if n.file != nil {
		n.file.Close()
	}
	if sub != nil {
		defer sub.Close()
	}
	switch {
	case err == fs.SkipDir:
		return nil
	case err != nil:
		return err
	case sub != nil && len(kids) > 0:
		return w.children(ctx, sub, rel, kids, level+1)
	}
	return nil
}
