// Package bundle tells whether the image archives shipped in the node image (OCI image
// layout or docker-save archives under /usr/share/plinth/images) are already in
// containerd's store, so that a node imports them once per volume rather than at every
// boot: an archive is known by its index.json (which names each image's manifest by digest,
// and so its layers) or its manifest.json (which names each image's configuration).
package bundle

import (
	"archive/tar"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/plinthos/plinth/internal/atomicfile"
)

// Bundle is what a set of archives holds.
type Bundle struct {
	// Key identifies the archives' images: a digest of their names and manifests.
	Key string
	// Tags are the images' tags, sorted.
	Tags []string
}

// Identify reads the manifest of each archive (in the order given).
func Identify(archives []string) (Bundle, error) {
	h := sha256.New()
	var tags []string
	for _, a := range archives {
		file, manifest, err := readManifest(a)
		if err != nil {
			return Bundle{}, err
		}
		names, err := imageNames(file, manifest)
		if err != nil {
			return Bundle{}, fmt.Errorf("%s: %s: %w", a, file, err)
		}
		tags = append(tags, names...)
		fmt.Fprintf(h, "%s\n%d\n", filepath.Base(a), len(manifest))
		h.Write(manifest)
	}
	slices.Sort(tags)
	return Bundle{Key: "sha256:" + hex.EncodeToString(h.Sum(nil)), Tags: slices.Compact(tags)}, nil
}

// AnnotationImageName is the index annotation containerd's import names an image by.
const AnnotationImageName = "io.containerd.image.name"

// imageNames returns the names of the images in an archive's index.json or manifest.json.
func imageNames(file string, data []byte) ([]string, error) {
	var names []string
	if file == "index.json" {
		var index struct {
			Manifests []struct{ Annotations map[string]string }
		}
		if err := json.Unmarshal(data, &index); err != nil {
			return nil, err
		}
		for _, m := range index.Manifests {
			n := m.Annotations[AnnotationImageName]
			if n == "" {
				return nil, fmt.Errorf("an image without the %s annotation: name every image of the bundle", AnnotationImageName)
			}
			names = append(names, n)
		}
		return names, nil
	}
	var entries []struct{ RepoTags []string }
	if err := json.Unmarshal(data, &entries); err != nil {
		return nil, err
	}
	for _, e := range entries {
		names = append(names, e.RepoTags...)
	}
	return names, nil
}

// readManifest returns the index.json of an OCI image layout archive, or the manifest.json
// of a docker-save archive, with its name; the blobs are skipped over, not read.
func readManifest(path string) (string, []byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", nil, err
	}
	defer f.Close()
	tr := tar.NewReader(f)
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return "", nil, fmt.Errorf("%s: neither index.json nor manifest.json: not an OCI image layout or docker-save archive", path)
		}
		if err != nil {
			return "", nil, fmt.Errorf("%s: %w", path, err)
		}
		if name := strings.TrimPrefix(hdr.Name, "./"); name == "index.json" || name == "manifest.json" {
			data, err := io.ReadAll(io.LimitReader(tr, 1<<20))
			if err != nil {
				return "", nil, fmt.Errorf("%s: %s: %w", path, name, err)
			}
			return name, data, nil
		}
	}
}

// Imported says whether the record at recordPath says b was imported, and every one of
// b's tags is among present (the references containerd lists). A missing record is not.
func Imported(recordPath string, b Bundle, present []string) (bool, error) {
	data, err := os.ReadFile(recordPath)
	if errors.Is(err, os.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	if strings.TrimSpace(string(data)) != b.Key {
		return false, nil
	}
	for _, t := range b.Tags {
		if !slices.Contains(present, t) {
			return false, nil
		}
	}
	return true, nil
}

// Record notes at recordPath that b was imported.
func Record(recordPath string, b Bundle) error {
	return atomicfile.Write(recordPath, []byte(b.Key+"\n"), 0o644)
}

// Builtin is an image of the bundle that the node image leaves out of the bundle it
// imports, because the node carries the image's program itself: kubelet, which runs on the
// node and not in a container. The node reports it among its images, so that a check for
// the images a Kubernetes version needs finds it, and refuses to remove it.
type Builtin struct {
	// Name is the image's reference, such as plinth.local/kubelet:v1.37.2.
	Name string `json:"name"`
	// Digest is the digest of its manifest, as in the bundle's index.
	Digest string `json:"digest"`
	// Program is the node's own copy of the image's program, such as /usr/bin/kubelet.
	Program string `json:"program"`
}

// ReadBuiltin reads the node's list of built-in images (paths.BuiltinImagesFile); a node
// image without the file has none.
func ReadBuiltin(path string) ([]Builtin, error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var list []Builtin
	if err := json.Unmarshal(data, &list); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	for _, b := range list {
		if b.Name == "" || !strings.HasPrefix(b.Digest, "sha256:") || b.Program == "" {
			return nil, fmt.Errorf("%s: an entry without a name, a sha256 digest or a program: %+v", path, b)
		}
	}
	return list, nil
}
