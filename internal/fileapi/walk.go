package fileapi

import (
	"context"
	"io/fs"
	"os"
	"path"
	"path/filepath"
)

// target is a client path located on the host: the start of a List, Read or Copy.
type target struct {
	r        *resolver
	clean    string      // the client path as asked, cleaned
	resolved string      // the client path with its links followed
	host     string      // the host path
	info     fs.FileInfo // Lstat of host
}

// locate resolves clientPath for a caller and stats what it names.
func (fsys FS) locate(op, clientPath string, admin bool) (*target, error) {
	r, err := fsys.resolver(admin)
	if err != nil {
		return nil, err
	}
	resolved, err := r.resolve(clientPath, false)
	if err != nil {
		return nil, err
	}
	host, err := r.hostPath(clientPath, resolved)
	if err != nil {
		return nil, err
	}
	clean := path.Clean(clientPath)
	info, err := os.Lstat(host)
	if err != nil {
		return nil, &fs.PathError{Op: op, Path: clean, Err: cause(err)}
	}
	return &target{r: r, clean: clean, resolved: resolved, host: host, info: info}, nil
}

// walkNode is one entry met while walking a directory tree.
type walkNode struct {
	name     string      // base name
	rel      string      // slash-separated path relative to the walk's root; "." for the root
	resolved string      // resolved client path (walking never follows links)
	host     string      // host path
	info     fs.FileInfo // Lstat result; nil when restricted or when Lstat failed
	link     string      // the target of a symbolic link
	err      error       // why the entry, or the listing of a directory, could not be read
	// restricted marks the top of a restricted tree met by a caller who is not admin:
	// nothing is read from it and it is not descended.
	restricted bool
}

// walker walks a directory tree depth first, each directory's entries in lexical
// order, parents before their children, never following symbolic links.
type walker struct {
	r        *resolver
	maxDepth int // how many levels below the root to visit; 0 for all
	// visit is called for every entry. Returning fs.SkipDir keeps the walk out of a
	// directory; fs.SkipAll or any other error ends the walk.
	visit func(walkNode) error
}

// children walks the entries kids of the directory dir, which sit at level (the root's
// children are level 1).
func (w *walker) children(ctx context.Context, dir walkNode, kids []fs.DirEntry, level int) error {
	for _, de := range kids {
		if err := ctx.Err(); err != nil {
			return err
		}
		name := de.Name()
		n := walkNode{
			name:     name,
			rel:      path.Join(dir.rel, name),
			resolved: path.Join(dir.resolved, name),
			host:     filepath.Join(dir.host, name),
		}
		if w.r.isRestricted(n.resolved) {
			n.restricted = true
			if err := w.visit(n); err != nil && err != fs.SkipDir {
				return err
			}
			continue
		}
		var grandkids []fs.DirEntry
		descend := false
		n.info, n.err = os.Lstat(n.host)
		if n.err == nil {
			switch {
			case n.info.Mode()&fs.ModeSymlink != 0:
				n.link, n.err = os.Readlink(n.host)
			case n.info.IsDir() && (w.maxDepth <= 0 || level < w.maxDepth):
				// Read the directory before visiting it so that a failure is reported
				// on its own entry. A partial listing is still walked.
				grandkids, n.err = os.ReadDir(n.host)
				descend = true
			}
		}
		if err := w.visit(n); err != nil {
			if err == fs.SkipDir {
				continue
			}
			return err
		}
		if descend && len(grandkids) > 0 {
			if err := w.children(ctx, n, grandkids, level+1); err != nil {
				return err
			}
		}
	}
	return nil
}

// walkRoot walks the directory t from its children down.
func (w *walker) walkRoot(ctx context.Context, op string, t *target) error {
	kids, err := os.ReadDir(t.host)
	if err != nil {
		return &fs.PathError{Op: op, Path: t.clean, Err: cause(err)}
	}
	root := walkNode{name: path.Base(t.clean), rel: ".", resolved: t.resolved, host: t.host, info: t.info}
	err = w.children(ctx, root, kids, 1)
	if err == fs.SkipAll {
		return nil
	}
	return err
}
