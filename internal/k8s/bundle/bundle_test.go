package bundle

import (
	"archive/tar"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// writeArchive writes a docker-save-like archive: a layer, then manifest.json.
func writeArchive(t *testing.T, path, manifest string) {
	t.Helper()
	writeArchiveAs(t, path, "manifest.json", manifest)
}

// writeArchiveAs writes an archive of a layer, then manifest (named file).
func writeArchiveAs(t *testing.T, path, file, manifest string) {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	tw := tar.NewWriter(f)
	for _, e := range []struct{ name, body string }{{"abc.tar.gz", strings.Repeat("x", 4096)}, {file, manifest}} {
		if err := tw.WriteHeader(&tar.Header{Name: e.name, Mode: 0o644, Size: int64(len(e.body))}); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write([]byte(e.body)); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
}

const manifestA = `[{"Config":"sha256:aa","RepoTags":["plinth.local/kube-apiserver:v1","plinth.local/etcd:v3"],"Layers":["abc.tar.gz"]},
 {"Config":"sha256:bb","RepoTags":["plinth.local/pause:3.10"],"Layers":["abc.tar.gz"]}]`

func TestImportedOncePerBundle(t *testing.T) {
	dir := t.TempDir()
	archive := filepath.Join(dir, "bundle.tar")
	writeArchive(t, archive, manifestA)
	b, err := Identify([]string{archive})
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(b.Tags, " ") != "plinth.local/etcd:v3 plinth.local/kube-apiserver:v1 plinth.local/pause:3.10" {
		t.Fatalf("tags %v", b.Tags)
	}
	record := filepath.Join(dir, "images-imported")
	all := []string{"plinth.local/etcd:v3", "plinth.local/kube-apiserver:v1", "plinth.local/pause:3.10", "other:1"}
	if ok, err := Imported(record, b, all); err != nil || ok {
		t.Fatalf("imported before any record: %v %v", ok, err)
	}
	if err := Record(record, b); err != nil {
		t.Fatal(err)
	}
	if ok, err := Imported(record, b, all); err != nil || !ok {
		t.Fatalf("not imported after the record: %v %v", ok, err)
	}
	// An image removed from containerd's store: import again.
	if ok, _ := Imported(record, b, all[1:]); ok {
		t.Fatal("imported with plinth.local/etcd:v3 missing from the store")
	}
	// Another bundle (a new node image): import again.
	writeArchive(t, archive, strings.Replace(manifestA, "sha256:aa", "sha256:cc", 1))
	b2, err := Identify([]string{archive})
	if err != nil {
		t.Fatal(err)
	}
	if b2.Key == b.Key {
		t.Fatal("a changed manifest kept its key")
	}
	if ok, _ := Imported(record, b2, all); ok {
		t.Fatal("a new bundle counts as imported")
	}
}

func TestIdentifyRefusesAnArchiveWithoutManifest(t *testing.T) {
	path := filepath.Join(t.TempDir(), "x.tar")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := tar.NewWriter(f).Close(); err != nil {
		t.Fatal(err)
	}
	f.Close()
	if _, err := Identify([]string{path}); err == nil || !strings.Contains(err.Error(), "neither index.json nor manifest.json") {
		t.Fatalf("err %v", err)
	}
}

// An OCI image layout archive (the node's bundle) is known by its index.json, and its
// images by their io.containerd.image.name annotations.
func TestIdentifyReadsAnOCIIndex(t *testing.T) {
	dir := t.TempDir()
	oci := filepath.Join(dir, "bundle.tar")
	index := `{"schemaVersion":2,"manifests":[
 {"digest":"sha256:aa","annotations":{"io.containerd.image.name":"plinth.local/kube-apiserver:v1","org.opencontainers.image.ref.name":"v1"}},
 {"digest":"sha256:aa","annotations":{"io.containerd.image.name":"plinth.local/etcd:v3"}},
 {"digest":"sha256:bb","annotations":{"io.containerd.image.name":"plinth.local/pause:3.10"}}]}`
	writeArchiveAs(t, oci, "./index.json", index)
	b, err := Identify([]string{oci})
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(b.Tags, " ") != "plinth.local/etcd:v3 plinth.local/kube-apiserver:v1 plinth.local/pause:3.10" {
		t.Fatalf("tags %v", b.Tags)
	}
	docker := filepath.Join(dir, "docker.tar")
	writeArchive(t, docker, manifestA)
	d, err := Identify([]string{docker})
	if err != nil {
		t.Fatal(err)
	}
	if d.Key == b.Key {
		t.Fatal("two archives of the same images in other formats share a key")
	}
	writeArchiveAs(t, oci, "index.json", strings.Replace(index, `"annotations":{"io.containerd.image.name":"plinth.local/etcd:v3"}`, `"annotations":{}`, 1))
	if _, err := Identify([]string{oci}); err == nil || !strings.Contains(err.Error(), "without the io.containerd.image.name annotation") {
		t.Fatalf("an unnamed image: err %v", err)
	}
}
