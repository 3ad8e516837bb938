package imagebuild

import (
	"archive/tar"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/plinthos/plinth/internal/k8s/bundle"
)

// smallBlob bounds the blobs FilterOCIArchive keeps in memory to read the manifests among
// them (a manifest is a few hundred bytes; layers are megabytes).
const smallBlob = 1 << 20

// FilterOCIArchive copies the OCI image layout archive src (as SaveOCI writes it) to dst
// without the images whose name drop says to leave out, nor the blobs only they use. It
// returns what it left out, by name and manifest digest. Entries keep their order and
// headers, so the same input gives the same output.
func FilterOCIArchive(src, dst string, drop func(name string) bool) ([]bundle.Builtin, error) {
	// First pass: the index, and the small blobs, among which are the manifests.
	var index v1.IndexManifest
	haveIndex := false
	small := map[string][]byte{}
	err := eachEntry(src, func(hdr *tar.Header, r io.Reader) error {
		name := strings.TrimPrefix(hdr.Name, "./")
		if name != "index.json" && (!strings.HasPrefix(name, "blobs/") || hdr.Size > smallBlob) {
			return nil
		}
		data, err := io.ReadAll(r)
		if err != nil {
			return err
		}
		if name == "index.json" {
			haveIndex = true
			return json.Unmarshal(data, &index)
		}
		small[name] = data
		return nil
	})
	if err != nil {
		return nil, err
	}
	if !haveIndex {
		return nil, fmt.Errorf("%s: no index.json: not an OCI image layout archive", src)
	}
	var dropped []bundle.Builtin
	keep := map[string]bool{"oci-layout": true, "index.json": true}
	kept := index.Manifests[:0:0]
	for _, m := range index.Manifests {
		name := m.Annotations[bundle.AnnotationImageName]
		if name == "" {
			return nil, fmt.Errorf("%s: an image without the %s annotation", src, bundle.AnnotationImageName)
		}
		if drop(name) {
			dropped = append(dropped, bundle.Builtin{Name: name, Digest: m.Digest.String()})
			continue
		}
		kept = append(kept, m)
		blob := blobPath(m.Digest)
		raw, ok := small[blob]
		if !ok {
			return nil, fmt.Errorf("%s: the manifest of %s (%s) is not in the archive", src, name, m.Digest)
		}
		var manifest v1.Manifest
		if err := json.Unmarshal(raw, &manifest); err != nil {
			return nil, fmt.Errorf("%s: the manifest of %s: %w", src, name, err)
		}
		keep[blob], keep[blobPath(manifest.Config.Digest)] = true, true
		for _, l := range manifest.Layers {
			keep[blobPath(l.Digest)] = true
		}
	}
	index.Manifests = kept
	idx, err := json.Marshal(index)
	if err != nil {
		return nil, err
	}

	// Second pass: copy what is kept, the new index in the old one's place.
	f, err := os.Create(dst)
	if err != nil {
		return nil, err
	}
	tw := tar.NewWriter(f)
	err = eachEntry(src, func(hdr *tar.Header, r io.Reader) error {
		name := strings.TrimPrefix(hdr.Name, "./")
		if !keep[name] {
			return nil
		}
		if name == "index.json" {
			h := *hdr
			h.Size = int64(len(idx))
			if err := tw.WriteHeader(&h); err != nil {
				return err
			}
			_, err := tw.Write(idx)
			return err
		}
		if err := tw.WriteHeader(hdr); err != nil {
			return err
		}
		_, err := io.Copy(tw, r)
		return err
	})
	if err == nil {
		err = tw.Close()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(dst)
		return nil, fmt.Errorf("write %s: %w", dst, err)
	}
	return dropped, nil
}

func blobPath(d v1.Hash) string { return "blobs/" + d.Algorithm + "/" + d.Hex }

// eachEntry calls fn with each entry of the tar archive at path, in order.
func eachEntry(path string, fn func(*tar.Header, io.Reader) error) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	tr := tar.NewReader(f)
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("%s: %w", path, err)
		}
		if err := fn(hdr, tr); err != nil {
			return fmt.Errorf("%s: %s: %w", path, hdr.Name, err)
		}
	}
}

// kubeletImage says whether name is the bundle's kubelet image, whose program the node
// carries as /usr/bin/kubelet.
func kubeletImage(name string) bool {
	return strings.HasPrefix(name, Repository+"/kubelet:")
}

// writeNodeBundle puts the bundle archive into the node's root without the kubelet image
// (the node runs its own /usr/bin/kubelet, the same program), and lists that image in
// paths.BuiltinImagesFile: a node reports it among its images, as it reports the others.
func writeNodeBundle(r *Rootfs, src, imagePath, builtinPath, kubelet string) error {
	dst := r.host(imagePath)
	if err := mkdirAll(filepath.Dir(dst)); err != nil {
		return err
	}
	dropped, err := FilterOCIArchive(src, dst, kubeletImage)
	if err != nil {
		return err
	}
	if err := os.Chmod(dst, 0o644); err != nil {
		return err
	}
	if len(dropped) != 1 {
		return fmt.Errorf("bundle %s: %d kubelet images (%s/kubelet:...), want one", src, len(dropped), Repository)
	}
	dropped[0].Program = kubelet
	data, err := json.MarshalIndent(dropped, "", "  ")
	if err != nil {
		return err
	}
	return r.WriteFile(builtinPath, append(data, '\n'), 0o644)
}
