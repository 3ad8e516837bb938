package sysinfo

import (
	"bufio"
	"bytes"
	"cmp"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
)

// Process is one entry of the process table.
type Process struct {
	// PID is the process (thread group) id.
	PID int32
	// PPID is the parent's process id; zero for the init process and kernel roots.
	PPID int32
	// State is the one-letter scheduler state from /proc/PID/stat: R running, S sleeping,
	// D uninterruptible, Z zombie, T stopped, I idle kernel thread, and so on.
	State string
	// Threads is the number of threads in the process.
	Threads int32
	// CPUSeconds is the user plus system CPU time the process has used.
	CPUSeconds float64
	// ResidentBytes is the resident set size.
	ResidentBytes uint64
	// ProportionalBytes is the proportional set size (PSS): the resident size with each
	// shared page divided among the processes that map it, so that summing it over
	// processes counts shared binaries and libraries once. Zero when it cannot be read
	// (another user's process, kernel threads, kernels without smaps_rollup).
	ProportionalBytes uint64
	// VirtualBytes is the size of the virtual address space.
	VirtualBytes uint64
	// Command is the executable name the kernel keeps for the process (comm), at most
	// 15 bytes.
	Command string
	// Args is the command line with its NUL separators turned into spaces; empty for
	// kernel threads and zombies.
	Args string
}

// defaultClockTicks is USER_HZ on every architecture Linux runs containers on; it is used
// when the auxiliary vector does not say.
const defaultClockTicks = 100

// atClkTck is the auxiliary vector entry that carries the clock tick rate.
const atClkTck = 17

// Processes lists the processes under procRoot, sorted by PID. A process that exits
// while it is being read is left out rather than reported as an error.
func Processes(procRoot string) ([]Process, error) {
	des, err := os.ReadDir(procRoot)
	if err != nil {
		return nil, fmt.Errorf("processes: %w", err)
	}
	ticks := clockTicks(procRoot)
	pageSize := uint64(os.Getpagesize())
	var procs []Process
	for _, de := range des {
		pid, err := strconv.ParseInt(de.Name(), 10, 32)
		if err != nil || pid <= 0 {
			continue // not a process directory
		}
		p, err := readProcess(filepath.Join(procRoot, de.Name()), ticks, pageSize)
		if err != nil {
			if errors.Is(err, errVanished) || vanished(err) {
				continue
			}
			return nil, fmt.Errorf("processes: pid %d: %w", pid, err)
		}
		procs = append(procs, p)
	}
	slices.SortFunc(procs, func(a, b Process) int { return cmp.Compare(a.PID, b.PID) })
	return procs, nil
}

// errVanished marks a process whose files came back empty because it exited between
// being opened and being read.
var errVanished = errors.New("process vanished")

// readProcess reads one /proc/PID directory.
func readProcess(dir string, ticks float64, pageSize uint64) (Process, error) {
	stat, err := os.ReadFile(filepath.Join(dir, "stat"))
	if err != nil {
		return Process{}, err
	}
	if len(stat) == 0 {
		return Process{}, errVanished
	}
	p, err := parseStat(string(stat), ticks, pageSize)
	if err != nil {
		return Process{}, err
	}
	// The process may exit after stat was read; what stat said is kept then, and
	// status and cmdline just add what they can.
	//
	// status gives the resident size in kB, which does not depend on knowing the page
	// size of the kernel that wrote the tree; kernel threads have no VmRSS line.
	if status, err := os.ReadFile(filepath.Join(dir, "status")); err == nil {
		if rss, ok := statusField(status, "VmRSS"); ok {
			p.ResidentBytes = rss
		}
	}
	if rollup, err := os.ReadFile(filepath.Join(dir, "smaps_rollup")); err == nil {
		if pss, ok := statusField(rollup, "Pss"); ok {
			p.ProportionalBytes = pss
		}
	}
	if cmdline, err := os.ReadFile(filepath.Join(dir, "cmdline")); err == nil {
		p.Args = strings.TrimRight(strings.ReplaceAll(strings.TrimRight(string(cmdline), "\x00"), "\x00", " "), " ")
	}
	return p, nil
}

