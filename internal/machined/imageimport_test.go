package machined

import (
	"archive/tar"
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/klauspost/compress/gzip"
)

func tarOf(t *testing.T, names ...string) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, n := range names {
		if err := tw.WriteHeader(&tar.Header{Name: n, Mode: 0o644, Size: 2}); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write([]byte("{}")); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestCheckArchive(t *testing.T) {
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write(tarOf(t, "oci-layout", "blobs/sha256/aa", "index.json"))
	zw.Close()
	for _, tc := range []struct {
		name string
		data []byte
		want string // "" for accepted
	}{
		{"docker save", tarOf(t, "abc/layer.tar", "manifest.json", "repositories"), ""},
		{"gzipped OCI layout", gz.Bytes(), ""},
		{"./ prefixed", tarOf(t, "./index.json"), ""},
		{"no manifest", tarOf(t, "etc/hosts"), "without manifest.json"},
		{"not a tar", []byte(strings.Repeat("hello ", 200)), "not a tar file"},
		{"damaged", tarOf(t, "a", "b")[:1100], "damaged after 1 entries"},
	} {
		path := filepath.Join(t.TempDir(), "a.tar")
		if err := os.WriteFile(path, tc.data, 0o600); err != nil {
			t.Fatal(err)
		}
		err := checkArchive(path)
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("%s: refused: %v", tc.name, err)
		case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
			t.Errorf("%s: %v, want an error with %q", tc.name, err, tc.want)
		}
	}
}

func TestUnpackedImages(t *testing.T) {
	out := "unpacking docker.io/library/hello:v1 (sha256:" + strings.Repeat("a", 64) + ")...done\n" +
		"unpacking e2e.local/x:1 (sha256:" + strings.Repeat("b", 64) + ")...done\n"
	m := unpacked.FindAllStringSubmatch(out, -1)
	if len(m) != 2 || m[0][1] != "docker.io/library/hello:v1" || m[1][2] != "sha256:"+strings.Repeat("b", 64) {
		t.Fatalf("parsed %q", m)
	}
}
