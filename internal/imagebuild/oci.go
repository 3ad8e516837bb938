package imagebuild

import (
	"archive/tar"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"sort"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

// ImageSpec describes a single-layer image built from a root file system.
type ImageSpec struct {
	// Rootfs is the tree that becomes the image's only layer.
	Rootfs string
	// Tags are the names the image is saved under (for example plinth.local/etcd:v3.7.3).
	Tags []string
	// Entrypoint, Cmd, Env and WorkingDir go into the image configuration.
	Entrypoint, Cmd, Env []string
	WorkingDir           string
	// Volumes are declared volume paths.
	Volumes []string
}

// Image builds the image of spec: one reproducible layer, linux/amd64, fixed creation time.
func Image(spec ImageSpec) (v1.Image, error) {
	var layerTar bytes.Buffer
	if err := WriteTar(spec.Rootfs, &layerTar); err != nil {
		return nil, err
	}
	data := layerTar.Bytes()
	layer, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(data)), nil })
	if err != nil {
		return nil, fmt.Errorf("layer: %w", err)
	}
	img, err := mutate.AppendLayers(empty.Image, layer)
	if err != nil {
		return nil, err
	}
	cfg, err := img.ConfigFile()
	if err != nil {
		return nil, err
	}
	cfg = cfg.DeepCopy()
	cfg.OS, cfg.Architecture = "linux", "amd64"
	cfg.Created = v1.Time{Time: Epoch}
	cfg.Config.Entrypoint = spec.Entrypoint
	cfg.Config.Cmd = spec.Cmd
	cfg.Config.Env = spec.Env
	cfg.Config.WorkingDir = spec.WorkingDir
	if len(spec.Volumes) > 0 {
		cfg.Config.Volumes = map[string]struct{}{}
		for _, v := range spec.Volumes {
			cfg.Config.Volumes[v] = struct{}{}
		}
	}
	return mutate.ConfigFile(img, cfg)
}

// Saved is one image written to an archive, with its digest for the lock file.
type Saved struct {
	Tags   []string
	Digest string
}

// Save writes images to path as one docker-save style archive, which `docker load` and
// containerd's image import both read, and returns each image's manifest digest. The
// archive is the same bytes for the same images: images in the order of their first tag,
// each one's config then its layers (a layer shared with an earlier image is not written
// again), then manifest.json; every entry owned by root, mode 0644, time Epoch.
func Save(path string, images map[string]v1.Image) ([]Saved, error) {
	byDigest := map[string]*Saved{}
	imgOf := map[string]v1.Image{}
	for tag, img := range images {
		if _, err := name.NewTag(tag, name.WithDefaultRegistry("")); err != nil {
			return nil, fmt.Errorf("tag %q: %w", tag, err)
		}
		d, err := img.Digest()
		if err != nil {
			return nil, err
		}
		s := byDigest[d.String()]
		if s == nil {
			s = &Saved{Digest: d.String()}
			byDigest[d.String()] = s
			imgOf[d.String()] = img
		}
		s.Tags = append(s.Tags, tag)
	}
	var out []Saved
	for _, s := range byDigest {
		sort.Strings(s.Tags)
		out = append(out, *s)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Tags[0] < out[j].Tags[0] })

	f, err := os.Create(path)
	if err != nil {
		return nil, err
	}
	if err := writeArchive(f, out, imgOf); err != nil {
		f.Close()
		return nil, fmt.Errorf("write %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return nil, err
	}
	return out, nil
}

// archiveEntry is one image of a docker-save archive's manifest.json.
type archiveEntry struct {
	Config   string
	RepoTags []string
	Layers   []string
}

func writeArchive(w io.Writer, saved []Saved, imgOf map[string]v1.Image) error {
	tw := tar.NewWriter(w)
	put := func(name string, size int64, r io.Reader) error {
		hdr := &tar.Header{Typeflag: tar.TypeReg, Name: name, Size: size, Mode: 0o644, ModTime: Epoch, Format: tar.FormatPAX}
		if err := tw.WriteHeader(hdr); err != nil {
			return err
		}
		n, err := io.Copy(tw, r)
		if err != nil {
			return err
		}
		if n != size {
			return fmt.Errorf("%s: wrote %d bytes of %d", name, n, size)
		}
		return nil
	}
	written := map[string]bool{}
	var manifest []archiveEntry
	for _, s := range saved {
		entry := archiveEntry{RepoTags: s.Tags}
		err := eachBlob(imgOf[s.Digest], func(d v1.Hash, size int64, layer bool, open func() (io.ReadCloser, error)) error {
			file := d.String()
			if layer {
				file = d.Hex + ".tar.gz"
				entry.Layers = append(entry.Layers, file)
			} else {
				entry.Config = file
			}
			if written[file] {
				return nil
			}
			rc, err := open()
			if err != nil {
				return err
			}
			defer rc.Close()
			if err := put(file, size, rc); err != nil {
				return fmt.Errorf("%s: %w", file, err)
			}
			written[file] = true
			return nil
		})
		if err != nil {
			return err
		}
		manifest = append(manifest, entry)
	}
	m, err := json.Marshal(manifest)
	if err != nil {
		return err
	}
	if err := put("manifest.json", int64(len(m)), bytes.NewReader(m)); err != nil {
		return err
	}
	return tw.Close()
}

// eachBlob calls put for an image's configuration, then for each of its layers
// (compressed), in order: the blob's digest and size, whether it is a layer, and how to read
// it.
func eachBlob(img v1.Image, put func(d v1.Hash, size int64, layer bool, open func() (io.ReadCloser, error)) error) error {
	cfgName, err := img.ConfigName()
	if err != nil {
		return err
	}
	cfg, err := img.RawConfigFile()
	if err != nil {
		return err
	}
	if err := put(cfgName, int64(len(cfg)), false, func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(cfg)), nil }); err != nil {
		return err
	}
	layers, err := img.Layers()
	if err != nil {
		return err
	}
	for _, l := range layers {
		d, err := l.Digest()
		if err != nil {
			return err
		}
		size, err := l.Size()
		if err != nil {
			return err
		}
		if err := put(d, size, true, l.Compressed); err != nil {
			return fmt.Errorf("layer %s: %w", d, err)
		}
	}
	return nil
}
