// Package logstore keeps the output of machined's services: every service log is held in
// a bounded in-memory ring buffer for fast reads and follows, and appended to a file with
// size-based rotation so that the previous boot's logs can still be read after a reboot.
//
// Layout on disk, for a log named "etcd" in directory dir:
//
//	dir/etcd.log              current file of this boot
//	dir/etcd.log.1, .log.2    rotated files of this boot (.1 is the newest)
//	dir/etcd.previous.log     the previous boot's etcd.log (and .previous.log.N its rotations)
//
// Open moves the files of the boot before aside to the ".previous" names, replacing the
// ones from two boots ago, so that each log keeps at most one earlier boot.
//
// Writes never wait for readers. A follower (Follow) reads directly from the ring; if a
// follower falls so far behind that the lines it has not read yet were evicted from the
// ring, it receives one marker line "... N lines dropped ..." and continues with the oldest
// line still held. The file keeps everything (within its rotation bound) regardless.
//
// File writes are buffered: the complete lines of a Write are appended to a per-log buffer
// that is written to the file when it fills up, at most FlushInterval after the first
// buffered line, on Flush and on Close (which also syncs the file). A crash of machined
// therefore loses at most the last FlushInterval of file output; the memory ring is never
// behind.
package logstore

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Defaults used for zero fields of Options.
const (
	// DefaultRingBytes is the default size of each log's in-memory ring buffer.
	DefaultRingBytes = 1 << 20
	// DefaultFileBytes is the default size at which a log file is rotated.
	DefaultFileBytes = 8 << 20
	// DefaultFiles is the default number of rotated files kept per log.
	DefaultFiles = 2
	// DefaultFlushInterval is the default longest time a complete line stays in the
	// file buffer before it is written to the file.
	DefaultFlushInterval = 200 * time.Millisecond
)

// MaxLineBytes is the longest line kept: longer lines (or output without a newline) are
// split into pieces of this many bytes. It is lowered to the ring size when that is smaller,
// so that a single line always fits into the ring.
const MaxLineBytes = 64 << 10

// lineOverhead is what every line costs in the ring's byte budget on top of its text, so
// that a flood of empty lines is bounded as well.
const lineOverhead = 16

// fileBufBytes is the size of a log's file buffer before it is written out.
const fileBufBytes = 64 << 10

// ErrInvalidName is reported by ValidName and by (*Log).Err for a log whose name is not
// a valid log name.
var ErrInvalidName = errors.New("invalid log name")

var nameRE = regexp.MustCompile(`^[a-z0-9][a-z0-9._-]*$`)

// ValidName reports whether name may be used as a log name: it must match
// [a-z0-9][a-z0-9._-]*, be at most 200 bytes long and not end in ".previous" (which would
// clash with the names of the previous boot's files).
func ValidName(name string) error {
	if len(name) > 200 || !nameRE.MatchString(name) || strings.HasSuffix(name, ".previous") {
		return fmt.Errorf("%w %q: use lowercase letters, digits, '.', '_' and '-', starting with a letter or digit", ErrInvalidName, name)
	}
	return nil
}

// Options tunes a Store. Zero fields take the defaults.
type Options struct {
	// RingBytes bounds each log's in-memory ring buffer (default 1 MiB). Every line
	// counts its length plus 16 bytes of bookkeeping.
	RingBytes int
	// FileBytes is the size a log file may reach before it is rotated (default 8 MiB).
	FileBytes int64
	// Files is how many rotated files are kept per log (default 2); a negative value
	// keeps none, so that the file is restarted empty when it is full.
	Files int
	// FlushInterval is the longest time complete lines wait in the file buffer
	// (default 200 ms).
	FlushInterval time.Duration
}

func (o Options) withDefaults() Options {
	if o.RingBytes <= 0 {
		o.RingBytes = DefaultRingBytes
	}
	if o.FileBytes <= 0 {
		o.FileBytes = DefaultFileBytes
	}
	if o.Files == 0 {
		o.Files = DefaultFiles
	} else if o.Files < 0 {
		o.Files = 0
	}
	if o.FlushInterval <= 0 {
		o.FlushInterval = DefaultFlushInterval
	}
	return o
}

// Store holds the logs of one boot, kept in one directory.
type Store struct {
	dir  string
	opts Options

	mu     sync.Mutex
	logs   map[string]*Log
	closed bool
}

