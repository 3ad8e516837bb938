// Package fileapi is the file access of the node API: List, Read and Copy of files under
// a root directory, confined to that root and aware of the caller's role.
//
// Clients name files by absolute, slash-separated client paths; the FS maps them under
// its Root. Symbolic links are resolved by the package itself, component by component,
// as if Root were the root directory (chroot semantics): an absolute target starts again
// at Root and ".." stops at Root, so no client path reaches a host file outside Root.
//
// The checks are made on paths before files are opened, so they hold against clients
// but not against a process that rewrites the tree under Root while a request runs.
package fileapi

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
)

// Errors returned by FS methods, wrapped in a *fs.PathError that names the client path;
// test for them with errors.Is. Errors from the host filesystem (fs.ErrNotExist,
// fs.ErrPermission) pass through the same way.
var (
	// ErrNotAbsolute is returned for a client path that does not start with "/".
	ErrNotAbsolute = errors.New("path is not absolute")
	// ErrOutsideRoot is returned if a path would resolve to a host path outside Root.
	// Resolution clamps at Root, so this is a last line of defence.
	ErrOutsideRoot = errors.New("path resolves outside the root")
	// ErrRestricted is returned to a caller without the os:admin role for a path in one
	// of the FS's Restricted trees.
	ErrRestricted = errors.New("restricted: needs os:admin")
	// ErrTooManyLinks is returned when resolving a path follows more than MaxSymlinks
	// symbolic links, as a symlink loop does.
	ErrTooManyLinks = errors.New("too many levels of symbolic links")
	// ErrNotRegular is returned by Read for anything but a regular file, and by Copy
	// for a path that is neither a regular file nor a directory.
	ErrNotRegular = errors.New("not a regular file")
)

// MaxSymlinks is how many symbolic links resolving one path may follow, as on Linux.
const MaxSymlinks = 40

// FS gives clients read access to the files under Root. The zero value is not usable:
// Root must be set. An FS is a value without state and safe for concurrent use.
type FS struct {
	// Root is the host directory that clients see as "/": "/" on a node, the state
	// directory in local mode. A relative Root is taken from the working directory.
	Root string
	// Restricted lists client paths, such as "/system/secrets", "/var/lib/etcd" or
	// "/system/state", whose trees only callers with the os:admin role may read. Each
	// is matched both as written and as its symbolic links resolve.
	Restricted []string
}

// root returns the cleaned, absolute host root.
func (fsys FS) root() (string, error) {
	if fsys.Root == "" {
		return "", errors.New("fileapi: FS.Root is not set")
	}
	root, err := filepath.Abs(fsys.Root)
	if err != nil {
		return "", fmt.Errorf("fileapi: root %q: %w", fsys.Root, err)
	}
	return root, nil
}

// Resolve maps clientPath to the host path it names, following symbolic links inside
// Root. clientPath must be absolute; it is cleaned first, so "/a/../../b" is "/b". The
// result is inside Root. For a caller that is not admin, a path that is, or resolves
// to, a path inside a Restricted tree is refused with ErrRestricted, even when the file
// does not exist. A missing file gives an error that matches fs.ErrNotExist.
func (fsys FS) Resolve(clientPath string, admin bool) (hostPath string, err error) {
	r, err := fsys.resolver(admin)
	if err != nil {
		return "", err
	}
	resolved, err := r.resolve(clientPath, false)
	if err != nil {
		return "", err
	}
	return r.hostPath(clientPath, resolved)
}

// resolver resolves client paths for one request.
type resolver struct {
	root string
	// restricted holds the restricted prefixes, both cleaned as written and resolved;
	// nil for an admin.
	restricted []string
}

