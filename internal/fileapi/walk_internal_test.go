package fileapi

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"testing"
)

// TestWalkVanishedEntry: an entry removed between reading its directory and opening it
// is passed on with its error, and Copy leaves it out.
func TestWalkVanishedEntry(t *testing.T) {
	root := t.TempDir()
	for _, name := range []string{"a", "c"} {
		if err := os.WriteFile(filepath.Join(root, name), []byte(name), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	dir, err := os.Open(root)
	if err != nil {
		t.Fatal(err)
	}
	defer dir.Close()
	var got []Entry
	w := &walker{visit: func(n walkNode) error {
		got = append(got, entryOf("/x", n))
		return nil
	}}
	// "b" is in the listing but no longer in the directory.
	if err := w.children(context.Background(), dir, ".", []string{"a", "b", "c"}, 1); err != nil {
		t.Fatal(err)
	}
	if len(got) != 3 || got[1].Name != "b" || got[1].Err != "no such file or directory" || got[2].Name != "c" || got[2].Err != "" {
		t.Fatalf("got %+v", got)
	}
	// Copy leaves it out.
	c := &copier{ctx: context.Background()}
	if err := c.node("b", "/x/b", walkNode{err: &fs.PathError{Op: "open", Path: "b", Err: fs.ErrNotExist}}); !errors.Is(err, fs.SkipDir) {
		t.Fatalf("copy of a vanished entry: %v", err)
	}
}
