// Package fileapi is the file access of the node API: List, Read and Copy of files under
// a root directory, confined to that root and aware of the caller's role.
//
// Clients name files by absolute, slash-separated client paths; the FS maps them under
// its Root. A client path is cleaned lexically first ("/a/b/../c" is "/a/c"), then the
// kernel resolves it with openat2(2) and RESOLVE_IN_ROOT relative to a descriptor of
// Root: symbolic links are followed as if Root were the root directory (chroot
// semantics), so an absolute target starts again at Root and ".." stops at Root, and no
// client path reaches a host file outside Root. Magic links (/proc/PID/fd/N and the
// like) are not followed.
//
// A caller with the os:admin role reads everything under Root. Any other caller reads
// only the trees of the FS's Allowed list (an allow-list, not a deny-list). For those
// callers the check is made twice: on the client path before anything is opened, so that
// a refusal says nothing about what exists, and on the file actually opened, by the real
// path the kernel reports for the open descriptor (see allowedReal). A directory tree is
// walked through descriptors: every entry is opened relative to the already opened and
// checked directory, one name at a time, without following symbolic links. No file is
// ever opened again by path after a check, so a process that rewrites the tree under
// Root while a request runs (swapping a directory for a link, say) cannot make a caller
// read a file the caller may not read.
package fileapi

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"strings"
)

// Errors returned by FS methods, wrapped in a *fs.PathError that names the client path;
// test for them with errors.Is. Errors from the host filesystem (fs.ErrNotExist,
// fs.ErrPermission) pass through the same way.
var (
	// ErrNotAbsolute is returned for a client path that does not start with "/".
	ErrNotAbsolute = errors.New("path is not absolute")
	// ErrOutsideRoot is returned if a path would resolve to a host file outside Root.
	// The kernel resolves paths inside Root, so this is a last line of defence.
	ErrOutsideRoot = errors.New("path resolves outside the root")
	// ErrRestricted is returned to a caller without the os:admin role for a path outside
	// the FS's Allowed trees. The message of the error returned also names those trees.
	ErrRestricted = errors.New("restricted: needs os:admin")
	// ErrTooManyLinks is returned when resolving a path follows more than MaxSymlinks
	// symbolic links, as a symlink loop does, or meets a magic link such as
	// /proc/self/fd/0, which is never followed.
	ErrTooManyLinks = errors.New("too many levels of symbolic links")
	// ErrNotRegular is returned by Read for anything but a regular file, and by Copy
	// for a path that is neither a regular file nor a directory.
	ErrNotRegular = errors.New("not a regular file")
)

// MaxSymlinks is how many symbolic links resolving one path may follow: the kernel's
// limit, which the package relies on.
const MaxSymlinks = 40

// FS gives clients read access to the files under Root. The zero value is not usable:
// Root must be set. An FS is a value without state and safe for concurrent use.
type FS struct {
	// Root is the host directory that clients see as "/": "/" on a node, the state
	// directory in local mode. A relative Root is taken from the working directory.
	Root string
	// Allowed lists the client paths, such as "/var/log" or "/etc/hostname", whose
	// trees callers without the os:admin role may List, Read and Copy; they are refused
	// everything else. A file is in an allowed tree when both the client path asked for
	// and the real location of the file opened are in it, so a link inside an allowed
	// tree may lead to another allowed tree but nowhere else. An entry that is itself a
	// symbolic link allows the tree it leads to, so only list entries whose parent
	// directories only root can change. Entries that do not exist are ignored.
	Allowed []string
}

// allowedTrees returns the Allowed entries as clean client paths.
func (fsys FS) allowedTrees() []string {
	var trees []string
	for _, p := range fsys.Allowed {
		if p == "" {
			continue
		}
		trees = append(trees, path.Clean("/"+p))
	}
	return trees
}

// allowedClient reports whether the clean client path p is in one of the allowed trees.
func allowedClient(p string, trees []string) bool {
	for _, t := range trees {
		if within(p, t) {
			return true
		}
	}
	return false
}

// within reports whether the clean, absolute path p is prefix or inside it.
func within(p, prefix string) bool {
	return prefix == "/" || p == prefix || strings.HasPrefix(p, prefix+"/")
}

// restricted builds the error that refuses the clean client path p to a caller without
// the os:admin role, saying what such a caller may read.
func restricted(op, p string, trees []string) error {
	what := "no files"
	if len(trees) > 0 {
		what = "only " + strings.Join(trees, ", ") + " (and what is under them)"
	}
	return &fs.PathError{Op: op, Path: p, Err: fmt.Errorf("%w; other roles may read %s", ErrRestricted, what)}
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
	var se *os.SyscallError
	if errors.As(err, &se) {
		return se.Err
	}
	return err
}
