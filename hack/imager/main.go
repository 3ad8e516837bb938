// Command imager builds Plinth's images from the payload: the image bundle every cluster
// runs (docker-save archive) and the node image for Docker.
//
//	imager bundle -bin _out/payload/bin -out _out/images/bundle.tar -lock payload/images.lock [-update-lock]
//	imager node -bin _out/payload/bin -machined _out/machined -bundle _out/images/bundle.tar -lock payload/images.lock -tag plinth/node:dev -out _out/images/node.tar
//	imager kube-bundle -bin _out/payload-prev/bin -kubernetes v1.36.3 -out _out/images/kubernetes-v1.36.3.tar
//	imager conformance-images -bin _out/conformance -payload _out/payload/bin -kubernetes-src DIR -out _out/conformance/images.tar
//
// conformance-images builds the images the Kubernetes conformance tests run (make
// conformance); the lock does not cover them.
//
// kube-bundle builds the Kubernetes images alone of another Kubernetes version (the previous
// minor release of make payload-prev), for plinthctl upgrade-k8s; the lock does not cover it.
//
// The lock (payload/images.lock) records the host inputs of the images (Go toolchain,
// Debian packages of the programs copied from the build machine) and the bundle's image
// digests. Both commands check what they build against it and fail, leaving it untouched,
// when they differ; bundle -update-lock (make images-lock) rewrites it deliberately.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/plinthos/plinth/internal/atomicfile"
	"github.com/plinthos/plinth/internal/imagebuild"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: imager bundle|node|kube-bundle|conformance-images [flags]")
		os.Exit(2)
	}
	var err error
	switch os.Args[1] {
	case "bundle":
		err = bundle(os.Args[2:])
	case "node":
		err = node(os.Args[2:])
	case "kube-bundle":
		err = kubeBundle(os.Args[2:])
	case "conformance-images":
		err = conformanceImages(os.Args[2:])
	default:
		err = fmt.Errorf("unknown command %q: use bundle, node, kube-bundle or conformance-images", os.Args[1])
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "imager:", err)
		os.Exit(1)
	}
}

