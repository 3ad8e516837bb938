package qemu

import (
	"regexp"
	"strings"
)

// escapes are the terminal control sequences the firmware writes to the serial console
// (clear screen, cursor and line-wrap settings): noise in a log.
var escapes = regexp.MustCompile(`\x1b(\[[0-9;?]*[ -/]*[@-~]|[()][0-9A-Za-z]|[=>c])`)

// cleanConsole makes a serial console's text readable as lines: line ends without
// carriage returns, no terminal control sequences.
func cleanConsole(s string) string {
	s = escapes.ReplaceAllString(s, "")
	s = strings.ReplaceAll(s, "\r\n", "\n")
	return strings.ReplaceAll(s, "\r", "\n")
}

// lastLines returns the last n lines of the console log at path, cleaned; "" when it
// cannot be read.
func lastLines(path string, n int) string {
	text := strings.TrimRight(cleanConsole(readFile(path)), "\n")
	if text == "" || n <= 0 {
		return ""
	}
	lines := strings.Split(text, "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n") + "\n"
}
