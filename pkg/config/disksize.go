package config

import (
	"fmt"
	"strconv"
	"strings"
)

// DiskBuses are the buses a DiskSelector may name.
var DiskBuses = []string{"virtio", "nvme", "scsi", "ata", "usb"}

var sizeUnits = []struct {
	suffix string
	factor int64
}{ // longest suffixes first
	{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30}, {"TiB", 1 << 40},
	{"KB", 1e3}, {"MB", 1e6}, {"GB", 1e9}, {"TB", 1e12}, {"B", 1},
}

// ParseSizeMatch reads a DiskSelector size: an optional comparison (>=, <=, >, <, ==) and a
// size with a unit. It returns the comparison ("==" when none) and the size in bytes.
func ParseSizeMatch(s string) (op string, bytes int64, err error) {
	rest := strings.TrimSpace(s)
	op = "=="
	for _, o := range []string{">=", "<=", "==", ">", "<"} {
		if after, ok := strings.CutPrefix(rest, o); ok {
			op, rest = o, strings.TrimSpace(after)
			break
		}
	}
	for _, u := range sizeUnits {
		if num, ok := strings.CutSuffix(rest, u.suffix); ok {
			n, err := strconv.ParseFloat(strings.TrimSpace(num), 64)
			if err != nil || n < 0 {
				return "", 0, fmt.Errorf("%q: %q is not a size; write such as >= 32GB", s, num)
			}
			return op, int64(n * float64(u.factor)), nil
		}
	}
	return "", 0, fmt.Errorf("%q has no unit: write such as >= 32GB (B, KB, MB, GB, TB, KiB, MiB, GiB, TiB)", s)
}

// SizeMatches says whether size (bytes) satisfies the DiskSelector size s.
func SizeMatches(s string, size int64) (bool, error) {
	op, want, err := ParseSizeMatch(s)
	if err != nil {
		return false, err
	}
	switch op {
	case ">=":
		return size >= want, nil
	case "<=":
		return size <= want, nil
	case ">":
		return size > want, nil
	case "<":
		return size < want, nil
	}
	return size == want, nil
}