// Open opens the log directory dir, creating it if needed, and moves the logs of the
// previous boot aside to their ".previous" names. An empty dir gives a memory-only store
// that writes no files.
func Open(dir string, opts Options) (*Store, error) {
	s := &Store{dir: dir, opts: opts.withDefaults(), logs: make(map[string]*Log)}
	if dir == "" {
		return s, nil
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("create log directory: %w", err)
	}
	files, err := scanDir(dir)
	if err != nil {
		return nil, err
	}
	for name, set := range files {
		if len(set.current) == 0 {
			continue
		}
		for _, f := range set.previous {
			if err := os.Remove(filepath.Join(dir, f.file)); err != nil && !errors.Is(err, os.ErrNotExist) {
				return nil, fmt.Errorf("remove older log of %s: %w", name, err)
			}
		}
		for _, f := range set.current {
			to := fileName(name, true, f.index)
			if err := os.Rename(filepath.Join(dir, f.file), filepath.Join(dir, to)); err != nil {
				return nil, fmt.Errorf("keep previous boot's log of %s: %w", name, err)
			}
		}
	}
	return s, nil
}

// Dir returns the directory of the store ("" for a memory-only store).
func (s *Store) Dir() string { return s.dir }

// Log returns the log called name, creating it on first use. The file is created with the
// first line written. A name that fails ValidName gets a memory-only log whose Err reports
// why; such a log never touches the disk.
func (s *Store) Log(name string) *Log {
	s.mu.Lock()
	defer s.mu.Unlock()
	if l, ok := s.logs[name]; ok {
		return l
	}
	l := newLog(s, name)
	if err := ValidName(name); err != nil {
		l.err = err
		l.path = ""
	}
	if s.closed {
		l.closed = true
	}
	s.logs[name] = l
	return l
}

// Close flushes every log, including partial last lines, syncs and closes the files and
// ends all followers once they have received what was written. Logs stay readable, and
// lines written after Close are kept in memory only.
func (s *Store) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	logs := make([]*Log, 0, len(s.logs))
	for _, l := range s.logs {
		logs = append(logs, l)
	}
	s.mu.Unlock()
	var errs []error
	for _, l := range logs {
		if err := l.close(); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// Log is one service's log: an io.Writer safe for concurrent use that splits its input
// into lines. Concurrent writers should write whole lines; partial lines of different
// writers are joined in the order they arrive.
type Log struct {
	store   *Store
	name    string
	path    string // current file, "" when memory-only
	ringMax int
	lineMax int

	mu      sync.Mutex
	partial []byte
	// ring of lines: lines[(head+i)%len(lines)] holds sequence number first+i.
	lines     []string
	head      int
	count     int
	bytes     int
	first     uint64
	next      uint64
	followers map[*follower]struct{}
	closed    bool

	f     *os.File
	buf   []byte
	size  int64 // size of the current file including buf
	timer *time.Timer
	err   error
}

func newLog(s *Store, name string) *Log {
	l := &Log{
		store:     s,
		name:      name,
		ringMax:   s.opts.RingBytes,
		lineMax:   min(MaxLineBytes, s.opts.RingBytes-lineOverhead),
		followers: make(map[*follower]struct{}),
	}
	if l.lineMax < 1 {
		l.lineMax = 1
	}
	if s.dir != "" {
		l.path = filepath.Join(s.dir, fileName(name, false, 0))
	}
	return l
}

// Name returns the log's name.
func (l *Log) Name() string { return l.name }

// Write appends p to the log. Complete lines go to the ring and the file at once; a
// trailing partial line waits for its newline or for Flush. Write never fails: errors of
// the file are kept for Err and the memory ring keeps working.
func (l *Log) Write(p []byte) (int, error) {
	n := len(p)
	l.mu.Lock()
	defer l.mu.Unlock()
	before := l.next
	for len(p) > 0 {
		i := bytes.IndexByte(p, '\n')
		chunk := p
		if i >= 0 {
			chunk = p[:i]
		}
		if room := l.lineMax - len(l.partial); len(chunk) > room {
			// Too long for one line: cut it.
			l.partial = append(l.partial, chunk[:room]...)
			l.appendLine(string(l.partial))
			l.partial = l.partial[:0]
			p = p[room:]
			continue
		}
		if i < 0 {
			l.partial = append(l.partial, chunk...)
			break
		}
		if len(l.partial) > 0 {
			l.partial = append(l.partial, chunk...)
			l.appendLine(string(l.partial))
			l.partial = l.partial[:0]
		} else {
			l.appendLine(string(chunk))
		}
		p = p[i+1:]
	}
	if l.next != before {
		l.wakeFollowers()
	}
	return n, nil
}

// Flush ends a pending partial line as if a newline had been written and writes the file
// buffer to the file.
func (l *Log) Flush() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.partial) > 0 {
		l.appendLine(string(l.partial))
		l.partial = l.partial[:0]
		l.wakeFollowers()
	}
	l.flushFile()
	return l.err
}

