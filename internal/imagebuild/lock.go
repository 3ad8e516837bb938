package imagebuild

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
)

// Lock is payload/images.lock: what the image bundle and the node image are built from
// that the payload's go.mod does not pin, and the digests the bundle's images must have.
//
//	toolchain go1.26.8                      the Go release that builds the payload and the images
//	deb iptables 1.8.9-2                    a Debian package (name, version) whose files the images copy
//	file /usr/lib/x/y sha256:<hex>          a host file copied that no package owns
//	sha256:<hex> plinth.local/pause:3.10    an image's manifest digest and its tags
type Lock struct {
	Toolchain string
	Packages  map[string]string // Debian package name -> version
	Files     map[string]string // host path owned by no package -> sha256:<hex>
	Images    []Saved           // sorted by first tag
}

const lockHeader = `# payload/images.lock: what the image bundle (and the node image) are built from beyond
# payload/go.mod, and the image digests they must give. Checked by every build (make images);
# written only deliberately: make images-lock (see docs/os-image.md, "Reproducible node image").
`

// Format writes the lock: header, toolchain, packages, files, images, each sorted.
func (l Lock) Format() []byte {
	var b bytes.Buffer
	b.WriteString(lockHeader)
	if l.Toolchain != "" {
		fmt.Fprintf(&b, "toolchain %s\n", l.Toolchain)
	}
	for _, n := range sortedKeys(l.Packages) {
		fmt.Fprintf(&b, "deb %s %s\n", n, l.Packages[n])
	}
	for _, p := range sortedKeys(l.Files) {
		fmt.Fprintf(&b, "file %s %s\n", p, l.Files[p])
	}
	for _, s := range l.Images {
		fmt.Fprintf(&b, "%s %s\n", s.Digest, strings.Join(s.Tags, " "))
	}
	return b.Bytes()
}

// ParseLock reads a lock written by Format (comment and blank lines are skipped).
func ParseLock(data []byte) (Lock, error) {
	l := Lock{Packages: map[string]string{}, Files: map[string]string{}}
	sc := bufio.NewScanner(bytes.NewReader(data))
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		f := strings.Fields(line)
		switch {
		case f[0] == "toolchain" && len(f) == 2:
			l.Toolchain = f[1]
		case f[0] == "deb" && len(f) == 3:
			l.Packages[f[1]] = f[2]
		case f[0] == "file" && len(f) == 3:
			l.Files[f[1]] = f[2]
		case strings.HasPrefix(f[0], "sha256:") && len(f) >= 2:
			l.Images = append(l.Images, Saved{Digest: f[0], Tags: append([]string(nil), f[1:]...)})
		default:
			return Lock{}, fmt.Errorf("line %d: cannot parse %q", n, line)
		}
	}
	return l, sc.Err()
}

// HostDiff lists how the host inputs of got (this build) differ from l (the lock), one
// line each: toolchain, packages and unowned files. With subset, entries of l missing
// from got are not differences (the node image uses only some of the lock's packages).
func (l Lock) HostDiff(got Lock, subset bool) []string {
	var diffs []string
	if got.Toolchain != l.Toolchain {
		diffs = append(diffs, fmt.Sprintf("Go toolchain: this build uses %s, the lock says %s", got.Toolchain, orNone(l.Toolchain)))
	}
	diffs = append(diffs, mapDiff("Debian package", l.Packages, got.Packages, subset)...)
	diffs = append(diffs, mapDiff("host file", l.Files, got.Files, subset)...)
	return diffs
}

// ImageDiff lists the images whose digests (or tags) differ between l and got.
func (l Lock) ImageDiff(got Lock) []string {
	index := func(images []Saved) map[string]string {
		m := map[string]string{}
		for _, s := range images {
			for _, t := range s.Tags {
				m[t] = s.Digest
			}
		}
		return m
	}
	return mapDiff("image", index(l.Images), index(got.Images), false)
}

func mapDiff(what string, locked, got map[string]string, subset bool) []string {
	var diffs []string
	keys := map[string]bool{}
	for k := range locked {
		keys[k] = true
	}
	for k := range got {
		keys[k] = true
	}
	for _, k := range sortedKeys(keys) {
		lv, inLock := locked[k]
		gv, inGot := got[k]
		switch {
		case inLock && inGot && lv != gv:
			diffs = append(diffs, fmt.Sprintf("%s %s: this build has %s, the lock says %s", what, k, gv, lv))
		case !inLock:
			diffs = append(diffs, fmt.Sprintf("%s %s: this build has %s, the lock does not list it", what, k, gv))
		case !inGot && !subset:
			diffs = append(diffs, fmt.Sprintf("%s %s: the lock lists %s, this build does not have it", what, k, lv))
		}
	}
	return diffs
}

