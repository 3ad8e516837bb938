package machined

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/plinthos/plinth/internal/k8s/bundle"
	"github.com/plinthos/plinth/pkg/api/machine"
)

func TestParseImages(t *testing.T) {
	out := []byte(`REF                                     TYPE                                                 DIGEST                                                                  SIZE      PLATFORMS   LABELS
plinth.local/kube-apiserver:v1.37.2     application/vnd.docker.distribution.manifest.v2+json sha256:f2f8a92b8082110f329e0f63f01310b57c2f21c2c6a9d742fa02bbdef3785622 95.1 MiB  linux/amd64 io.cri-containerd.image=managed
plinth.local/pause:3.10                 application/vnd.oci.image.manifest.v1+json           sha256:3d800f5550fb09b44fcebd805ac8e1064bc3f5f232d09dd43566bf16ebb27059 512.0 KiB linux/amd64 io.cri-containerd.image=managed
sha256:3d800f5550fb09b44fcebd805ac8e1064bc3f5f232d09dd43566bf16ebb27059 application/vnd.oci.image.manifest.v1+json sha256:3d800f5550fb09b44fcebd805ac8e1064bc3f5f232d09dd43566bf16ebb27059 12 B - -
`)
	got := parseImages(out)
	if len(got) != 2 {
		t.Fatalf("parsed %d images, want 2 (not the reference by ID): %v", len(got), got)
	}
	if got[0].Name != "plinth.local/kube-apiserver:v1.37.2" || got[0].Digest != "sha256:f2f8a92b8082110f329e0f63f01310b57c2f21c2c6a9d742fa02bbdef3785622" {
		t.Errorf("first image: %v", got[0])
	}
	mib := 95.1
	if want := uint64(mib * 1024 * 1024); got[0].SizeBytes != want {
		t.Errorf("95.1 MiB read as %d, want %d", got[0].SizeBytes, want)
	}
	if got[1].SizeBytes != 512*1024 {
		t.Errorf("size of 512.0 KiB: %d", got[1].SizeBytes)
	}
	if parseSize("12", "B") != 12 {
		t.Error("12 B")
	}
	if parseSize("x", "MiB") != 0 || parseSize("1", "parsecs") != 0 {
		t.Error("a size that cannot be read is not 0")
	}
}

func TestWithBuiltin(t *testing.T) {
	prog := filepath.Join(t.TempDir(), "kubelet")
	if err := os.WriteFile(prog, make([]byte, 1234), 0o755); err != nil {
		t.Fatal(err)
	}
	builtin := []bundle.Builtin{
		{Name: "plinth.local/kubelet:v1.37.2", Digest: "sha256:1111", Program: prog},
		{Name: "plinth.local/pause:3.10", Digest: "sha256:2222", Program: prog},
	}
	store := []*machine.Image{
		{Name: "plinth.local/kube-apiserver:v1.37.2", Digest: "sha256:aaaa"},
		{Name: "plinth.local/pause:3.10", Digest: "sha256:bbbb"},
	}
	got := withBuiltin(store, builtin)
	var names []string
	for _, im := range got {
		names = append(names, fmt.Sprintf("%s %s %d %v", im.Name, im.Digest, im.SizeBytes, im.BuiltIn))
	}
	// The store's own pause stays as it is; kubelet, which the store lacks, is built in,
	// with its program's size, in name order.
	want := []string{
		"plinth.local/kube-apiserver:v1.37.2 sha256:aaaa 0 false",
		"plinth.local/kubelet:v1.37.2 sha256:1111 1234 true",
		"plinth.local/pause:3.10 sha256:bbbb 0 false",
	}
	if !slices.Equal(names, want) {
		t.Errorf("images\n%s\nwant\n%s", strings.Join(names, "\n"), strings.Join(want, "\n"))
	}
}