// Err returns the last error of the log's file (or ErrInvalidName), nil when all is well.
func (l *Log) Err() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.err
}

// appendLine adds one line to the ring and the file buffer. l.mu is held.
func (l *Log) appendLine(line string) {
	// Ring.
	if l.count == len(l.lines) {
		grown := make([]string, max(16, 2*len(l.lines)))
		for i := 0; i < l.count; i++ {
			grown[i] = l.lines[(l.head+i)%len(l.lines)]
		}
		l.lines, l.head = grown, 0
	}
	l.lines[(l.head+l.count)%len(l.lines)] = line
	l.count++
	l.next++
	l.bytes += len(line) + lineOverhead
	for l.bytes > l.ringMax && l.count > 1 {
		old := l.lines[l.head]
		l.lines[l.head] = ""
		l.head = (l.head + 1) % len(l.lines)
		l.count--
		l.first++
		l.bytes -= len(old) + lineOverhead
	}

	// File.
	if l.path == "" || l.closed {
		return
	}
	need := int64(len(line) + 1)
	if l.size > 0 && l.size+need > l.store.opts.FileBytes {
		l.rotate()
	}
	l.buf = append(l.buf, line...)
	l.buf = append(l.buf, '\n')
	l.size += need
	if len(l.buf) >= fileBufBytes {
		l.flushFile()
	} else if l.timer == nil {
		l.timer = time.AfterFunc(l.store.opts.FlushInterval, l.timerFlush)
	}
}

func (l *Log) timerFlush() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.timer = nil
	l.flushFile()
}

// flushFile writes the file buffer. l.mu is held.
func (l *Log) flushFile() {
	if l.timer != nil {
		l.timer.Stop()
		l.timer = nil
	}
	if len(l.buf) == 0 || l.path == "" {
		return
	}
	buf := l.buf
	l.buf = l.buf[:0]
	if l.f == nil {
		f, err := os.OpenFile(l.path, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o640)
		if err != nil {
			l.err = fmt.Errorf("open log file: %w", err)
			return
		}
		l.f = f
	}
	if _, err := l.f.Write(buf); err != nil {
		// Drop this buffer; the next flush tries again with a fresh file.
		l.err = fmt.Errorf("write log file: %w", err)
		_ = l.f.Close()
		l.f = nil
	}
}

// rotate moves the current file to .1 (and .1 to .2 ...) and starts an empty one. l.mu
// is held.
func (l *Log) rotate() {
	l.flushFile()
	if l.f != nil {
		if err := l.f.Close(); err != nil {
			l.err = fmt.Errorf("close log file: %w", err)
		}
		l.f = nil
	}
	keep := l.store.opts.Files
	var err error
	if keep == 0 {
		err = os.Remove(l.path)
	} else {
		for i := keep - 1; i >= 1; i-- {
			from := l.path + "." + strconv.Itoa(i)
			if e := os.Rename(from, l.path+"."+strconv.Itoa(i+1)); e != nil && !errors.Is(e, os.ErrNotExist) {
				err = e
			}
		}
		if e := os.Rename(l.path, l.path+".1"); e != nil {
			err = e
		}
	}
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		l.err = fmt.Errorf("rotate log file: %w", err)
	}
	l.size = 0
}

func (l *Log) close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.partial) > 0 {
		l.appendLine(string(l.partial))
		l.partial = l.partial[:0]
	}
	l.flushFile()
	var err error
	if l.f != nil {
		if e := l.f.Sync(); e != nil {
			err = fmt.Errorf("sync log %s: %w", l.name, e)
		}
		if e := l.f.Close(); e != nil && err == nil {
			err = fmt.Errorf("close log %s: %w", l.name, e)
		}
		l.f = nil
	}
	l.closed = true
	l.wakeFollowers()
	return err
}

