package sysinfo_test

import (
	"context"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/plinthos/plinth/internal/sysinfo"
)

// kmsgSample is what /dev/kmsg hands out, one record per line, with dictionary lines,
// an extra prefix field, a line that is not a record and a last line without newline.
const kmsgSample = `6,0,0,-;Linux version 6.8.0 (builder@host) #1 SMP
 SUBSYSTEM=cpu
 DEVICE=+cpu:0
4,1,12345678,-;ACPI: something odd
6,2,1500000,c,caller=T1;console; with semicolon
not a record at all

3,3,99999999999,-;late message`

// collect reads the channel until it is closed or the deadline passes.
func collect(t *testing.T, ch <-chan string) []string {
	t.Helper()
	var got []string
	deadline := time.After(10 * time.Second)
	for {
		select {
		case s, ok := <-ch:
			if !ok {
				return got
			}
			got = append(got, s)
		case <-deadline:
			t.Fatalf("channel not closed; got so far %q", got)
		}
	}
}

func TestReadKernelLogFile(t *testing.T) {
	name := filepath.Join(t.TempDir(), "kmsg")
	if err := os.WriteFile(name, []byte(kmsgSample), 0o644); err != nil {
		t.Fatal(err)
	}
	all := []string{
		"[    0.000000] Linux version 6.8.0 (builder@host) #1 SMP",
		"[   12.345678] ACPI: something odd",
		"[    1.500000] console; with semicolon",
		"not a record at all",
		"[99999.999999] late message",
	}
	for _, tc := range []struct {
		tail int
		want []string
	}{
		{0, all},
		{2, all[3:]},
		{5, all},
		{100, all},
		{1, all[4:]},
		{-1, nil},
	} {
		ch, err := sysinfo.ReadKernelLog(context.Background(), name, false, tc.tail)
		if err != nil {
			t.Fatal(err)
		}
		if got := collect(t, ch); !slices.Equal(got, tc.want) {
			t.Errorf("tail %d:\n got %q\nwant %q", tc.tail, got, tc.want)
		}
	}
}

func TestReadKernelLogFollowFile(t *testing.T) {
	name := filepath.Join(t.TempDir(), "kmsg")
	if err := os.WriteFile(name, []byte("6,0,1,-;old one\n6,1,2,-;old two\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ch, err := sysinfo.ReadKernelLog(ctx, name, true, 1)
	if err != nil {
		t.Fatal(err)
	}
	expect := func(want string) {
		t.Helper()
		select {
		case got := <-ch:
			if got != want {
				t.Fatalf("got %q, want %q", got, want)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("timed out waiting for %q", want)
		}
	}
	expect("[    0.000002] old two")
	f, err := os.OpenFile(name, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteString("6,2,3000000,-;new "); err != nil { // half a line first
		t.Fatal(err)
	}
	// The reader reads the half line on its own (its offset reaches the end of the file)
	// before the rest is written, so the record comes in two reads.
	size, err := f.Seek(0, io.SeekEnd)
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the reader to read the half line", func() bool { return readerOffset(t, name) == size })
	if _, err := f.WriteString("one\n"); err != nil {
		t.Fatal(err)
	}
	expect("[    3.000000] new one")
	cancel()
	if rest := collect(t, ch); len(rest) != 0 {
		t.Fatalf("after cancel got %q", rest)
	}
}

func TestReadKernelLogUnreadable(t *testing.T) {
	_, err := sysinfo.ReadKernelLog(context.Background(), filepath.Join(t.TempDir(), "kmsg"), false, 0)
	if !errors.Is(err, sysinfo.ErrKernelLogUnreadable) || !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("err = %v, want ErrKernelLogUnreadable wrapping ErrNotExist", err)
	}
	if !strings.Contains(err.Error(), "kernel log is not readable") || !strings.Contains(err.Error(), "local mode") {
		t.Fatalf("error %q does not explain itself", err)
	}
	if _, err := sysinfo.ReadKernelLog(context.Background(), t.TempDir(), false, 0); !errors.Is(err, sysinfo.ErrKernelLogUnreadable) {
		t.Fatalf("directory: err = %v", err)
	}
}

// TestReadKernelLogDevice reads the real /dev/kmsg when the test may: the records already
// there must come out and the read must end (EAGAIN at the end of the buffer), and a
// follow must stop promptly on cancel though no record arrives.
func TestReadKernelLogDevice(t *testing.T) {
	const dev = "/dev/kmsg"
	probe, err := os.Open(dev)
	if err != nil {
		t.Skipf("cannot open %s: %v", dev, err)
	}
	probe.Close()

	ch, err := sysinfo.ReadKernelLog(context.Background(), dev, false, 5)
	if err != nil {
		t.Fatal(err)
	}
	got := collect(t, ch)
	if len(got) > 5 {
		t.Fatalf("tail 5 gave %d lines", len(got))
	}
	t.Logf("last %d records: %q", len(got), got)
	for _, s := range got {
		if !strings.HasPrefix(s, "[") || !strings.Contains(s, "] ") {
			t.Errorf("unformatted line %q", s)
		}
	}

	ctx, cancel := context.WithCancel(context.Background())
	ch, err = sysinfo.ReadKernelLog(ctx, dev, true, -1)
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	// Cancel only once the reader waits in its follow read, so that the cancel must wake it.
	waitFor(t, "the reader to wait for a new record", func() bool { return readerWaitsInPoller() })
	start := time.Now()
	cancel()
	collect(t, ch)
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("follow took %v to stop", d)
	}
}

// waitFor polls cond until it holds, failing after 10 s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

// readerOffset returns the file offset of the read-only descriptor this process holds on
// path, the kernel log reader's, as /proc/self/fdinfo shows it; -1 when there is none.
func readerOffset(t *testing.T, path string) int64 {
	t.Helper()
	path, err := filepath.EvalSymlinks(path)
	if err != nil {
		t.Fatal(err)
	}
	fds, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	for _, fd := range fds {
		if target, err := os.Readlink("/proc/self/fd/" + fd.Name()); err != nil || target != path {
			continue
		}
		info, err := os.ReadFile("/proc/self/fdinfo/" + fd.Name())
		if err != nil {
			continue // closed meanwhile
		}
		pos, flags := int64(-1), int64(-1)
		for l := range strings.Lines(string(info)) {
			k, v, _ := strings.Cut(l, ":")
			switch k {
			case "pos":
				pos, _ = strconv.ParseInt(strings.TrimSpace(v), 10, 64)
			case "flags":
				flags, _ = strconv.ParseInt(strings.TrimSpace(v), 8, 64)
			}
		}
		if flags >= 0 && flags&syscall.O_ACCMODE == syscall.O_RDONLY {
			return pos
		}
	}
	return -1
}

// readerWaitsInPoller reports whether a goroutine of the kernel log reader is parked in
// the runtime's network poller: its follow read of /dev/kmsg, waiting for a record.
func readerWaitsInPoller() bool {
	buf := make([]byte, 1<<20)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			buf = buf[:n]
			break
		}
		buf = make([]byte, 2*len(buf))
	}
	for g := range strings.SplitSeq(string(buf), "\n\n") {
		header, _, _ := strings.Cut(g, "\n")
		if strings.Contains(header, "[IO wait") && strings.Contains(g, "sysinfo.(*kmsgReader).run(") {
			return true
		}
	}
	return false
}
