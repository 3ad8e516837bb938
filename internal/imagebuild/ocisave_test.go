package imagebuild

import (
	"archive/tar"
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/plinthos/plinth/internal/k8s/bundle"
)

// untar unpacks the archive at path into dir.
func untar(t *testing.T, path, dir string) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	tr := tar.NewReader(f)
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return
		}
		if err != nil {
			t.Fatal(err)
		}
		p := filepath.Join(dir, hdr.Name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		data, err := io.ReadAll(tr)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// A bundle's images are zstd OCI images in an OCI image layout archive: the same bytes at
// every save, each tag an index entry named for containerd, every blob once, and the
// layout readable back into the same images.
func TestSaveOCIWritesZstdImagesReproducibly(t *testing.T) {
	dir := t.TempDir()
	r, err := NewRootfs(filepath.Join(dir, "root"))
	if err != nil {
		t.Fatal(err)
	}
	if err := r.WriteFile("/x", bytes.Repeat([]byte("plinth "), 10000), 0o644); err != nil {
		t.Fatal(err)
	}
	one, err := Image(ImageSpec{Rootfs: r.Dir, Entrypoint: []string{"/x"}, Zstd: true})
	if err != nil {
		t.Fatal(err)
	}
	two, err := Image(ImageSpec{Rootfs: r.Dir, Entrypoint: []string{"/y"}, Zstd: true})
	if err != nil {
		t.Fatal(err)
	}
	images := map[string]v1.Image{"plinth.local/a:1": one, "plinth.local/b:1": one, "plinth.local/z:2": two}
	var first []byte
	for i := range 3 {
		p := filepath.Join(dir, "bundle"+string(rune('0'+i))+".tar")
		saved, err := SaveOCI(p, images)
		if err != nil {
			t.Fatal(err)
		}
		if len(saved) != 2 || strings.Join(saved[0].Tags, ",") != "plinth.local/a:1,plinth.local/b:1" {
			t.Fatalf("saved %+v", saved)
		}
		data, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		if first == nil {
			first = data
		} else if !bytes.Equal(data, first) {
			t.Fatal("two saves of the same images differ")
		}
	}

	out := filepath.Join(dir, "layout")
	untar(t, filepath.Join(dir, "bundle0.tar"), out)
	blobs, err := os.ReadDir(filepath.Join(out, "blobs", "sha256"))
	if err != nil {
		t.Fatal(err)
	}
	// One shared layer, two configs, two manifests.
	if len(blobs) != 5 {
		t.Fatalf("%d blobs, want 5", len(blobs))
	}
	idx, err := layout.ImageIndexFromPath(out)
	if err != nil {
		t.Fatal(err)
	}
	m, err := idx.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, d := range m.Manifests {
		names = append(names, d.Annotations[bundle.AnnotationImageName])
		img, err := idx.Image(d.Digest)
		if err != nil {
			t.Fatal(err)
		}
		want := one
		if d.Annotations[bundle.AnnotationImageName] == "plinth.local/z:2" {
			want = two
		}
		wantDigest, err := want.Digest()
		if err != nil {
			t.Fatal(err)
		}
		if got, _ := img.Digest(); got != wantDigest {
			t.Fatalf("%s: read back %s", d.Annotations[bundle.AnnotationImageName], got)
		}
		layers, err := img.Layers()
		if err != nil || len(layers) != 1 {
			t.Fatalf("layers %v %v", layers, err)
		}
		if mt, _ := layers[0].MediaType(); mt != types.OCILayerZStd {
			t.Fatalf("layer media type %s", mt)
		}
		rc, err := layers[0].Uncompressed()
		if err != nil {
			t.Fatal(err)
		}
		n, err := io.Copy(io.Discard, rc)
		rc.Close()
		if err != nil || n < 70000 {
			t.Fatalf("the layer unpacks to %d bytes: %v", n, err)
		}
	}
	if strings.Join(names, ",") != "plinth.local/a:1,plinth.local/b:1,plinth.local/z:2" {
		t.Fatalf("index names %v", names)
	}
	// A docker-save archive has no media types: an OCI image is refused there.
	if _, err := Save(filepath.Join(dir, "docker.tar"), images); err == nil || !strings.Contains(err.Error(), "SaveOCI") {
		t.Fatalf("Save of zstd images: %v", err)
	}
}
