package stage0

import (
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"sync"
)

// Prefix starts every line stage 0 writes.
const Prefix = "plinth-init: "

// Kernel log levels (syslog priorities) used for /dev/kmsg records.
const (
	levelErr     = 3
	levelWarning = 4
	levelInfo    = 6
	levelDebug   = 7
)

// Log writes each message to the console and, as one record per line, to the kernel log.
// The record's level is raised to the console log level when needed so that the kernel does
// not print the line a second time on the console (the severity stays in the text).
type Log struct {
	mu      sync.Mutex
	console io.Writer
	kmsg    io.Writer
	// consoleLevel is the kernel's console_loglevel: records below it reach the console.
	consoleLevel int
	debug        bool
}

// NewLog returns a Log that writes to console only, until SetKmsg is called.
func NewLog(console io.Writer) *Log {
	return &Log{console: console, consoleLevel: levelDebug}
}

// SetConsole replaces the console writer.
func (l *Log) SetConsole(w io.Writer) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.console = w
}

// SetKmsg starts writing records to w (normally /dev/kmsg). consoleLevel is the kernel's
// console_loglevel (the first field of /proc/sys/kernel/printk).
func (l *Log) SetKmsg(w io.Writer, consoleLevel int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.kmsg = w
	l.consoleLevel = consoleLevel
}

// SetDebug turns Debugf on or off.
func (l *Log) SetDebug(on bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.debug = on
}

// Infof logs a step.
func (l *Log) Infof(format string, args ...any) { l.write(levelInfo, "", format, args...) }

// Debugf logs a detail, only with plinth.debug.
func (l *Log) Debugf(format string, args ...any) {
	l.mu.Lock()
	on := l.debug
	l.mu.Unlock()
	if on {
		l.write(levelDebug, "", format, args...)
	}
}

// Warnf logs a problem that does not stop the boot.
func (l *Log) Warnf(format string, args ...any) {
	l.write(levelWarning, "warning: ", format, args...)
}

// Errorf logs a problem that stops the boot.
func (l *Log) Errorf(format string, args ...any) { l.write(levelErr, "", format, args...) }

func (l *Log) write(level int, tag, format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, line := range strings.Split(strings.TrimRight(msg, "\n"), "\n") {
		text := Prefix + tag + line + "\n"
		if l.console != nil {
			_, _ = io.WriteString(l.console, text)
		}
		if l.kmsg != nil {
			// One write is one record; a lost record (kmsg rate limit) is not worth
			// more than the console line already written.
			_, _ = io.WriteString(l.kmsg, "<"+strconv.Itoa(kmsgLevel(level, l.consoleLevel))+">"+text)
		}
	}
}

// kmsgLevel is the level to write a record at so that the kernel does not echo it to the
// console (it echoes records whose level is below console_loglevel); debug is the lowest
// there is, so with console_loglevel 8 a line appears twice.
func kmsgLevel(level, consoleLevel int) int {
	return min(max(level, consoleLevel), levelDebug)
}

// ReadConsoleLevel reads console_loglevel from a printk file (/proc/sys/kernel/printk);
// when it cannot, it assumes the usual default, 7.
func ReadConsoleLevel(path string) int {
	data, err := os.ReadFile(path)
	if err != nil {
		return levelDebug
	}
	fields := strings.Fields(string(data))
	if len(fields) == 0 {
		return levelDebug
	}
	n, err := strconv.Atoi(fields[0])
	if err != nil {
		return levelDebug
	}
	return n
}
