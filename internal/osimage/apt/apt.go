// Package apt fetches pinned Debian packages with the host's apt: apt-cache to look versions
// and checksums up, apt-get download to fetch a .deb without installing it.
package apt

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
)

// ErrNotAvailable says the host's apt sources no longer offer a package version.
var ErrNotAvailable = errors.New("not offered by the configured apt sources")

// Stanza is one package record of apt-cache show: field name to value (continuation lines
// joined with newlines).
type Stanza map[string]string

// ParseStanzas splits apt-cache show output into records.
func ParseStanzas(out []byte) []Stanza {
	var all []Stanza
	cur := Stanza{}
	last := ""
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(make([]byte, 64*1024), 4*1024*1024)
	for sc.Scan() {
		line := sc.Text()
		switch {
		case strings.TrimSpace(line) == "":
			if len(cur) > 0 {
				all = append(all, cur)
			}
			cur, last = Stanza{}, ""
		case line[0] == ' ' || line[0] == '\t':
			if last != "" {
				cur[last] += "\n" + strings.TrimSpace(line)
			}
		default:
			k, v, ok := strings.Cut(line, ":")
			if !ok {
				continue
			}
			last = k
			cur[k] = strings.TrimSpace(v)
		}
	}
	if len(cur) > 0 {
		all = append(all, cur)
	}
	return all
}

// ParseCandidate returns the Candidate version from apt-cache policy output for one package.
func ParseCandidate(out []byte) (string, bool) {
	for line := range strings.SplitSeq(string(out), "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "Candidate:"); ok {
			v = strings.TrimSpace(v)
			return v, v != "" && v != "(none)"
		}
	}
	return "", false
}

var exactDep = regexp.MustCompile(`^(\S+)\s*\(=\s*([^)\s]+)\)$`)

// ExactDepends returns the packages a Depends field pins with (= version), with the version.
func ExactDepends(depends string) map[string]string {
	deps := map[string]string{}
	for d := range strings.SplitSeq(depends, ",") {
		if m := exactDep.FindStringSubmatch(strings.TrimSpace(d)); m != nil {
			deps[m[1]] = m[2]
		}
	}
	return deps
}

func run(ctx context.Context, dir, name string, args ...string) ([]byte, error) {
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir = dir
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w: %s", name, strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	return out, nil
}

// Show returns the record of pkg at exactly version, or ErrNotAvailable.
func Show(ctx context.Context, pkg, version string) (Stanza, error) {
	out, err := run(ctx, "", "apt-cache", "show", pkg+"="+version)
	if err != nil && !strings.Contains(err.Error(), "Unable to locate") && !strings.Contains(err.Error(), "No packages found") {
		return nil, err
	}
	for _, s := range ParseStanzas(out) {
		if s["Package"] == pkg && s["Version"] == version {
			return s, nil
		}
	}
	return nil, fmt.Errorf("%s=%s: %w", pkg, version, ErrNotAvailable)
}

// Candidate returns the version apt would install of pkg (the newest of the highest priority).
func Candidate(ctx context.Context, pkg string) (string, error) {
	out, err := run(ctx, "", "apt-cache", "policy", pkg)
	if err != nil {
		return "", err
	}
	v, ok := ParseCandidate(out)
	if !ok {
		return "", fmt.Errorf("%s: no candidate version: %w", pkg, ErrNotAvailable)
	}
	return v, nil
}

// DebFileName is the name apt-get download gives the .deb of pkg at version for arch.
func DebFileName(pkg, version, arch string) string {
	return fmt.Sprintf("%s_%s_%s.deb", pkg, strings.ReplaceAll(version, ":", "%3a"), arch)
}

// Download fetches pkg=version into dir unless it is there already, and returns its path.
// The caller verifies the checksum.
func Download(ctx context.Context, pkg, version, arch, dir string) (string, error) {
	path := filepath.Join(dir, DebFileName(pkg, version, arch))
	if _, err := os.Stat(path); err == nil {
		return path, nil
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", fmt.Errorf("package cache: %w", err)
	}
	if _, err := Show(ctx, pkg, version); err != nil {
		return "", err
	}
	if _, err := run(ctx, dir, "apt-get", "download", "-q", pkg+"="+version); err != nil {
		return "", fmt.Errorf("download %s=%s: %w", pkg, version, err)
	}
	if _, err := os.Stat(path); err != nil {
		return "", fmt.Errorf("download %s=%s: apt-get did not write %s", pkg, version, path)
	}
	return path, nil
}
