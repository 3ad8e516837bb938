package textdiff

import (
	"strings"
	"testing"
)

func TestUnified(t *testing.T) {
	a := "a\nb\nc\nd\ne\nf\ng\nh\ni\nj\n"
	b := "a\nb\nc\nD\ne\nf\ng\nh\ni\nj\nk\n"
	got := Unified("old", "new", a, b, 2)
	want := `--- old
+++ new
@@ -2,5 +2,5 @@
 b
 c
-d
+D
 e
 f
@@ -9,2 +9,3 @@
 i
 j
+k
`
	if got != want {
		t.Errorf("Unified =\n%s\nwant\n%s", got, want)
	}
	if Unified("a", "b", a, a, 3) != "" {
		t.Error("equal texts must give an empty diff")
	}
	if d := Unified("a", "b", "", "x\n", 3); !strings.Contains(d, "@@ -1,0 +1,1 @@\n+x\n") {
		t.Errorf("diff from empty:\n%s", d)
	}
	if d := Unified("a", "b", "x\ny\n", "", 3); !strings.Contains(d, "-x\n-y\n") {
		t.Errorf("diff to empty:\n%s", d)
	}
}

// TestApplyingTheDiffGivesTheNewText checks the edit script on many small cases.
func TestApplyingTheDiffGivesTheNewText(t *testing.T) {
	texts := []string{"", "a", "a\nb", "b\na", "a\nb\nc", "a\nc", "c\nb\na", "a\na\na", "x\na\ny\nb"}
	for _, a := range texts {
		for _, b := range texts {
			var oldOut, newOut []string
			for _, o := range diff(splitLines(a), splitLines(b)) {
				if o.kind != '+' {
					oldOut = append(oldOut, o.line)
				}
				if o.kind != '-' {
					newOut = append(newOut, o.line)
				}
			}
			if strings.Join(oldOut, "\n") != a || strings.Join(newOut, "\n") != b {
				t.Errorf("diff(%q, %q) does not reproduce both texts", a, b)
			}
		}
	}
}