// Tail returns the last n lines held in memory, oldest first; n < 0 returns all of them.
func (l *Log) Tail(n int) []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	if n < 0 || n > l.count {
		n = l.count
	}
	out := make([]string, n)
	for i := range n {
		out[i] = l.lines[(l.head+l.count-n+i)%len(l.lines)]
	}
	return out
}

// Files returns the paths of the log's files on disk, this boot's and the previous boot's,
// sorted by name; it is meant for diagnostics.
func (l *Log) Files() []string {
	if l.path == "" {
		return nil
	}
	set, err := scanDir(l.store.dir)
	if err != nil {
		return nil
	}
	var out []string
	for _, f := range append(set[l.name].current, set[l.name].previous...) {
		out = append(out, filepath.Join(l.store.dir, f.file))
	}
	sort.Strings(out)
	return out
}

// Sizes returns the bytes on disk of each log of the store, this boot's files and the
// previous boot's; a memory-only store has none.
func (s *Store) Sizes() map[string]int64 {
	out := map[string]int64{}
	if s.dir == "" {
		return out
	}
	set, err := scanDir(s.dir)
	if err != nil {
		return out
	}
	for name, files := range set {
		for _, f := range append(files.current, files.previous...) {
			if st, err := os.Stat(filepath.Join(s.dir, f.file)); err == nil {
				out[name] += st.Size()
			}
		}
	}
	return out
}

// Previous opens the previous boot's log: its rotated files, oldest first, followed by
// its last file, read as one stream. It returns an error matching os.ErrNotExist when the
// previous boot left no log of this name.
func (l *Log) Previous() (io.ReadCloser, error) {
	if l.path == "" {
		return nil, fmt.Errorf("previous log of %s: %w", l.name, os.ErrNotExist)
	}
	set, err := scanDir(l.store.dir)
	if err != nil {
		return nil, err
	}
	prev := set[l.name].previous
	if len(prev) == 0 {
		return nil, fmt.Errorf("previous log of %s: %w", l.name, os.ErrNotExist)
	}
	// Highest rotation index is the oldest; index 0 (the plain file) is the newest.
	sort.Slice(prev, func(i, j int) bool { return prev[i].index > prev[j].index })
	m := &multiFile{}
	for _, f := range prev {
		fh, err := os.Open(filepath.Join(l.store.dir, f.file))
		if err != nil {
			m.Close()
			return nil, fmt.Errorf("previous log of %s: %w", l.name, err)
		}
		m.files = append(m.files, fh)
	}
	readers := make([]io.Reader, len(m.files))
	for i, f := range m.files {
		readers[i] = f
	}
	m.r = io.MultiReader(readers...)
	return m, nil
}

type multiFile struct {
	r     io.Reader
	files []*os.File
}

func (m *multiFile) Read(p []byte) (int, error) { return m.r.Read(p) }

func (m *multiFile) Close() error {
	var errs []error
	for _, f := range m.files {
		errs = append(errs, f.Close())
	}
	return errors.Join(errs...)
}

// fileName returns the file name of a log: name.log, name.log.N, name.previous.log,
// name.previous.log.N.
func fileName(name string, previous bool, index int) string {
	if previous {
		name += ".previous"
	}
	name += ".log"
	if index > 0 {
		name += "." + strconv.Itoa(index)
	}
	return name
}

type logFile struct {
	file  string
	index int
}

type fileSet struct {
	current, previous []logFile
}

var rotatedRE = regexp.MustCompile(`^(.+)\.log\.([1-9][0-9]*)$`)

// scanDir groups the log files of dir by log name.
func scanDir(dir string) (map[string]fileSet, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("read log directory: %w", err)
	}
	sets := make(map[string]fileSet)
	for _, e := range entries {
		if !e.Type().IsRegular() {
			continue
		}
		file := e.Name()
		var base string
		index := 0
		if m := rotatedRE.FindStringSubmatch(file); m != nil {
			n, err := strconv.Atoi(m[2])
			if err != nil {
				continue
			}
			base, index = m[1], n
		} else if strings.HasSuffix(file, ".log") {
			base = strings.TrimSuffix(file, ".log")
		} else {
			continue
		}
		previous := false
		if strings.HasSuffix(base, ".previous") {
			base = strings.TrimSuffix(base, ".previous")
			previous = true
		}
		if ValidName(base) != nil {
			continue
		}
		set := sets[base]
		if previous {
			set.previous = append(set.previous, logFile{file, index})
		} else {
			set.current = append(set.current, logFile{file, index})
		}
		sets[base] = set
	}
	return sets, nil
}
