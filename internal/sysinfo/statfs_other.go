//go:build !linux

package sysinfo

import "errors"

// statfs is only implemented on Linux; elsewhere mounts keep zero sizes.
func statfs(string) (size, avail uint64, err error) {
	return 0, 0, errors.New("statfs: not supported on this system")
}
