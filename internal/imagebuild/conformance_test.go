package imagebuild

import (
	"archive/tar"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"
)

// TestConformanceImages builds the conformance images from stand-in test programs and
// checks what the tests rely on: every name e2e.test asks for, a shell, setuid nnp, a /tmp
// anyone may write to, etcd under the path the aggregator test runs.
func TestConformanceImages(t *testing.T) {
	if _, err := os.Stat(busybox); err != nil {
		t.Skipf("%s is missing: install busybox-static (hack/setup.sh)", busybox)
	}
	dir := t.TempDir()
	src := ConformanceSources{Bin: filepath.Join(dir, "bin"), Payload: filepath.Join(dir, "payload"), Kubernetes: filepath.Join(dir, "k8s")}
	for _, f := range []string{
		"bin/agnhost", "bin/nnp", "bin/sample-apiserver", "payload/kube", "payload/pause",
		"k8s/test/images/agnhost/porter/localhost.crt", "k8s/test/images/agnhost/porter/localhost.key",
		"k8s/test/images/kitten/html/kitten.jpg", "k8s/test/images/kitten/html/data.json",
		"k8s/test/images/nautilus/html/nautilus.jpg", "k8s/test/images/nautilus/html/data.json",
	} {
		p := filepath.Join(dir, f)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		perm := os.FileMode(0o644)
		if filepath.Base(filepath.Dir(p)) == "bin" || filepath.Base(filepath.Dir(p)) == "payload" {
			perm = 0o755
		}
		if err := os.WriteFile(p, []byte(f), perm); err != nil {
			t.Fatal(err)
		}
	}
	images, err := ConformanceImages(context.Background(), src, filepath.Join(dir, "work"))
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{
		"agnhost:2.66.1", "agnhost:2.55", "busybox:1.37.0-2", "nginx:1.27.0-2", "nonewprivs:1.4", "glibc-dns-testing:2.1.1",
		"kitten:1.8", "nautilus:1.8", "sample-apiserver:1.29.2",
	} {
		if images[ConformanceRegistry+"/"+name] == nil {
			t.Errorf("no image %s/%s", ConformanceRegistry, name)
		}
	}
	for _, name := range []string{"etcd:3.7.0-0", "pause:3.10.2"} {
		if images[Repository+"/"+name] == nil {
			t.Errorf("no image %s/%s", Repository, name)
		}
	}
	check := func(image string, want map[string]func(*tar.Header) error) {
		t.Helper()
		img := images[image]
		if img == nil {
			return
		}
		layers, err := img.Layers()
		if err != nil || len(layers) != 1 {
			t.Fatalf("%s: layers %v %v", image, len(layers), err)
		}
		rc, err := layers[0].Uncompressed()
		if err != nil {
			t.Fatal(err)
		}
		defer rc.Close()
		tr := tar.NewReader(rc)
		seen := map[string]bool{}
		for {
			h, err := tr.Next()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
			if f := want[h.Name]; f != nil {
				seen[h.Name] = true
				if err := f(h); err != nil {
					t.Errorf("%s: %s: %v", image, h.Name, err)
				}
			}
		}
		for name := range want {
			if !seen[name] {
				t.Errorf("%s has no %s", image, name)
			}
		}
	}
	link := func(target string) func(*tar.Header) error {
		return func(h *tar.Header) error {
			if h.Typeflag != tar.TypeSymlink || h.Linkname != target {
				return errors.New("not a link to " + target + ": " + h.Linkname)
			}
			return nil
		}
	}
	mode := func(m int64) func(*tar.Header) error {
		return func(h *tar.Header) error {
			if h.Mode&0o7777 != m {
				return errors.New("wrong mode " + os.FileMode(h.Mode).String())
			}
			return nil
		}
	}
	bb, err := os.Stat(busybox)
	if err != nil {
		t.Fatal(err)
	}
	isBusybox := func(h *tar.Header) error {
		if h.Size != bb.Size() {
			return errors.New("not busybox: another program was written through a link to it")
		}
		return nil
	}
	check(ConformanceRegistry+"/nonewprivs:1.4", map[string]func(*tar.Header) error{"usr/local/bin/nnp": mode(0o4755)})
	check(ConformanceRegistry+"/busybox:1.37.0-2", map[string]func(*tar.Header) error{
		"bin/sh": link("busybox"), "bin/sleep": link("busybox"), "tmp/": mode(0o1777),
	})
	check(ConformanceRegistry+"/agnhost:2.66.1", map[string]func(*tar.Header) error{
		"agnhost": mode(0o755), "localhost.crt": mode(0o644), "usr/bin/dig": mode(0o755), "usr/bin/nc": mode(0o755),
		"bin/sh": mode(0o755), "bin/sleep": link("busybox"), "bin/busybox": isBusybox, "uploads/": mode(0o777),
	})
	check(ConformanceRegistry+"/kitten:1.8", map[string]func(*tar.Header) error{"kitten.jpg": mode(0o644), "data.json": mode(0o644)})
	check(Repository+"/etcd:3.7.0-0", map[string]func(*tar.Header) error{"usr/local/bin/etcd": link("/usr/bin/kube")})

	// The registry serves kitten and agnhost as they are on the nodes.
	kitten, err := images[ConformanceRegistry+"/kitten:1.8"].Digest()
	if err != nil {
		t.Fatal(err)
	}
	size := func(n int64) func(*tar.Header) error {
		return func(h *tar.Header) error {
			if h.Size != n {
				return errors.New("wrong size")
			}
			return nil
		}
	}
	check(ConformanceRegistryImage, map[string]func(*tar.Header) error{
		"var/registry/kitten/manifests/1.8":                                                   size(int64(len(kitten.String()))),
		"var/registry/kitten/manifests/sha256/" + kitten.Hex[:2] + "/" + kitten.Hex + "/data": mode(0o644),
		"var/registry/agnhost/manifests/2.66.1":                                               mode(0o644),
	})
}
