package sysinfo

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// MemoryInfo is the machine's memory as the kernel accounts it in meminfo. Every field
// is in bytes. The function that reads it is Memory.
type MemoryInfo struct {
	// Total is the usable RAM (MemTotal).
	Total uint64
	// Free is the RAM that is not used at all (MemFree).
	Free uint64
	// Available is the kernel's estimate of the RAM available to start new programs
	// without swapping (MemAvailable); zero on kernels that do not report it.
	Available uint64
	// Buffers is the RAM used by block device buffers (Buffers).
	Buffers uint64
	// Cached is the RAM used by the page cache (Cached).
	Cached uint64
	// SwapTotal is the total swap space (SwapTotal).
	SwapTotal uint64
	// SwapFree is the unused swap space (SwapFree).
	SwapFree uint64
}

// Memory reads <procRoot>/meminfo. It fails when the file cannot be read, a known field
// is malformed, or MemTotal is missing.
func Memory(procRoot string) (MemoryInfo, error) {
	name := filepath.Join(procRoot, "meminfo")
	data, err := os.ReadFile(name)
	if err != nil {
		return MemoryInfo{}, fmt.Errorf("memory: %w", err)
	}
	var m MemoryInfo
	fields := map[string]*uint64{
		"MemTotal":     &m.Total,
		"MemFree":      &m.Free,
		"MemAvailable": &m.Available,
		"Buffers":      &m.Buffers,
		"Cached":       &m.Cached,
		"SwapTotal":    &m.SwapTotal,
		"SwapFree":     &m.SwapFree,
	}
	sawTotal := false
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		key, value, ok := strings.Cut(sc.Text(), ":")
		if !ok {
			continue
		}
		dst, known := fields[key]
		if !known {
			continue
		}
		n, err := kibValue(value)
		if err != nil {
			return MemoryInfo{}, fmt.Errorf("memory: %s: field %s: %w", name, key, err)
		}
		*dst = n
		if key == "MemTotal" {
			sawTotal = true
		}
	}
	if !sawTotal {
		return MemoryInfo{}, fmt.Errorf("memory: %s: no MemTotal", name)
	}
	return m, nil
}
