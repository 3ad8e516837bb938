package stage0

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// DefaultRootWait is how long stage 0 waits for the root partition when the command line
// does not say (plinth.rootwait).
const DefaultRootWait = 30 * time.Second

// Cmdline is what stage 0 takes from the kernel command line.
type Cmdline struct {
	// Slot is the root slot to boot, "A" or "B" (plinth.slot, default A).
	Slot string
	// Root, when set, is the GPT partition name to boot instead of ROOT-<Slot> (plinth.root).
	Root string
	// Live boots the install media: the root is the squashfs file on a CD (ISO 9660 volume
	// MediaVolumeID), not a partition (plinth.live).
	Live bool
	// Debug makes stage 0 say more (plinth.debug).
	Debug bool
	// RootWait bounds the wait for the root partition (plinth.rootwait, in seconds).
	RootWait time.Duration
	// Panic is the kernel's panic=N: when non-zero, a failed boot reboots (after N seconds
	// when N > 0, at once when N < 0) instead of waiting forever.
	Panic int
}

// PartName is the GPT partition name of the root filesystem to mount.
func (c Cmdline) PartName() string {
	if c.Root != "" {
		return c.Root
	}
	return "ROOT-" + c.Slot
}

// ParseCmdline reads the plinth.* keys (and panic=) of a kernel command line. Unknown keys
// are ignored; a known key with a value that makes no sense is an error, because booting a
// root the operator did not ask for is worse than stopping with a clear message. Even then
// the returned Cmdline holds every key that did parse (Panic in particular, which says how
// to fail). As in the kernel, a later key overrides an earlier one and "--" ends the
// kernel's part.
func ParseCmdline(s string) (Cmdline, error) {
	c := Cmdline{Slot: "A", RootWait: DefaultRootWait}
	var firstErr error
	fail := func(err error) {
		if firstErr == nil {
			firstErr = err
		}
	}
	for _, field := range splitCmdline(s) {
		if field == "--" {
			break
		}
		key, value, hasValue := strings.Cut(field, "=")
		switch key {
		case "plinth.slot":
			switch value {
			case "A", "B":
				c.Slot = value
			default:
				fail(fmt.Errorf("kernel command line: plinth.slot=%s: the slot must be A or B", value))
			}
		case "plinth.root":
			if value == "" || strings.ContainsAny(value, "/\n") {
				fail(fmt.Errorf("kernel command line: plinth.root=%q: want a GPT partition name such as ROOT-A", value))
				continue
			}
			c.Root = value
		case "plinth.debug", "plinth.live":
			dst := &c.Debug
			if key == "plinth.live" {
				dst = &c.Live
			}
			if !hasValue {
				*dst = true
				continue
			}
			b, err := parseBool(value)
			if err != nil {
				fail(fmt.Errorf("kernel command line: %s=%s: %w", key, value, err))
				continue
			}
			*dst = b
		case "plinth.rootwait":
			n, err := strconv.Atoi(value)
			if err != nil || n < 0 {
				fail(fmt.Errorf("kernel command line: plinth.rootwait=%s: want a whole number of seconds, 0 or more", value))
				continue
			}
			c.RootWait = time.Duration(n) * time.Second
		case "panic":
			// The kernel owns this key; a value it would reject is not our business.
			if n, err := strconv.Atoi(value); err == nil {
				c.Panic = n
			}
		}
	}
	return c, firstErr
}

func parseBool(s string) (bool, error) {
	switch strings.ToLower(s) {
	case "1", "y", "yes", "true", "on":
		return true, nil
	case "0", "n", "no", "false", "off":
		return false, nil
	}
	return false, fmt.Errorf("want 1 or 0")
}

// splitCmdline splits a command line at spaces, keeping double-quoted parts together and
// dropping the quotes, as the kernel does (key="a b" is one parameter with value "a b").
func splitCmdline(s string) []string {
	var (
		fields  []string
		cur     strings.Builder
		inQuote bool
		inField bool
	)
	for _, r := range s {
		switch {
		case r == '"':
			inQuote = !inQuote
			inField = true
		case !inQuote && (r == ' ' || r == '\t' || r == '\n'):
			if inField {
				fields = append(fields, cur.String())
				cur.Reset()
				inField = false
			}
		default:
			cur.WriteRune(r)
			inField = true
		}
	}
	if inField {
		fields = append(fields, cur.String())
	}
	return fields
}
