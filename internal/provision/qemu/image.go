package qemu

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// The files of the OS image (make image-os) the provisioner uses.
const (
	ImageDisk     = "disk.raw"
	ImageKernel   = "vmlinuz"
	ImageManifest = "manifest.json"
)

// DefaultImage is the OS image directory `make image-os` writes, relative to the
// repository.
const DefaultImage = "_out/os"

// profileK8s is the manifest profile of an OS image with Kubernetes (osimage.ProfileK8s;
// not imported, which would link the image builder into plinthctl).
const profileK8s = "k8s"

// manifest is the part of the image's manifest.json (osimage.Manifest) read here.
type manifest struct {
	Version string `json:"version"`
	Profile string `json:"profile"`
}

// image is an OS image directory.
type image struct {
	Dir     string // absolute
	Profile string
	Version string
}

func (i image) disk() string   { return filepath.Join(i.Dir, ImageDisk) }
func (i image) kernel() string { return filepath.Join(i.Dir, ImageKernel) }

// kubernetes says whether the image carries Kubernetes.
func (i image) kubernetes() bool { return i.Profile == profileK8s }

// loadImage checks that dir is an OS image (its disk, its kernel and its manifest) and
// reads its manifest.
func loadImage(dir string) (image, error) {
	if dir == "" {
		return image{}, fmt.Errorf("no OS image given: build one with `make image-os` (it goes to %s) or pass --os-image DIR", DefaultImage)
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return image{}, fmt.Errorf("OS image %s: %w", dir, err)
	}
	for _, f := range []string{ImageDisk, ImageKernel, ImageManifest} {
		if _, err := os.Stat(filepath.Join(abs, f)); errors.Is(err, fs.ErrNotExist) {
			return image{}, fmt.Errorf("%s is not an OS image (it has no %s): build one with `make image-os`, or pass --os-image DIR", dir, f)
		} else if err != nil {
			return image{}, fmt.Errorf("OS image %s: %w", dir, err)
		}
	}
	data, err := os.ReadFile(filepath.Join(abs, ImageManifest))
	if err != nil {
		return image{}, fmt.Errorf("OS image %s: %w", dir, err)
	}
	var m manifest
	if err := json.Unmarshal(data, &m); err != nil {
		return image{}, fmt.Errorf("OS image %s: read %s: %w", dir, ImageManifest, err)
	}
	if m.Profile == "" {
		return image{}, fmt.Errorf("OS image %s: %s names no profile", dir, ImageManifest)
	}
	return image{Dir: abs, Profile: m.Profile, Version: m.Version}, nil
}
