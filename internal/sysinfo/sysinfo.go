// Package sysinfo reads facts about the machine from the proc and sys filesystems: the
// process table, memory, mounts and the kernel log. It is read-only and has no state:
// every function takes the proc root ("/proc" on a node) so tests can point it at a fake
// tree.
package sysinfo

import (
	"errors"
	"io/fs"
	"strconv"
	"strings"
	"syscall"
)

// vanished reports whether err means that the thing read went away while it was being
// read, as a process that exits between listing /proc and opening its files does.
func vanished(err error) bool {
	return errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ESRCH)
}

// kibValue parses the value of a "Key:   1234 kB" line as found in meminfo and
// /proc/PID/status, returning bytes. A value without a unit is returned as is.
func kibValue(s string) (uint64, error) {
	fields := strings.Fields(s)
	if len(fields) == 0 {
		return 0, errors.New("empty value")
	}
	n, err := strconv.ParseUint(fields[0], 10, 64)
	if err != nil {
		return 0, err
	}
	if len(fields) > 1 && strings.EqualFold(fields[1], "kB") {
		n *= 1024
	}
	return n, nil
}