// resolver prepares the resolution of client paths for a caller.
func (fsys FS) resolver(admin bool) (*resolver, error) {
	root, err := fsys.root()
	if err != nil {
		return nil, err
	}
	r := &resolver{root: root}
	if admin {
		return r, nil
	}
	// The restricted trees are resolved without restrictions, so that one restricted
	// entry does not hide the real location of another.
	plain := &resolver{root: root}
	var restricted []string
	for _, p := range fsys.Restricted {
		if p == "" {
			continue
		}
		p = path.Clean("/" + p)
		restricted = append(restricted, p)
		// A restricted directory reached through a symbolic link (/var/lib/etcd ->
		// /data/etcd) must be refused under its real name too.
		if real, err := plain.resolve(p, true); err == nil && real != p {
			restricted = append(restricted, real)
		}
	}
	r.restricted = restricted
	return r, nil
}

// isRestricted reports whether the resolved client path p is inside a restricted tree.
func (r *resolver) isRestricted(p string) bool {
	for _, prefix := range r.restricted {
		if within(p, prefix) {
			return true
		}
	}
	return false
}

// within reports whether the clean client path p is prefix or inside it.
func within(p, prefix string) bool {
	return prefix == "/" || p == prefix || strings.HasPrefix(p, prefix+"/")
}

// resolve returns the client path that clientPath names once its symbolic links are
// followed: absolute, clean and free of links. With lenient set a missing component
// ends the following, and the rest of the path is joined as it is (used for Restricted
// entries, which may not exist yet); the restriction check is made at every component.
func (r *resolver) resolve(clientPath string, lenient bool) (string, error) {
	if !strings.HasPrefix(clientPath, "/") {
		return "", &fs.PathError{Op: "resolve", Path: clientPath, Err: ErrNotAbsolute}
	}
	refuse := func() error {
		return &fs.PathError{Op: "resolve", Path: path.Clean(clientPath), Err: ErrRestricted}
	}
	todo := strings.Split(path.Clean(clientPath), "/")
	cur := "/"
	links := 0
	for len(todo) > 0 {
		name := todo[0]
		todo = todo[1:]
		switch name {
		case "", ".":
			continue
		case "..":
			cur = path.Dir(cur) // cur has no links, so its parent is lexical; "/.." is "/"
			continue
		}
		next := path.Join(cur, name)
		if r.isRestricted(next) {
			return "", refuse()
		}
		host := filepath.Join(r.root, filepath.FromSlash(next))
		info, err := os.Lstat(host)
		if err != nil {
			if lenient && errors.Is(err, fs.ErrNotExist) {
				return path.Join(append([]string{next}, todo...)...), nil
			}
			return "", &fs.PathError{Op: "resolve", Path: path.Clean(clientPath), Err: cause(err)}
		}
		if info.Mode()&fs.ModeSymlink == 0 {
			cur = next
			continue
		}
		links++
		if links > MaxSymlinks {
			return "", &fs.PathError{Op: "resolve", Path: path.Clean(clientPath), Err: ErrTooManyLinks}
		}
		target, err := os.Readlink(host)
		if err != nil {
			return "", &fs.PathError{Op: "resolve", Path: path.Clean(clientPath), Err: cause(err)}
		}
		if target == "" { // as on Linux, an empty link names nothing
			return "", &fs.PathError{Op: "resolve", Path: path.Clean(clientPath), Err: fs.ErrNotExist}
		}
		if strings.HasPrefix(target, "/") {
			cur = "/" // absolute targets start again at Root
		}
		todo = append(strings.Split(target, "/"), todo...)
	}
	if r.isRestricted(cur) {
		return "", refuse()
	}
	return cur, nil
}

// hostPath maps a resolved client path to the host, checking that it stays in Root.
func (r *resolver) hostPath(clientPath, resolved string) (string, error) {
	host := filepath.Join(r.root, filepath.FromSlash(resolved))
	rel, err := filepath.Rel(r.root, host)
	if err != nil || rel == ".." || strings.HasPrefix(rel, ".."+string(filepath.Separator)) {
		return "", &fs.PathError{Op: "resolve", Path: clientPath, Err: ErrOutsideRoot}
	}
	return host, nil
}

// cause strips the host path from an os error so that client-facing errors name only
// client paths.
func cause(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	var le *os.LinkError
	if errors.As(err, &le) {
		return le.Err
	}
	return err
}