func orNone(s string) string {
	if s == "" {
		return "nothing"
	}
	return s
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// HostPackages finds the Debian packages (and their installed versions) that own the host
// files; files no package owns are returned with their sha256 instead. A path is looked
// up as given and then without or with the /usr prefix (Debian's merged /usr registers a
// file under one of /lib and /usr/lib).
func HostPackages(ctx context.Context, files []string) (pkgs, unowned map[string]string, err error) {
	if _, err := exec.LookPath("dpkg-query"); err != nil {
		return nil, nil, fmt.Errorf("the images copy programs from Debian packages (iptables, runc, mount) and record their versions with dpkg-query: %w", err)
	}
	pkgs, unowned = map[string]string{}, map[string]string{}
	owners := map[string]string{} // path as registered -> package
	query := func(paths []string) error {
		// dpkg-query -S exits 1 when some path is not found; the others are still printed.
		out, _ := exec.CommandContext(ctx, "dpkg-query", append([]string{"-S"}, paths...)...).Output()
		sc := bufio.NewScanner(bytes.NewReader(out))
		for sc.Scan() {
			line := sc.Text()
			if strings.HasPrefix(line, "diversion ") {
				continue
			}
			pkgList, p, ok := strings.Cut(line, ": ")
			if !ok {
				continue
			}
			// "pkg:arch" or "pkg1, pkg2" (a directory); a file has one owner.
			pkg, _, _ := strings.Cut(strings.Split(pkgList, ", ")[0], ":")
			owners[p] = pkg
		}
		return sc.Err()
	}
	candidates := func(p string) []string {
		if rest, ok := strings.CutPrefix(p, "/usr/"); ok {
			return []string{p, "/" + rest}
		}
		return []string{p, "/usr" + p}
	}
	var all []string
	for _, f := range files {
		all = append(all, candidates(f)...)
	}
	if err := query(all); err != nil {
		return nil, nil, err
	}
	for _, f := range files {
		pkg := ""
		for _, c := range candidates(f) {
			if pkg = owners[c]; pkg != "" {
				break
			}
		}
		if pkg != "" {
			pkgs[pkg] = ""
			continue
		}
		sum, err := fileSum(f)
		if err != nil {
			return nil, nil, err
		}
		unowned[f] = sum
	}
	if len(pkgs) > 0 {
		args := append([]string{"-W", "-f", "${Package} ${Version}\n"}, sortedKeys(pkgs)...)
		out, err := exec.CommandContext(ctx, "dpkg-query", args...).Output()
		if err != nil {
			return nil, nil, fmt.Errorf("dpkg-query -W: %w", err)
		}
		for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
			if f := strings.Fields(line); len(f) == 2 {
				pkgs[f[0]] = f[1]
			}
		}
		for n, v := range pkgs {
			if v == "" {
				return nil, nil, fmt.Errorf("no installed version of Debian package %s", n)
			}
		}
	}
	return pkgs, unowned, nil
}

// fileSum is the sha256 of a host file's content, or of a symlink's target path.
func fileSum(p string) (string, error) {
	h := sha256.New()
	st, err := os.Lstat(p)
	if err != nil {
		return "", err
	}
	if st.Mode()&os.ModeSymlink != 0 {
		target, err := os.Readlink(p)
		if err != nil {
			return "", err
		}
		h.Write([]byte("symlink " + target))
	} else {
		data, err := os.ReadFile(filepath.Clean(p))
		if err != nil {
			return "", err
		}
		h.Write(data)
	}
	return "sha256:" + hex.EncodeToString(h.Sum(nil)), nil
}

// CgoToolchainFiles lists the host files that go into flanneld, the one payload binary
// built with cgo and linked statically (payload/Makefile): the C compiler and linker, and
// the static C libraries (glibc's libc.a, libgcc.a). Their packages' versions change
// flanneld's bytes, so the lock records them too. CC is gcc (payload/Makefile sets it).
func CgoToolchainFiles(ctx context.Context) ([]string, error) {
	var files []string
	for _, q := range []struct{ what, arg string }{
		{"compiler", ""}, {"linker", "-print-prog-name=ld"},
		{"libc.a", "-print-file-name=libc.a"}, {"libgcc.a", "-print-libgcc-file-name"},
	} {
		p := "gcc"
		if q.arg != "" {
			out, err := exec.CommandContext(ctx, "gcc", q.arg).Output()
			if err != nil {
				return nil, fmt.Errorf("gcc %s: %w (flanneld is linked statically with gcc: hack/setup.sh installs gcc and libc6-dev)", q.arg, err)
			}
			p = strings.TrimSpace(string(out))
		}
		if !filepath.IsAbs(p) {
			lp, err := exec.LookPath(p)
			if err != nil {
				return nil, fmt.Errorf("cgo %s %s: %w (hack/setup.sh installs gcc and libc6-dev)", q.what, p, err)
			}
			p = lp
		}
		real, err := filepath.EvalSymlinks(p)
		if err != nil {
			return nil, fmt.Errorf("cgo %s: %w (hack/setup.sh installs gcc and libc6-dev)", q.what, err)
		}
		files = append(files, real)
	}
	return files, nil
}