// Field positions in /proc/PID/stat after the closing parenthesis of comm, counted from
// zero at the state field (field 3 in proc(5)).
const (
	statState   = 0  // field 3
	statPPID    = 1  // field 4
	statUtime   = 11 // field 14
	statStime   = 12 // field 15
	statThreads = 17 // field 20
	statVsize   = 20 // field 23
	statRSS     = 21 // field 24, in pages
	statMin     = statRSS + 1
)

// parseStat parses the text of /proc/PID/stat. comm may hold spaces and parentheses, so
// it is everything between the first '(' and the last ')'.
func parseStat(s string, ticks float64, pageSize uint64) (Process, error) {
	open := strings.IndexByte(s, '(')
	closing := strings.LastIndexByte(s, ')')
	if open < 0 || closing < open {
		return Process{}, fmt.Errorf("stat %q: no (comm)", truncate(s))
	}
	pid, err := strconv.ParseInt(strings.TrimSpace(s[:open]), 10, 32)
	if err != nil {
		return Process{}, fmt.Errorf("stat: pid: %w", err)
	}
	f := strings.Fields(s[closing+1:])
	if len(f) < statMin {
		return Process{}, fmt.Errorf("stat: %d fields after comm, want at least %d", len(f), statMin)
	}
	num := func(i int, name string) (int64, error) {
		n, err := strconv.ParseInt(f[i], 10, 64)
		if err != nil {
			return 0, fmt.Errorf("stat: %s: %w", name, err)
		}
		return n, nil
	}
	unum := func(i int, name string) (uint64, error) {
		n, err := strconv.ParseUint(f[i], 10, 64)
		if err != nil {
			return 0, fmt.Errorf("stat: %s: %w", name, err)
		}
		return n, nil
	}
	p := Process{PID: int32(pid), State: f[statState], Command: s[open+1 : closing]}
	ppid, err := num(statPPID, "ppid")
	if err != nil {
		return Process{}, err
	}
	utime, err := unum(statUtime, "utime")
	if err != nil {
		return Process{}, err
	}
	stime, err := unum(statStime, "stime")
	if err != nil {
		return Process{}, err
	}
	threads, err := num(statThreads, "num_threads")
	if err != nil {
		return Process{}, err
	}
	vsize, err := unum(statVsize, "vsize")
	if err != nil {
		return Process{}, err
	}
	rss, err := num(statRSS, "rss")
	if err != nil {
		return Process{}, err
	}
	p.PPID = int32(ppid)
	p.Threads = int32(threads)
	p.CPUSeconds = float64(utime+stime) / ticks
	p.VirtualBytes = vsize
	if rss > 0 {
		p.ResidentBytes = uint64(rss) * pageSize
	}
	return p, nil
}

// statusField returns the value, in bytes, of a "Key: N kB" line of /proc/PID/status.
func statusField(status []byte, key string) (uint64, bool) {
	sc := bufio.NewScanner(bytes.NewReader(status))
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if !ok || k != key {
			continue
		}
		n, err := kibValue(v)
		return n, err == nil
	}
	return 0, false
}

// clockTicks returns the kernel's USER_HZ from the AT_CLKTCK entry of
// <procRoot>/self/auxv, or defaultClockTicks when that cannot be read.
func clockTicks(procRoot string) float64 {
	data, err := os.ReadFile(filepath.Join(procRoot, "self", "auxv"))
	if err != nil {
		return defaultClockTicks
	}
	word := strconv.IntSize / 8
	for off := 0; off+2*word <= len(data); off += 2 * word {
		var key, val uint64
		if word == 8 {
			key = binary.NativeEndian.Uint64(data[off:])
			val = binary.NativeEndian.Uint64(data[off+word:])
		} else {
			key = uint64(binary.NativeEndian.Uint32(data[off:]))
			val = uint64(binary.NativeEndian.Uint32(data[off+word:]))
		}
		if key == 0 { // AT_NULL ends the vector
			break
		}
		if key == atClkTck && val > 0 {
			return float64(val)
		}
	}
	return defaultClockTicks
}

// truncate shortens s for an error message.
func truncate(s string) string {
	if len(s) > 64 {
		return s[:64] + "..."
	}
	return s
}
