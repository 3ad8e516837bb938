package fileapi

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"testing"
)

// ghost is a directory entry whose file is gone, as when a file is removed between
// reading its directory and looking at it.
type ghost string

func (g ghost) Name() string               { return string(g) }
func (g ghost) IsDir() bool                { return false }
func (g ghost) Type() fs.FileMode          { return 0 }
func (g ghost) Info() (fs.FileInfo, error) { return nil, fs.ErrNotExist }

func TestWalkVanishedEntry(t *testing.T) {
	root := t.TempDir()
	for _, name := range []string{"a", "c"} {
		if err := os.WriteFile(filepath.Join(root, name), []byte(name), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	kids, err := os.ReadDir(root)
	if err != nil {
		t.Fatal(err)
	}
	kids = slices.Insert(kids, 1, fs.DirEntry(ghost("b")))
	var got []Entry
	w := &walker{r: &resolver{root: root}, visit: func(n walkNode) error {
		got = append(got, entryOf("/x", n))
		return nil
	}}
	info, _ := os.Lstat(root)
	if err := w.children(context.Background(), walkNode{rel: ".", resolved: "/", host: root, info: info}, kids, 1); err != nil {
		t.Fatal(err)
	}
	if len(got) != 3 || got[1].Name != "b" || got[1].Err != "no such file or directory" || got[2].Name != "c" || got[2].Err != "" {
		t.Fatalf("got %+v", got)
	}
	// Copy leaves it out.
	c := &copier{ctx: context.Background()}
	if err := c.node("b", "/x/b", walkNode{err: &fs.PathError{Op: "lstat", Path: "/h", Err: fs.ErrNotExist}}); !errors.Is(err, fs.SkipDir) {
		t.Fatalf("copy of a vanished entry: %v", err)
	}
}
