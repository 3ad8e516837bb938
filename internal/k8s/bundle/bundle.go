// Package bundle tells whether the image archives shipped in the node image (docker-save
// archives under /usr/share/plinth/images) are already in containerd's store, so that a
// node imports them once per volume rather than at every boot: an archive is known by its
// manifest.json, which names each image's configuration by digest (and so its layers).
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
		manifest, err := readManifest(a)
		if err != nil {
			return Bundle{}, err
		}
		var entries []struct{ RepoTags []string }
		if err := json.Unmarshal(manifest, &entries); err != nil {
			return Bundle{}, fmt.Errorf("%s: manifest.json: %w", a, err)
		}
		for _, e := range entries {
			tags = append(tags, e.RepoTags...)
		}
		fmt.Fprintf(h, "%s\n%d\n", filepath.Base(a), len(manifest))
		h.Write(manifest)
	}
	slices.Sort(tags)
	return Bundle{Key: "sha256:" + hex.EncodeToString(h.Sum(nil)), Tags: slices.Compact(tags)}, nil
}

// readManifest returns the manifest.json of a docker-save archive; the layers are skipped
// over, not read.
func readManifest(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	tr := tar.NewReader(f)
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return nil, fmt.Errorf("%s: no manifest.json: not a docker-save archive", path)
		}
		if err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		if hdr.Name == "manifest.json" || hdr.Name == "./manifest.json" {
			data, err := io.ReadAll(io.LimitReader(tr, 1<<20))
			if err != nil {
				return nil, fmt.Errorf("%s: manifest.json: %w", path, err)
			}
			return data, nil
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
