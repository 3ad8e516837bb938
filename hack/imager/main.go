// Command imager builds Plinth's images from the payload: the image bundle every cluster
// runs (docker-save archive plus a lock file of digests) and the node image for Docker.
//
//	imager bundle -bin _out/payload/bin -out _out/images/bundle.tar -lock payload/images.lock
//	imager node -bin _out/payload/bin -machined _out/machined -bundle _out/images/bundle.tar -tag plinth/node:dev -out _out/images/node.tar
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/plinthos/plinth/internal/atomicfile"
	"github.com/plinthos/plinth/internal/imagebuild"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: imager bundle|node [flags]")
		os.Exit(2)
	}
	var err error
	switch os.Args[1] {
	case "bundle":
		err = bundle(os.Args[2:])
	case "node":
		err = node(os.Args[2:])
	default:
		err = fmt.Errorf("unknown command %q: use bundle or node", os.Args[1])
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
	lock := fs.String("lock", "payload/images.lock", "lock file recording each image's digest")
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
	work, err := os.MkdirTemp("", "imager-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(work)
	images, err := imagebuild.BundleImages(context.Background(), *bin, work, v)
	if err != nil {
		return err
	}
	return save(*out, *lock, images)
}

func save(out, lock string, images map[string]v1.Image) error {
	if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
		return err
	}
	saved, err := imagebuild.Save(out+".tmp", images)
	if err != nil {
		return err
	}
	if err := os.Rename(out+".tmp", out); err != nil {
		return err
	}
	var b strings.Builder
	b.WriteString("# Image digests of the bundle, written by hack/imager. Same sources give the same digests.\n")
	for _, s := range saved {
		fmt.Fprintf(&b, "%s %s\n", s.Digest, strings.Join(s.Tags, " "))
	}
	if lock != "" {
		if err := atomicfile.Write(lock, []byte(b.String()), 0o644); err != nil {
			return err
		}
	}
	fmt.Print(b.String())
	return nil
}

func node(args []string) error {
	fs := flag.NewFlagSet("node", flag.ExitOnError)
	bin := fs.String("bin", "_out/payload/bin", "payload binaries")
	machined := fs.String("machined", "_out/machined", "machined binary")
	bundlePath := fs.String("bundle", "_out/images/bundle.tar", "image bundle archive")
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
	if err := imagebuild.NodeRootfs(context.Background(), r, *bin, *machined, *bundlePath); err != nil {
		return err
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
	return save(*out, "", map[string]v1.Image{*tag: img})
}
