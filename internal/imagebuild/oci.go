package imagebuild

import (
	"bytes"
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
// containerd's image import both read, and returns each image's manifest digest.
func Save(path string, images map[string]v1.Image) ([]Saved, error) {
	refs := map[name.Reference]v1.Image{}
	byDigest := map[string]*Saved{}
	for tag, img := range images {
		ref, err := name.NewTag(tag, name.WithDefaultRegistry(""))
		if err != nil {
			return nil, fmt.Errorf("tag %q: %w", tag, err)
		}
		refs[ref] = img
		d, err := img.Digest()
		if err != nil {
			return nil, err
		}
		s := byDigest[d.String()]
		if s == nil {
			s = &Saved{Digest: d.String()}
			byDigest[d.String()] = s
		}
		s.Tags = append(s.Tags, tag)
	}
	f, err := os.Create(path)
	if err != nil {
		return nil, err
	}
	if err := tarball.MultiRefWrite(refs, f); err != nil {
		f.Close()
		return nil, fmt.Errorf("write %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return nil, err
	}
	var out []Saved
	for _, s := range byDigest {
		sort.Strings(s.Tags)
		out = append(out, *s)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Tags[0] < out[j].Tags[0] })
	return out, nil
}
