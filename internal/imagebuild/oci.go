package imagebuild

import (
	"archive/tar"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"sort"

	"github.com/google/go-containerregistry/pkg/compression"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/klauspost/compress/zstd"

	"github.com/plinthos/plinth/internal/k8s/bundle"
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
	// Zstd compresses the layer with zstd rather than gzip, and makes the image an OCI one
	// (its manifest names the layer's media type). It is about a quarter smaller than gzip
	// at the speed used for the other images. containerd reads it; Docker 20.10's docker
	// load does not: for images saved with SaveOCI.
	Zstd bool
}

// Zstd layers are compressed at klauspost/compress's "better compression" (zstd levels
// 6-9): its "best" saves another 6 % of the Kubernetes image for four times the build time
// (15 s against 4 s on the development machine). The window is 1 MiB, not the level's
// 8 MiB: containerd's decoder takes memory by the window, and with 8 MiB a node's
// containerd held about 150 MiB more for a minute or two after it imported the bundle, for
// 2 % less size.
const zstdWindow = 1 << 20

// compressZstd compresses a layer for ImageSpec.Zstd.
func compressZstd(data []byte) ([]byte, error) {
	var out bytes.Buffer
	w, err := zstd.NewWriter(&out, zstd.WithEncoderLevel(zstd.SpeedBetterCompression), zstd.WithWindowSize(zstdWindow))
	if err != nil {
		return nil, err
	}
	if _, err := w.Write(data); err != nil {
		w.Close()
		return nil, err
	}
	if err := w.Close(); err != nil {
		return nil, err
	}
	return out.Bytes(), nil
}

// Image builds the image of spec: one reproducible layer, linux/amd64, fixed creation time.
func Image(spec ImageSpec) (v1.Image, error) {
	var layerTar bytes.Buffer
	if err := WriteTar(spec.Rootfs, &layerTar); err != nil {
		return nil, err
	}
	data := layerTar.Bytes()
	base := empty.Image
	var opts []tarball.LayerOption
	if spec.Zstd {
		// Compressed here, once (the layer takes compressed bytes as they are).
		z, err := compressZstd(data)
		if err != nil {
			return nil, fmt.Errorf("layer: %w", err)
		}
		data = z
		opts = append(opts, tarball.WithCompression(compression.ZStd), tarball.WithMediaType(types.OCILayerZStd))
		base = mutate.ConfigMediaType(mutate.MediaType(empty.Image, types.OCIManifestSchema1), types.OCIConfigJSON)
	}
	layer, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(data)), nil }, opts...)
	if err != nil {
		return nil, fmt.Errorf("layer: %w", err)
	}
	img, err := mutate.AppendLayers(base, layer)
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
	for tag, img := range images {
		if mt, err := img.MediaType(); err != nil {
			return nil, err
		} else if mt == types.OCIManifestSchema1 {
			return nil, fmt.Errorf("image %s: a docker-save archive cannot carry an OCI image (its layers' media types would be lost): save it with SaveOCI", tag)
		}
	}
	return save(path, images, writeArchive)
}

// SaveOCI writes images to path as one OCI image layout archive, which containerd's image
// import reads (not Docker 20.10's docker load): the layout's marker, each image's config,
// layers and manifest under blobs/ (a blob shared with an earlier image is not written
// again), then index.json, with an entry per tag that names the image (containerd's
// io.containerd.image.name annotation). The same images give the same bytes, as with Save.
// The images of a bundle use it: unlike a docker-save archive, it keeps each layer's media
// type, and so zstd layers (ImageSpec.Zstd).
func SaveOCI(path string, images map[string]v1.Image) ([]Saved, error) {
	return save(path, images, writeOCIArchive)
}

func save(path string, images map[string]v1.Image, write func(io.Writer, []Saved, map[string]v1.Image) error) ([]Saved, error) {
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
	if err := write(f, out, imgOf); err != nil {
		f.Close()
		return nil, fmt.Errorf("write %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return nil, err
	}
	return out, nil
}

// putFile writes one regular file into an archive: owned by root, mode 0644, time Epoch.
func putFile(tw *tar.Writer, name string, size int64, r io.Reader) error {
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

// putOnce writes a blob into an archive as file, unless written says it is there already,
// and notes it there.
func putOnce(tw *tar.Writer, written map[string]bool, file string, size int64, open func() (io.ReadCloser, error)) error {
	if written[file] {
		return nil
	}
	rc, err := open()
	if err != nil {
		return err
	}
	defer rc.Close()
	if err := putFile(tw, file, size, rc); err != nil {
		return fmt.Errorf("%s: %w", file, err)
	}
	written[file] = true
	return nil
}

func writeOCIArchive(w io.Writer, saved []Saved, imgOf map[string]v1.Image) error {
	tw := tar.NewWriter(w)
	layout := []byte(`{"imageLayoutVersion":"1.0.0"}`)
	if err := putFile(tw, "oci-layout", int64(len(layout)), bytes.NewReader(layout)); err != nil {
		return err
	}
	written := map[string]bool{}
	blob := func(d v1.Hash, size int64, open func() (io.ReadCloser, error)) error {
		return putOnce(tw, written, blobPath(d), size, open)
	}
	index := v1.IndexManifest{SchemaVersion: 2, MediaType: types.OCIImageIndex}
	for _, s := range saved {
		img := imgOf[s.Digest]
		err := eachBlob(img, func(d v1.Hash, size int64, _ bool, open func() (io.ReadCloser, error)) error {
			return blob(d, size, open)
		})
		if err != nil {
			return err
		}
		manifest, err := img.RawManifest()
		if err != nil {
			return err
		}
		mt, err := img.MediaType()
		if err != nil {
			return err
		}
		d, err := img.Digest()
		if err != nil {
			return err
		}
		err = blob(d, int64(len(manifest)), func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(manifest)), nil })
		if err != nil {
			return err
		}
		for _, t := range s.Tags {
			ref, err := name.NewTag(t, name.WithDefaultRegistry(""))
			if err != nil {
				return err
			}
			index.Manifests = append(index.Manifests, v1.Descriptor{
				MediaType: mt, Size: int64(len(manifest)), Digest: d,
				Annotations: map[string]string{bundle.AnnotationImageName: t, "org.opencontainers.image.ref.name": ref.TagStr()},
			})
		}
	}
	idx, err := json.Marshal(index)
	if err != nil {
		return err
	}
	if err := putFile(tw, "index.json", int64(len(idx)), bytes.NewReader(idx)); err != nil {
		return err
	}
	return tw.Close()
}

// archiveEntry is one image of a docker-save archive's manifest.json.
type archiveEntry struct {
	Config   string
	RepoTags []string
	Layers   []string
}

func writeArchive(w io.Writer, saved []Saved, imgOf map[string]v1.Image) error {
	tw := tar.NewWriter(w)
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
			return putOnce(tw, written, file, size, open)
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
	if err := putFile(tw, "manifest.json", int64(len(m)), bytes.NewReader(m)); err != nil {
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
