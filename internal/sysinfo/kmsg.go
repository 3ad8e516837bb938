package sysinfo

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// ErrKernelLogUnreadable is returned (wrapped, with the cause) by ReadKernelLog when the
// kernel log device cannot be opened: typically because the caller is not root, as in
// local mode.
var ErrKernelLogUnreadable = errors.New("kernel log is not readable")

const (
	// kmsgBufSize is the read buffer. /dev/kmsg hands out one record per read(2) and
	// fails with EINVAL when the buffer is too small for it; records are at most 8 KiB.
	kmsgBufSize = 16 << 10
	// maxPending bounds a line without a newline (only possible with a regular file).
	maxPending = 64 << 10
	// followPollInterval is how often a regular file standing in for /dev/kmsg is polled
	// for growth when following; /dev/kmsg itself wakes the reader when a record arrives.
	followPollInterval = 200 * time.Millisecond
)

// ReadKernelLog streams the kernel log from path, normally /dev/kmsg, one formatted line
// per record: "[    12.345678] message", the time since boot padded as dmesg and the
// kernel console do. Dictionary lines (" KEY=value") that follow a record are dropped;
// escapes the kernel put in the message (\x0a and the like) are kept.
//
// tail chooses what is sent of the records already in the buffer: tail > 0 sends the
// last tail of them, tail == 0 all of them, tail < 0 none (with follow, only new
// records). When follow is set the channel then carries new records as the kernel logs
// them until ctx is cancelled; otherwise it is closed once the buffer has been read. The
// channel is also closed when reading fails. The caller must drain the channel or cancel
// ctx, or the reading goroutine stays blocked.
//
// A regular file may stand in for the device (for tests): it is read line by line and,
// with follow, polled for growth.
//
// When path cannot be opened the error wraps both ErrKernelLogUnreadable and the cause
// (for example fs.ErrPermission).
func ReadKernelLog(ctx context.Context, path string, follow bool, tail int) (<-chan string, error) {
	// O_NONBLOCK makes /dev/kmsg answer EAGAIN at the end of the buffer instead of
	// waiting, which is how the records already there are told from new ones.
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil, fmt.Errorf("%w (reading it needs root on the machine, so it is not available in local mode): %w",
			ErrKernelLogUnreadable, err)
	}
	if fi, err := f.Stat(); err != nil || fi.IsDir() {
		f.Close()
		if err == nil {
			err = fmt.Errorf("%s is a directory", path)
		}
		return nil, fmt.Errorf("%w: %w", ErrKernelLogUnreadable, err)
	}
	rc, err := f.SyscallConn()
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("%w: %w", ErrKernelLogUnreadable, err)
	}
	r := &kmsgReader{f: f, rc: rc, buf: make([]byte, kmsgBufSize)}
	out := make(chan string)
	go r.run(ctx, out, follow, tail)
	return out, nil
}

// errDrained reports that a non-blocking read found nothing more to read.
var errDrained = errors.New("drained")

// kmsgReader reads records from /dev/kmsg or from a regular file in the same format.
type kmsgReader struct {
	f       *os.File
	rc      syscall.RawConn
	buf     []byte
	pending []byte // the start of a line not yet ended by '\n'
}

// run is the reading goroutine behind ReadKernelLog.
func (r *kmsgReader) run(ctx context.Context, out chan<- string, follow bool, tail int) {
	defer close(out)
	// Closing the file is what wakes a follow read blocked in the poller.
	stop := context.AfterFunc(ctx, func() { r.f.Close() })
	defer func() {
		stop()
		r.f.Close()
	}()

	send := func(s string) bool {
		select {
		case out <- s:
			return true
		case <-ctx.Done():
			return false
		}
	}
	var ring []string // the last tail records when tail > 0
	next := 0
	keep := func(s string) bool {
		switch {
		case tail == 0:
			return send(s)
		case tail < 0:
			return true
		case len(ring) < tail:
			ring = append(ring, s)
		default:
			ring[next] = s
			next = (next + 1) % tail
		}
		return true
	}

	// What the buffer holds now.
	for {
		chunk, err := r.readNow()
		if errors.Is(err, errDrained) {
			break
		}
		if err != nil {
			return
		}
		for _, s := range r.records(chunk) {
			if !keep(s) {
				return
			}
		}
	}
	if !follow && len(r.pending) > 0 { // a last line without its newline
		line := string(r.pending)
		r.pending = nil
		if s, ok := recordLine(line); ok && !keep(s) {
			return
		}
	}
	for i := range ring {
		if !send(ring[(next+i)%len(ring)]) {
			return
		}
	}
	if !follow {
		return
	}

	// New records. On /dev/kmsg Read waits in the runtime poller until a record arrives
	// or the file is closed; a regular file answers io.EOF and is polled.
	for {
		n, err := r.f.Read(r.buf)
		for _, s := range r.records(r.buf[:n]) {
			if !send(s) {
				return
			}
		}
		switch {
		case err == nil:
		case errors.Is(err, io.EOF):
			t := time.NewTimer(followPollInterval)
			select {
			case <-ctx.Done():
				t.Stop()
				return
			case <-t.C:
			}
		case errors.Is(err, syscall.EPIPE):
			// Records were overwritten before we read them; the next read goes on
			// with the oldest one left.
		default:
			return // closed because ctx is done, or a real error
		}
	}
}

