package machined

import (
	"archive/tar"
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"

	"github.com/klauspost/compress/gzip"

	"github.com/plinthos/plinth/pkg/api/machine"
)

// importDir holds an image archive while it is imported (on /var: it may be large).
const importDir = "/var/lib/plinth/import"

// maxArchive bounds an imported archive.
const maxArchive = 16 << 30

// unpacked is what ctr images import --local prints of each image it imported.
var unpacked = regexp.MustCompile(`unpacking (\S+) \((sha256:[0-9a-f]{64})\)\.\.\.done`)

// Import loads an image archive into the Kubernetes image store: it is written to a
// temporary file, checked to be an image archive (docker save's manifest.json, or an OCI
// layout's index.json), and imported by ctr (unpacked, so kubelet can run it at once).
func (ctrLister) Import(ctx context.Context, r io.Reader) ([]*machine.Image, error) {
	if err := os.MkdirAll(importDir, 0o700); err != nil {
		return nil, err
	}
	f, err := os.CreateTemp(importDir, "archive-*.tar")
	if err != nil {
		return nil, err
	}
	defer os.Remove(f.Name())
	n, err := io.Copy(f, io.LimitReader(r, maxArchive+1))
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return nil, fmt.Errorf("receive the archive: %w", err)
	}
	if n > maxArchive {
		return nil, fmt.Errorf("the archive is larger than %d GiB", maxArchive>>30)
	}
	if err := checkArchive(f.Name()); err != nil {
		return nil, err
	}
	// --local: ctr imports itself (not through containerd's transfer service), and says
	// which images it unpacked.
	out, err := ctr(ctx, "k8s.io", "images", "import", "--local", "--no-unpack=false", f.Name())
	if err != nil {
		return nil, fmt.Errorf("import: %w", err)
	}
	var images []*machine.Image
	for _, m := range unpacked.FindAllSubmatch(out, -1) {
		images = append(images, &machine.Image{Name: string(m[1]), Digest: string(m[2])})
	}
	if len(images) == 0 {
		return nil, fmt.Errorf("the archive held no image with a name (ctr said: %s)", bytes.TrimSpace(out))
	}
	return images, nil
}

// checkArchive says why the file at path is not an image archive: a tar (or gzipped tar)
// holding docker save's manifest.json or an OCI layout's index.json.
func checkArchive(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	br := bufio.NewReader(f)
	var rd io.Reader = br
	if magic, _ := br.Peek(2); bytes.Equal(magic, []byte{0x1f, 0x8b}) {
		zr, err := gzip.NewReader(br)
		if err != nil {
			return fmt.Errorf("not an image archive: %w", err)
		}
		defer zr.Close()
		rd = zr
	}
	tr := tar.NewReader(rd)
	entries := 0
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			if entries == 0 {
				return fmt.Errorf("not an image archive: not a tar file (%v); make one with docker save IMAGE -o FILE, or tar an OCI layout", err)
			}
			return fmt.Errorf("the image archive is damaged after %d entries: %w", entries, err)
		}
		entries++
		switch filepath.Clean(h.Name) {
		case "manifest.json", "index.json":
			return nil
		}
	}
	return errors.New("not an image archive: a tar without manifest.json (docker save) or index.json (an OCI layout)")
}