func bundle(args []string) error {
	fs := flag.NewFlagSet("bundle", flag.ExitOnError)
	bin := fs.String("bin", "_out/payload/bin", "payload binaries")
	out := fs.String("out", "_out/images/bundle.tar", "archive to write")
	lockPath := fs.String("lock", "payload/images.lock", "lock file: host inputs and image digests the build must match")
	update := fs.Bool("update-lock", false, "write the lock from this build instead of checking the build against it")
	var v imagebuild.Versions
	fs.StringVar(&v.Kubernetes, "kubernetes", "", "Kubernetes version tag")
	fs.StringVar(&v.Etcd, "etcd", "", "etcd version tag")
	fs.StringVar(&v.CoreDNS, "coredns", "", "CoreDNS version tag")
	fs.StringVar(&v.Flannel, "flannel", "", "flannel version tag")
	fs.StringVar(&v.Pause, "pause", "3.10", "pause image tag")
	fs.StringVar(&v.Testbin, "testbin", "v1", "test image tag")
	_ = fs.Parse(args)
	for n, val := range map[string]string{"kubernetes": v.Kubernetes, "etcd": v.Etcd, "coredns": v.CoreDNS, "flannel": v.Flannel} {
		if val == "" {
			return fmt.Errorf("-%s is required", n)
		}
	}
	ctx := context.Background()
	work, err := os.MkdirTemp("", "imager-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(work)
	var locked imagebuild.Lock
	if !*update {
		if locked, err = readLock(*lockPath); err != nil {
			return err
		}
	}
	// Host inputs first: when they differ, the digests will too, and this says why.
	nodeFiles, err := imagebuild.NodeHostFiles(ctx, work)
	if err != nil {
		return err
	}
	images, bundleFiles, err := imagebuild.BundleImages(ctx, *bin, work, v)
	if err != nil {
		return err
	}
	cgoFiles, err := imagebuild.CgoToolchainFiles(ctx)
	if err != nil {
		return err
	}
	got, err := hostLock(ctx, append(append(bundleFiles, nodeFiles...), cgoFiles...))
	if err != nil {
		return err
	}
	if !*update {
		if diffs := locked.HostDiff(got, false); len(diffs) > 0 {
			return lockMismatch(*lockPath, "the build machine differs from the lock, so the images would too", diffs)
		}
	}
	if err := os.MkdirAll(filepath.Dir(*out), 0o755); err != nil {
		return err
	}
	tmp := *out + ".tmp"
	defer os.Remove(tmp)
	if got.Images, err = imagebuild.SaveOCI(tmp, images); err != nil {
		return err
	}
	if *update {
		if err := atomicfile.Write(*lockPath, got.Format(), 0o644); err != nil {
			return err
		}
		fmt.Printf("imager: wrote %s\n", *lockPath)
	} else if diffs := locked.ImageDiff(got); len(diffs) > 0 {
		return lockMismatch(*lockPath, "the images built differ from the lock", diffs)
	}
	if err := os.Rename(tmp, *out); err != nil {
		return err
	}
	for _, s := range got.Images {
		fmt.Printf("%s %s\n", s.Digest, strings.Join(s.Tags, " "))
	}
	return nil
}

func kubeBundle(args []string) error {
	fs := flag.NewFlagSet("kube-bundle", flag.ExitOnError)
	bin := fs.String("bin", "_out/payload-prev/bin", "directory of the kube binary")
	version := fs.String("kubernetes", "", "Kubernetes version tag of the images (required)")
	out := fs.String("out", "", "archive to write (required)")
	_ = fs.Parse(args)
	if *version == "" || *out == "" {
		return fmt.Errorf("-kubernetes and -out are required")
	}
	work, err := os.MkdirTemp("", "imager-kube-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(work)
	images, err := imagebuild.KubeImages(context.Background(), *bin, work, *version)
	if err != nil {
		return err
	}
	return saveImages(*out, images)
}

func conformanceImages(args []string) error {
	fs := flag.NewFlagSet("conformance-images", flag.ExitOnError)
	var src imagebuild.ConformanceSources
	fs.StringVar(&src.Bin, "bin", "_out/conformance", "directory of agnhost, nnp and sample-apiserver (make conformance-bins)")
	fs.StringVar(&src.Payload, "payload", "_out/payload/bin", "directory of the payload binaries (kube, pause)")
	fs.StringVar(&src.Kubernetes, "kubernetes-src", "", "source tree of the pinned k8s.io/kubernetes module (required)")
	out := fs.String("out", "", "archive to write (required)")
	repoList := fs.String("repo-list", "", "also write e2e.test's KUBE_TEST_REPO_LIST file here")
	_ = fs.Parse(args)
	if src.Kubernetes == "" || *out == "" {
		return fmt.Errorf("-kubernetes-src and -out are required")
	}
	work, err := os.MkdirTemp("", "imager-conformance-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(work)
	images, err := imagebuild.ConformanceImages(context.Background(), src, work)
	if err != nil {
		return err
	}
	if *repoList != "" {
		if err := atomicfile.Write(*repoList, []byte(imagebuild.ConformanceRepoList), 0o644); err != nil {
			return err
		}
	}
	return saveImages(*out, images)
}

// saveImages writes images to the docker-save archive out, through a temporary file, and
// prints each image's digest and names.
func saveImages(out string, images map[string]v1.Image) error {
	if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
		return err
	}
	tmp := out + ".tmp"
	defer os.Remove(tmp)
	sums, err := imagebuild.Save(tmp, images)
	if err != nil {
		return err
	}
	if err := os.Rename(tmp, out); err != nil {
		return err
	}
	for _, s := range sums {
		fmt.Printf("%s %s\n", s.Digest, strings.Join(s.Tags, " "))
	}
	return nil
}

// hostLock is the host part of a lock for the given host files: the Go toolchain that built
// this program (the same one builds the payload: make uses one $(GO)) and the Debian packages
// the files come from.
func hostLock(ctx context.Context, files []string) (imagebuild.Lock, error) {
	pkgs, unowned, err := imagebuild.HostPackages(ctx, files)
	if err != nil {
		return imagebuild.Lock{}, err
	}
	return imagebuild.Lock{Toolchain: runtime.Version(), Packages: pkgs, Files: unowned}, nil
}

func readLock(path string) (imagebuild.Lock, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return imagebuild.Lock{}, fmt.Errorf("%w (make images-lock writes it)", err)
	}
	l, err := imagebuild.ParseLock(data)
	if err != nil {
		return imagebuild.Lock{}, fmt.Errorf("%s: %w", path, err)
	}
	return l, nil
}

func lockMismatch(lockPath, what string, diffs []string) error {
	return fmt.Errorf("%s (%s is left as it is):\n  %s\n"+
		"Either build on a machine that matches the lock (hack/setup.sh; the lock's toolchain and deb lines),\n"+
		"or, if the change is intended (a new payload version, a Debian update), record it deliberately with\n"+
		"  make images-lock     (or IMAGES_LOCK=update make images)\n"+
		"and commit %s", what, lockPath, strings.Join(diffs, "\n  "), lockPath)
}

func node(args []string) error {
	fs := flag.NewFlagSet("node", flag.ExitOnError)
	bin := fs.String("bin", "_out/payload/bin", "payload binaries")
	machined := fs.String("machined", "_out/machined", "machined binary")
	bundlePath := fs.String("bundle", "_out/images/bundle.tar", "image bundle archive")
	lockPath := fs.String("lock", "payload/images.lock", "lock file whose host inputs (toolchain, Debian packages) the node image must match; empty: no check")
	tag := fs.String("tag", "plinth/node:dev", "node image name")
	out := fs.String("out", "_out/images/node.tar", "archive to write (load it with docker load)")
	_ = fs.Parse(args)
	work, err := os.MkdirTemp("", "imager-node-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(work)
	r, err := imagebuild.NewRootfs(filepath.Join(work, "root"))
	if err != nil {
		return err
	}
	ctx := context.Background()
	if err := imagebuild.NodeRootfs(ctx, r, *bin, *machined, *bundlePath); err != nil {
		return err
	}
	if *lockPath != "" {
		locked, err := readLock(*lockPath)
		if err != nil {
			return err
		}
		got, err := hostLock(ctx, r.HostFiles())
		if err != nil {
			return err
		}
		if diffs := locked.HostDiff(got, true); len(diffs) > 0 {
			return lockMismatch(*lockPath, "the build machine differs from the lock, so the node image would too", diffs)
		}
	}
	img, err := imagebuild.Image(imagebuild.ImageSpec{
		Rootfs:     r.Dir,
		Tags:       []string{*tag},
		Entrypoint: []string{"/usr/bin/machined", "--mode", "docker"},
		Env:        []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin"},
		Volumes:    []string{"/var"},
	})
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(*out), 0o755); err != nil {
		return err
	}
	saved, err := imagebuild.Save(*out+".tmp", map[string]v1.Image{*tag: img})
	if err != nil {
		return err
	}
	if err := os.Rename(*out+".tmp", *out); err != nil {
		return err
	}
	fmt.Printf("%s %s\n", saved[0].Digest, *tag)
	return nil
}
