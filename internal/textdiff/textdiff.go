// Package textdiff renders line differences between two texts in unified diff format, for
// showing what an apply-config would change. It is meant for configuration-sized inputs
// (a few thousand lines): it uses the classic longest-common-subsequence table.
package textdiff

import (
	"fmt"
	"strings"
)

// maxCells bounds the LCS table; larger inputs get a whole-file replacement diff.
const maxCells = 25_000_000

type op struct {
	kind byte // ' ', '-', '+'
	line string
}

// Unified returns the unified diff of a and b with context lines of context, labelled
// with the names oldName and newName, or "" when the texts are equal.
func Unified(oldName, newName, a, b string, context int) string {
	if a == b {
		return ""
	}
	x, y := splitLines(a), splitLines(b)
	ops := diff(x, y)
	var out strings.Builder
	fmt.Fprintf(&out, "--- %s\n+++ %s\n", oldName, newName)
	// Group changes into hunks with context.
	for i := 0; i < len(ops); {
		if ops[i].kind == ' ' {
			i++
			continue
		}
		start := max(0, i-context)
		end := i
		for end < len(ops) {
			if ops[end].kind != ' ' {
				end++
				continue
			}
			// A run of unchanged lines longer than 2*context ends the hunk.
			run := end
			for run < len(ops) && ops[run].kind == ' ' {
				run++
			}
			if run == len(ops) || run-end > 2*context {
				end = min(end+context, len(ops))
				break
			}
			end = run
		}
		oldStart, newStart := lineNumbers(ops, start)
		oldCount, newCount := 0, 0
		for _, o := range ops[start:end] {
			if o.kind != '+' {
				oldCount++
			}
			if o.kind != '-' {
				newCount++
			}
		}
		fmt.Fprintf(&out, "@@ -%d,%d +%d,%d @@\n", oldStart, oldCount, newStart, newCount)
		for _, o := range ops[start:end] {
			out.WriteByte(o.kind)
			out.WriteString(o.line)
			out.WriteByte('\n')
		}
		i = end
	}
	return out.String()
}

// lineNumbers returns the 1-based old and new line numbers at ops[idx].
func lineNumbers(ops []op, idx int) (int, int) {
	o, n := 1, 1
	for _, x := range ops[:idx] {
		if x.kind != '+' {
			o++
		}
		if x.kind != '-' {
			n++
		}
	}
	return o, n
}

func splitLines(s string) []string {
	s = strings.TrimSuffix(s, "\n")
	if s == "" {
		return nil
	}
	return strings.Split(s, "\n")
}

// diff returns the edit script from x to y.
func diff(x, y []string) []op {
	if len(x)*len(y) > maxCells {
		ops := make([]op, 0, len(x)+len(y))
		for _, l := range x {
			ops = append(ops, op{'-', l})
		}
		for _, l := range y {
			ops = append(ops, op{'+', l})
		}
		return ops
	}
	// lcs[i][j] is the LCS length of x[i:] and y[j:].
	lcs := make([][]int32, len(x)+1)
	for i := range lcs {
		lcs[i] = make([]int32, len(y)+1)
	}
	for i := len(x) - 1; i >= 0; i-- {
		for j := len(y) - 1; j >= 0; j-- {
			if x[i] == y[j] {
				lcs[i][j] = lcs[i+1][j+1] + 1
			} else {
				lcs[i][j] = max(lcs[i+1][j], lcs[i][j+1])
			}
		}
	}
	var ops []op
	i, j := 0, 0
	for i < len(x) && j < len(y) {
		switch {
		case x[i] == y[j]:
			ops = append(ops, op{' ', x[i]})
			i++
			j++
		case lcs[i+1][j] >= lcs[i][j+1]:
			ops = append(ops, op{'-', x[i]})
			i++
		default:
			ops = append(ops, op{'+', y[j]})
			j++
		}
	}
	for ; i < len(x); i++ {
		ops = append(ops, op{'-', x[i]})
	}
	for ; j < len(y); j++ {
		ops = append(ops, op{'+', y[j]})
	}
	return ops
}
