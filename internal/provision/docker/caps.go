package docker

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"strconv"
	"strings"
)

// capNames are the Linux capabilities by bit number, as Docker names them (without CAP_).
var capNames = []string{
	"CHOWN", "DAC_OVERRIDE", "DAC_READ_SEARCH", "FOWNER", "FSETID", "KILL", "SETGID", "SETUID",
	"SETPCAP", "LINUX_IMMUTABLE", "NET_BIND_SERVICE", "NET_BROADCAST", "NET_ADMIN", "NET_RAW",
	"IPC_LOCK", "IPC_OWNER", "SYS_MODULE", "SYS_RAWIO", "SYS_CHROOT", "SYS_PTRACE", "SYS_PACCT",
	"SYS_ADMIN", "SYS_BOOT", "SYS_NICE", "SYS_RESOURCE", "SYS_TIME", "SYS_TTY_CONFIG", "MKNOD",
	"LEASE", "AUDIT_WRITE", "AUDIT_CONTROL", "SETFCAP", "MAC_OVERRIDE", "MAC_ADMIN", "SYSLOG",
	"WAKE_ALARM", "BLOCK_SUSPEND", "AUDIT_READ", "PERFMON", "BPF", "CHECKPOINT_RESTORE",
}

// LastKnownCap is the highest capability number this package can name.
var LastKnownCap = len(capNames) - 1

// CapName returns the name of capability bit, or CAP_<bit> for one this package does not know.
func CapName(bit int) string {
	if bit >= 0 && bit < len(capNames) {
		return capNames[bit]
	}
	return "CAP_" + strconv.Itoa(bit)
}

// CapSet is the capability bounding set of the host and the highest capability its
// kernel knows.
type CapSet struct {
	Bounding uint64
	LastCap  int
}

// ParseCapMask parses a capability mask as /proc/PID/status prints it (hex, no 0x).
func ParseCapMask(s string) (uint64, error) {
	s = strings.TrimPrefix(strings.TrimSpace(s), "0x")
	v, err := strconv.ParseUint(s, 16, 64)
	if err != nil {
		return 0, fmt.Errorf("capability mask %q is not hexadecimal", s)
	}
	return v, nil
}

// ParseStatusCapBnd returns the CapBnd mask of a /proc/PID/status file's content.
func ParseStatusCapBnd(status []byte) (uint64, error) {
	sc := bufio.NewScanner(bytes.NewReader(status))
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "CapBnd:"); ok {
			return ParseCapMask(rest)
		}
	}
	return 0, fmt.Errorf("no CapBnd line in the process status")
}

// CapNames lists the names of the capabilities set in mask up to lastCap, in bit order.
func CapNames(mask uint64, lastCap int) []string {
	var names []string
	for bit := 0; bit <= lastCap && bit < 64; bit++ {
		if mask&(1<<bit) != 0 {
			names = append(names, CapName(bit))
		}
	}
	return names
}

// Missing lists the capabilities up to the kernel's last one (and the last one this package
// knows, since Docker must know a name to drop it) that the bounding set lacks.
func (c CapSet) Missing() []string {
	last := min(c.LastCap, LastKnownCap)
	return CapNames(^c.Bounding, last)
}

// Flags are the docker run flags that give a container every capability the host's
// bounding set holds: --cap-add=ALL, and --cap-drop for each missing one (asking for a
// capability outside the bounding set fails the container's start, which is why
// --privileged fails on hosts that lack one).
func (c CapSet) Flags() []string {
	flags := []string{"--cap-add=ALL"}
	for _, name := range c.Missing() {
		flags = append(flags, "--cap-drop="+name)
	}
	return flags
}

// HostCaps reads the bounding set of this process (the same as the Docker daemon's on a
// local engine) and the kernel's last capability.
func HostCaps() (CapSet, error) {
	status, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return CapSet{}, fmt.Errorf("read the capability bounding set: %w", err)
	}
	bnd, err := ParseStatusCapBnd(status)
	if err != nil {
		return CapSet{}, err
	}
	last := LastKnownCap
	if data, err := os.ReadFile("/proc/sys/kernel/cap_last_cap"); err == nil {
		if n, err := strconv.Atoi(strings.TrimSpace(string(data))); err == nil {
			last = n
		}
	}
	return CapSet{Bounding: bnd, LastCap: last}, nil
}
