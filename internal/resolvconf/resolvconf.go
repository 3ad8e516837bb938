// Package resolvconf writes the machine's resolver configuration, /etc/resolv.conf, from
// the name servers and search domains the configuration or DHCP gives.
package resolvconf

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"net/netip"
	"os"
	"strings"

	"github.com/plinthos/plinth/internal/atomicfile"
)

// Path is the resolver configuration of the machine.
const Path = "/etc/resolv.conf"

// The resolver (glibc's, musl's, Go's) reads at most this many name servers and search
// domains.
const (
	maxServers = 3
	maxSearch  = 6
)

// Render returns the resolv.conf of servers and search domains: the first three servers
// and six domains, duplicates dropped.
func Render(servers []netip.Addr, search []string) []byte {
	var b bytes.Buffer
	b.WriteString("# Written by Plinth from machine.network.nameservers or DHCP.\n")
	seen := map[netip.Addr]bool{}
	n := 0
	for _, s := range servers {
		if n == maxServers || seen[s] || !s.IsValid() {
			continue
		}
		seen[s] = true
		n++
		fmt.Fprintf(&b, "nameserver %s\n", s)
	}
	var domains []string
	for _, d := range search {
		d = strings.TrimSuffix(d, ".")
		if d == "" || len(domains) == maxSearch || contains(domains, d) {
			continue
		}
		domains = append(domains, d)
	}
	if len(domains) > 0 {
		fmt.Fprintf(&b, "search %s\n", strings.Join(domains, " "))
	}
	return b.Bytes()
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// Write replaces the file at path with Render(servers, search), atomically; it reports
// whether the content changed (an unchanged file is left alone).
func Write(path string, servers []netip.Addr, search []string) (bool, error) {
	data := Render(servers, search)
	old, err := os.ReadFile(path)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return false, fmt.Errorf("read %s: %w", path, err)
	}
	if err == nil && bytes.Equal(old, data) {
		return false, nil
	}
	if err := atomicfile.Write(path, data, 0o644); err != nil {
		return false, fmt.Errorf("write %s: %w", path, err)
	}
	return true, nil
}
