package imagebuild

import (
	"bytes"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"

	"github.com/plinthos/plinth/internal/k8s/bundle"
	"github.com/plinthos/plinth/internal/k8s/paths"
)

// testBundle saves a bundle of three images into dir: a and b share a layer, and kubelet
// has a layer of its own.
func testBundle(t *testing.T, dir string) (path string, kubelet v1.Image) {
	t.Helper()
	image := func(name, content string) v1.Image {
		r, err := NewRootfs(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		if err := r.WriteFile("/usr/bin/"+name, bytes.Repeat([]byte(content), 1000), 0o755); err != nil {
			t.Fatal(err)
		}
		img, err := Image(ImageSpec{Rootfs: r.Dir, Entrypoint: []string{"/usr/bin/" + name}, Zstd: true})
		if err != nil {
			t.Fatal(err)
		}
		return img
	}
	shared := image("shared", "control plane ")
	kubelet = image("kubelet", "kubelet ")
	path = filepath.Join(dir, "bundle.tar")
	_, err := SaveOCI(path, map[string]v1.Image{
		Repository + "/kube-apiserver:v1.37.2": shared,
		Repository + "/etcd:v3.7.3":            shared,
		Repository + "/kubelet:v1.37.2":        kubelet,
	})
	if err != nil {
		t.Fatal(err)
	}
	return path, kubelet
}

func TestFilterOCIArchiveLeavesOutAnImageAndItsBlobs(t *testing.T) {
	dir := t.TempDir()
	src, kubelet := testBundle(t, dir)
	out := filepath.Join(dir, "node.tar")
	dropped, err := FilterOCIArchive(src, out, kubeletImage)
	if err != nil {
		t.Fatal(err)
	}
	digest, _ := kubelet.Digest()
	if len(dropped) != 1 || dropped[0].Name != Repository+"/kubelet:v1.37.2" || dropped[0].Digest != digest.String() {
		t.Fatalf("dropped %+v, want the kubelet image %s", dropped, digest)
	}

	// The same input gives the same bytes.
	again := filepath.Join(dir, "again.tar")
	if _, err := FilterOCIArchive(src, again, kubeletImage); err != nil {
		t.Fatal(err)
	}
	a, _ := os.ReadFile(out)
	b, _ := os.ReadFile(again)
	if !bytes.Equal(a, b) {
		t.Error("two filters of the same archive differ")
	}

	b2, err := bundle.Identify([]string{out})
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{Repository + "/etcd:v3.7.3", Repository + "/kube-apiserver:v1.37.2"}; !slices.Equal(b2.Tags, want) {
		t.Errorf("images %v, want %v", b2.Tags, want)
	}
	// The kubelet image's manifest, config and layer are gone; the other image reads back
	// whole.
	lay := filepath.Join(dir, "layout")
	untar(t, out, lay)
	blobs, err := os.ReadDir(filepath.Join(lay, "blobs", "sha256"))
	if err != nil {
		t.Fatal(err)
	}
	if len(blobs) != 3 {
		t.Errorf("%d blobs, want the other image's manifest, config and layer", len(blobs))
	}
	if _, err := os.Stat(filepath.Join(lay, "blobs", "sha256", digest.Hex)); err == nil {
		t.Errorf("the kubelet image's manifest %s is still there", digest)
	}
	idx, err := layout.ImageIndexFromPath(lay)
	if err != nil {
		t.Fatal(err)
	}
	m, err := idx.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range m.Manifests {
		img, err := idx.Image(d.Digest)
		if err != nil {
			t.Fatal(err)
		}
		layers, err := img.Layers()
		if err != nil || len(layers) != 1 {
			t.Fatalf("%s: layers %v %v", d.Annotations[bundle.AnnotationImageName], layers, err)
		}
		rc, err := layers[0].Uncompressed()
		if err != nil {
			t.Fatal(err)
		}
		rc.Close()
	}
}

func TestWriteNodeBundle(t *testing.T) {
	dir := t.TempDir()
	src, kubelet := testBundle(t, dir)
	r, err := NewRootfs(filepath.Join(dir, "root"))
	if err != nil {
		t.Fatal(err)
	}
	if err := writeNodeBundle(r, src, paths.ImageBundleDir+"/bundle.tar", paths.BuiltinImagesFile, "/usr/bin/kubelet"); err != nil {
		t.Fatal(err)
	}
	list, err := bundle.ReadBuiltin(r.host(paths.BuiltinImagesFile))
	if err != nil {
		t.Fatal(err)
	}
	digest, _ := kubelet.Digest()
	if len(list) != 1 || list[0] != (bundle.Builtin{Name: Repository + "/kubelet:v1.37.2", Digest: digest.String(), Program: "/usr/bin/kubelet"}) {
		t.Errorf("built-in images %+v", list)
	}
	st, err := os.Stat(r.host(paths.ImageBundleDir + "/bundle.tar"))
	if err != nil || st.Mode().Perm() != 0o644 {
		t.Errorf("node bundle: %v %v", st, err)
	}

	// A bundle without a kubelet image is refused: the node would have no image to name.
	noKubelet := filepath.Join(dir, "no-kubelet.tar")
	if _, err := FilterOCIArchive(src, noKubelet, kubeletImage); err != nil {
		t.Fatal(err)
	}
	err = writeNodeBundle(r, noKubelet, paths.ImageBundleDir+"/bundle.tar", paths.BuiltinImagesFile, "/usr/bin/kubelet")
	if err == nil || !strings.Contains(err.Error(), "0 kubelet images") {
		t.Errorf("a bundle without kubelet: %v", err)
	}
}
