package stage0

import (
	"bytes"
	"path/filepath"
	"testing"
)

func TestKmsgLevel(t *testing.T) {
	tests := []struct{ level, console, want int }{
		{levelInfo, 7, 7},    // default console_loglevel: info would be printed again
		{levelErr, 7, 7},     //
		{levelInfo, 4, 6},    // quiet: the kernel does not print info anyway
		{levelWarning, 4, 4}, // printed only if below 4
		{levelErr, 4, 4},
		{levelInfo, 8, 7}, // everything is printed: nothing lower than debug
		{levelErr, 1, 3},
	}
	for _, tt := range tests {
		if got := kmsgLevel(tt.level, tt.console); got != tt.want {
			t.Errorf("kmsgLevel(%d, %d) = %d, want %d", tt.level, tt.console, got, tt.want)
		}
	}
}

func TestReadConsoleLevel(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "printk")
	writeFile(t, path, "4\t4\t1\t7\n")
	if got := ReadConsoleLevel(path); got != 4 {
		t.Errorf("got %d, want 4", got)
	}
	writeFile(t, path, "garbage")
	if got := ReadConsoleLevel(path); got != 7 {
		t.Errorf("garbage: got %d, want 7", got)
	}
	if got := ReadConsoleLevel(filepath.Join(dir, "missing")); got != 7 {
		t.Errorf("missing: got %d, want 7", got)
	}
}

func TestLogLines(t *testing.T) {
	var console, kmsg bytes.Buffer
	l := NewLog(&console)
	l.Debugf("hidden")
	l.SetKmsg(&kmsg, 7)
	l.Errorf("cannot boot: one\n  two\n")
	l.SetDebug(true)
	l.Debugf("shown")
	if want := "plinth-init: cannot boot: one\nplinth-init:   two\nplinth-init: shown\n"; console.String() != want {
		t.Errorf("console %q, want %q", console.String(), want)
	}
	if want := "<7>plinth-init: cannot boot: one\n<7>plinth-init:   two\n<7>plinth-init: shown\n"; kmsg.String() != want {
		t.Errorf("kmsg %q, want %q", kmsg.String(), want)
	}
}
