package kubeletbin

import (
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// fakeStore holds images as file trees: Mount fills the directory with the image's files
// (as a read-only mount would show them) and unmount empties it.
type fakeStore struct {
	images  map[string]map[string]string // image -> path -> content ("->target" for a link)
	digests map[string]string
	mounts  int
	mounted string
}

func (s *fakeStore) Digest(_ context.Context, image string) (string, error) {
	d, ok := s.digests[image]
	if !ok {
		return "", ErrNoImage
	}
	return d, nil
}

func (s *fakeStore) Mount(_ context.Context, image, dir string) (func(context.Context) error, error) {
	s.mounts++
	for p, content := range s.images[image] {
		full := filepath.Join(dir, p)
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			return nil, err
		}
		var err error
		if target, ok := strings.CutPrefix(content, "->"); ok {
			err = os.Symlink(target, full)
		} else {
			err = os.WriteFile(full, []byte(content), 0o755)
		}
		if err != nil {
			return nil, err
		}
	}
	s.mounted = dir
	return func(context.Context) error {
		entries, _ := os.ReadDir(dir)
		for _, e := range entries {
			os.RemoveAll(filepath.Join(dir, e.Name()))
		}
		s.mounted = ""
		return nil
	}, nil
}

func newFinder(t *testing.T) (Finder, *fakeStore) {
	t.Helper()
	store := &fakeStore{
		images: map[string]map[string]string{
			"plinth.local/kubelet:v1.36.3": {"usr/bin/kube": "kube v1.36.3", "usr/bin/kubelet": "->kube"},
			"other/kubelet:abs":            {"opt/k/kubelet-real": "abs", "usr/bin/kubelet": "->/opt/k/kubelet-real"},
			"escape/kubelet:1":             {"usr/bin/kubelet": "->../../../../etc/passwd"},
			"plinth.local/pause:3.10":      {"pause": "pause"},
		},
		digests: map[string]string{
			"plinth.local/kubelet:v1.36.3": "sha256:aaaa",
			"other/kubelet:abs":            "sha256:bbbb",
			"escape/kubelet:1":             "sha256:cccc",
			"plinth.local/pause:3.10":      "sha256:dddd",
		},
	}
	return Finder{Bundled: "plinth.local/kubelet:v1.37.2", Own: "/usr/bin/kubelet", Dir: t.TempDir(), Store: store}, store
}

func TestBundledImageIsTheNodesOwnKubelet(t *testing.T) {
	f, store := newFinder(t)
	for _, image := range []string{"", "plinth.local/kubelet:v1.37.2"} {
		got, err := f.Path(context.Background(), image, io.Discard)
		if err != nil || got != "/usr/bin/kubelet" {
			t.Fatalf("Path(%q) = %q, %v; want the node's own kubelet", image, got, err)
		}
	}
	if store.mounts != 0 {
		t.Fatalf("the bundled image was mounted %d times", store.mounts)
	}
}

func TestOtherImageIsCopiedOnceAndOldCopiesGo(t *testing.T) {
	f, store := newFinder(t)
	ctx := context.Background()
	got, err := f.Path(ctx, "plinth.local/kubelet:v1.36.3", io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if want := filepath.Join(f.Dir, "aaaa", "kubelet"); got != want {
		t.Fatalf("Path = %s, want %s", got, want)
	}
	data, err := os.ReadFile(got)
	if err != nil || string(data) != "kube v1.36.3" {
		t.Fatalf("the copy holds %q (%v), want the image's program", data, err)
	}
	if st, _ := os.Stat(got); st.Mode().Perm()&0o111 == 0 {
		t.Fatalf("the copy is not executable: %v", st.Mode())
	}
	if store.mounted != "" {
		t.Fatalf("%s is still mounted", store.mounted)
	}
	if _, err := f.Path(ctx, "plinth.local/kubelet:v1.36.3", io.Discard); err != nil || store.mounts != 1 {
		t.Fatalf("a second Path mounted the image again (%d mounts, %v)", store.mounts, err)
	}
	defer func() {
		// Back to the bundled image: no copy is kept.
		if _, err := f.Path(ctx, "plinth.local/kubelet:v1.37.2", io.Discard); err != nil {
			t.Fatal(err)
		}
		if entries, _ := os.ReadDir(f.Dir); len(entries) != 0 {
			t.Errorf("%d copies kept after moving to the bundled kubelet", len(entries))
		}
	}()
	// An absolute link is followed inside the image; the copy of v1.36.3 goes.
	got, err = f.Path(ctx, "other/kubelet:abs", io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if data, _ := os.ReadFile(got); string(data) != "abs" {
		t.Fatalf("the absolute link gave %q", data)
	}
	entries, _ := os.ReadDir(f.Dir)
	if len(entries) != 1 || entries[0].Name() != "bbbb" {
		var names []string
		for _, e := range entries {
			names = append(names, e.Name())
		}
		t.Fatalf("kept %v, want only the copy in use (bbbb)", names)
	}
}

func TestImagesWithoutAKubelet(t *testing.T) {
	f, _ := newFinder(t)
	ctx := context.Background()
	_, err := f.Path(ctx, "plinth.local/kubelet:v1.99.0", io.Discard)
	if !errors.Is(err, ErrNoImage) || !strings.Contains(err.Error(), "plinth.local/kubelet:v1.37.2") {
		t.Fatalf("a missing image: %v; want ErrNoImage naming the bundled image", err)
	}
	if _, err := f.Path(ctx, "plinth.local/pause:3.10", io.Discard); err == nil || !strings.Contains(err.Error(), "no kubelet program") {
		t.Fatalf("an image without kubelet: %v", err)
	}
	if _, err := f.Path(ctx, "escape/kubelet:1", io.Discard); err == nil {
		t.Fatal("a link out of the image was followed")
	}
	if entries, _ := os.ReadDir(f.Dir); len(entries) != 0 {
		t.Fatalf("failed copies left %d entries", len(entries))
	}
}

func TestParseImageList(t *testing.T) {
	out := []byte("REF                          TYPE                                                 DIGEST                                                                  SIZE     PLATFORMS   LABELS\n" +
		"plinth.local/kubelet:v1.36.3 application/vnd.docker.distribution.manifest.v2+json sha256:f2f8a92b8082110f329e0f63f01310b57c2f21c2c6a9d742fa02bbdef3785622 95.1 MiB linux/amd64 io.cri-containerd.image=managed\n")
	d, err := ParseImageList(out, "plinth.local/kubelet:v1.36.3")
	if err != nil || d != "sha256:f2f8a92b8082110f329e0f63f01310b57c2f21c2c6a9d742fa02bbdef3785622" {
		t.Fatalf("ParseImageList = %q, %v", d, err)
	}
	if _, err := ParseImageList(out[:strings.IndexByte(string(out), '\n')+1], "plinth.local/kubelet:v1.36.3"); !errors.Is(err, ErrNoImage) {
		t.Fatalf("a header alone: %v, want ErrNoImage", err)
	}
}