// readNow reads once without waiting. It returns errDrained at the end of what is there
// now: EAGAIN from /dev/kmsg, end of file from a regular file.
func (r *kmsgReader) readNow() ([]byte, error) {
	var n int
	var rerr error
	err := r.rc.Read(func(fd uintptr) bool {
		for {
			n, rerr = syscall.Read(int(fd), r.buf)
			if rerr != syscall.EINTR {
				return true // done, whatever happened: never wait in the poller here
			}
		}
	})
	switch {
	case err != nil:
		return nil, err
	case rerr == syscall.EAGAIN:
		return nil, errDrained
	case rerr == syscall.EPIPE:
		return nil, nil // overwritten records: go on with the oldest one left
	case rerr != nil:
		return nil, rerr
	case n == 0:
		return nil, errDrained
	}
	return r.buf[:n], nil
}

// records splits what was read into complete lines, keeps an unfinished last line for
// the next call, and formats the record lines.
func (r *kmsgReader) records(chunk []byte) []string {
	if len(chunk) == 0 {
		return nil
	}
	r.pending = append(r.pending, chunk...)
	var lines []string
	for {
		i := bytes.IndexByte(r.pending, '\n')
		if i < 0 {
			break
		}
		if s, ok := recordLine(string(r.pending[:i])); ok {
			lines = append(lines, s)
		}
		r.pending = r.pending[i+1:]
	}
	if len(r.pending) > maxPending {
		if s, ok := recordLine(string(r.pending)); ok {
			lines = append(lines, s)
		}
		r.pending = nil
	}
	if len(r.pending) == 0 {
		r.pending = nil // let the consumed bytes be collected
	}
	return lines
}

// recordLine formats one line of /dev/kmsg output. Empty lines and the dictionary lines
// that start with a space are dropped (ok is false); a line that is not a record is
// passed on unchanged.
func recordLine(line string) (string, bool) {
	line = strings.TrimSuffix(line, "\r")
	if line == "" || line[0] == ' ' {
		return "", false
	}
	if s, err := formatKmsgRecord(line); err == nil {
		return s, true
	}
	return line, true
}

// formatKmsgRecord turns "pri,seq,usec,flags[,more];message" into
// "[ssssss.uuuuuu] message".
func formatKmsgRecord(record string) (string, error) {
	prefix, msg, ok := strings.Cut(record, ";")
	if !ok {
		return "", errors.New("kmsg record: no ';'")
	}
	fields := strings.Split(prefix, ",")
	if len(fields) < 4 {
		return "", fmt.Errorf("kmsg record: %d prefix fields, want at least 4", len(fields))
	}
	if _, err := strconv.ParseUint(fields[0], 10, 32); err != nil {
		return "", fmt.Errorf("kmsg record: priority: %w", err)
	}
	if _, err := strconv.ParseUint(fields[1], 10, 64); err != nil {
		return "", fmt.Errorf("kmsg record: sequence: %w", err)
	}
	usec, err := strconv.ParseUint(fields[2], 10, 64)
	if err != nil {
		return "", fmt.Errorf("kmsg record: timestamp: %w", err)
	}
	return fmt.Sprintf("[%5d.%06d] %s", usec/1_000_000, usec%1_000_000, msg), nil
}
