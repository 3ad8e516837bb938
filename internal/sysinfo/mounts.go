package sysinfo

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// Mount is one mounted filesystem.
type Mount struct {
	// Source is what is mounted: a device, a remote share, or a pseudo name such as
	// "proc" or "overlay".
	Source string
	// Target is where it is mounted.
	Target string
	// FSType is the filesystem type, with any subtype ("fuse.sshfs").
	FSType string
	// SizeBytes is the filesystem's size; zero when statfs on Target failed.
	SizeBytes uint64
	// AvailableBytes is the space an unprivileged user can still use; zero when statfs
	// on Target failed.
	AvailableBytes uint64
}

// Mounts lists the mounts of the reading process's mount namespace from
// <procRoot>/self/mountinfo, in the kernel's order (parents before children). Sizes come
// from statfs on each target; a target that cannot be statted (gone, no permission)
// keeps zero sizes rather than failing the list. statfs on a hung network filesystem can
// block.
func Mounts(procRoot string) ([]Mount, error) {
	name := filepath.Join(procRoot, "self", "mountinfo")
	data, err := os.ReadFile(name)
	if err != nil {
		return nil, fmt.Errorf("mounts: %w", err)
	}
	var mounts []Mount
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 0, 64*1024), 1024*1024)
	line := 0
	for sc.Scan() {
		line++
		if strings.TrimSpace(sc.Text()) == "" {
			continue
		}
		m, err := parseMountinfo(sc.Text())
		if err != nil {
			return nil, fmt.Errorf("mounts: %s line %d: %w", name, line, err)
		}
		if size, avail, err := statfs(m.Target); err == nil {
			m.SizeBytes, m.AvailableBytes = size, avail
		}
		mounts = append(mounts, m)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("mounts: %s: %w", name, err)
	}
	return mounts, nil
}

// parseMountinfo parses one line of mountinfo (proc(5)):
//
//	36 35 98:0 /mnt1 /mnt2 rw,noatime master:1 - ext3 /dev/root rw,errors=continue
//
// The optional fields before "-" vary in number.
func parseMountinfo(line string) (Mount, error) {
	f := strings.Fields(line)
	sep := -1
	for i := 6; i < len(f); i++ {
		if f[i] == "-" {
			sep = i
			break
		}
	}
	if len(f) < 6 || sep < 0 || sep+2 >= len(f) {
		return Mount{}, fmt.Errorf("malformed mountinfo line %q", truncate(line))
	}
	return Mount{
		Target: unescapeOctal(f[4]),
		FSType: unescapeOctal(f[sep+1]),
		Source: unescapeOctal(f[sep+2]),
	}, nil
}

// unescapeOctal undoes the kernel's escaping of space, tab, newline and backslash in
// mount paths as \040, \011, \012 and \134. Anything that is not a valid three-digit
// octal escape is kept as it is.
func unescapeOctal(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	b.Grow(len(s))
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) && isOctal(s[i+1]) && isOctal(s[i+2]) && isOctal(s[i+3]) {
			v := (s[i+1]-'0')<<6 | (s[i+2]-'0')<<3 | (s[i+3] - '0')
			if s[i+1] <= '3' { // fits a byte
				b.WriteByte(v)
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// isOctal reports whether c is an octal digit.
func isOctal(c byte) bool { return c >= '0' && c <= '7' }
