package imagebuild

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/plinthos/plinth/internal/k8s/paths"
)

// Versions names what the bundle's images are tagged with.
type Versions struct {
	Kubernetes, Etcd, CoreDNS, Flannel, Pause, Testbin string
}

// Repository prefixes every bundled image: the images are built here, not pulled.
const Repository = "plinth.local"

// iptables, runc and mount are taken from the build machine (Debian packages installed by
// hack/setup.sh): runc needs cgo and libseccomp, iptables and mount are C programs. They and
// the shared libraries they load are the images' host inputs; payload/images.lock records
// the Debian packages they come from (see HostPackages).
var iptablesLinks = []string{"iptables", "iptables-save", "iptables-restore", "ip6tables", "ip6tables-save", "ip6tables-restore"}

// addIptables copies iptables (nft and legacy back ends) with its extension modules.
func addIptables(ctx context.Context, r *Rootfs) error {
	for _, p := range []string{"/usr/sbin/xtables-nft-multi", "/usr/sbin/xtables-legacy-multi"} {
		if err := r.CopyProgram(ctx, p, p); err != nil {
			return fmt.Errorf("%w (install Debian's iptables package: hack/setup.sh)", err)
		}
	}
	const xtables = "/usr/lib/x86_64-linux-gnu/xtables"
	if err := r.CopyTree(xtables, xtables); err != nil {
		return err
	}
	// The extensions are loaded at run time and bring libraries of their own (libm for
	// the statistic match kube-proxy uses).
	exts, err := filepath.Glob(filepath.Join(xtables, "*.so"))
	if err != nil {
		return err
	}
	for _, ext := range exts {
		if err := r.CopyLibraries(ctx, ext); err != nil {
			return err
		}
	}
	for _, l := range iptablesLinks {
		if err := r.Symlink("xtables-nft-multi", "/usr/sbin/"+l); err != nil {
			return err
		}
		legacy := strings.Replace(l, "tables", "tables-legacy", 1)
		if err := r.Symlink("xtables-legacy-multi", "/usr/sbin/"+legacy); err != nil {
			return err
		}
	}
	return nil
}

func addBase(r *Rootfs) error {
	files := map[string]string{
		"/etc/passwd":        "root:x:0:0:root:/root:/sbin/nologin\nnobody:x:65534:65534:nobody:/nonexistent:/sbin/nologin\n",
		"/etc/group":         "root:x:0:\nnogroup:x:65534:\n",
		"/etc/nsswitch.conf": "hosts: files dns\n",
	}
	for p, c := range files {
		if err := r.WriteFile(p, []byte(c), 0o644); err != nil {
			return err
		}
	}
	return r.WriteFile(CABundlePath, CABundle(), 0o644)
}

// BundleImages builds the images every cluster runs, from the payload binaries in bin and
// the programs in tools (pause, testbin): the Kubernetes control plane and etcd share one
// image (the multicall binary); kubelet, kube-proxy, CoreDNS, flannel, pause and the e2e
// test image have their own. Their layers are zstd (ImageSpec.Zstd: save them with
// SaveOCI). It also returns the host files the images took from the build machine
// (Rootfs.HostFiles).
func BundleImages(ctx context.Context, bin, work string, v Versions) (map[string]v1.Image, []string, error) {
	images := map[string]v1.Image{}
	hostFiles := map[string]bool{}
	build := func(dir string, spec ImageSpec, fill func(*Rootfs) error) error {
		r, err := NewRootfs(filepath.Join(work, dir))
		if err != nil {
			return err
		}
		if err := fill(r); err != nil {
			return fmt.Errorf("image %s: %w", dir, err)
		}
		for _, f := range r.HostFiles() {
			hostFiles[f] = true
		}
		spec.Rootfs, spec.Zstd = r.Dir, true
		img, err := Image(spec)
		if err != nil {
			return err
		}
		for _, t := range spec.Tags {
			images[t] = img
		}
		return nil
	}
	tag := func(n, ver string) string { return Repository + "/" + n + ":" + ver }
	// kubelet and kube-proxy have images of their own, with the binaries built alone (they
	// run on every node, and alone they take less memory than as the multicall). The node
	// runs its own /usr/bin/kubelet; kubelet's image is what machine.kubelet.image names, as
	// another version's is (kubeletbin copies kubelet out of that one). The multicall image
	// keeps the other tags. (Another version's images, KubeImages, are the multicall under
	// every tag.)
	own := []string{tag("kube-proxy", v.Kubernetes), tag("kubelet", v.Kubernetes)}
	kube := slices.DeleteFunc(kubeTags(v.Kubernetes), func(t string) bool { return slices.Contains(own, t) })
	err := build("kube", ImageSpec{Tags: append(kube, tag("etcd", v.Etcd)), Entrypoint: []string{"/usr/bin/kube"}},
		func(r *Rootfs) error { return fillKube(ctx, r, bin, true) })
	if err != nil {
		return nil, nil, err
	}
	err = build("kube-proxy", ImageSpec{Tags: []string{tag("kube-proxy", v.Kubernetes)}, Entrypoint: []string{"/usr/bin/kube-proxy"}}, func(r *Rootfs) error {
		if err := addBase(r); err != nil {
			return err
		}
		if err := r.CopyFile(filepath.Join(bin, "kube-proxy"), "/usr/bin/kube-proxy"); err != nil {
			return err
		}
		return addIptables(ctx, r)
	})
	if err != nil {
		return nil, nil, err
	}
	err = build("kubelet", ImageSpec{Tags: []string{tag("kubelet", v.Kubernetes)}, Entrypoint: []string{"/usr/bin/kubelet"}}, func(r *Rootfs) error {
		return r.CopyFile(filepath.Join(bin, "kubelet"), "/usr/bin/kubelet")
	})
	if err != nil {
		return nil, nil, err
	}
	err = build("coredns", ImageSpec{Tags: []string{tag("coredns", v.CoreDNS)}, Entrypoint: []string{"/usr/bin/coredns"}}, func(r *Rootfs) error {
		if err := addBase(r); err != nil {
			return err
		}
		return r.CopyFile(filepath.Join(bin, "coredns"), "/usr/bin/coredns")
	})
	if err != nil {
		return nil, nil, err
	}
	err = build("flannel", ImageSpec{Tags: []string{tag("flannel", v.Flannel)}, Entrypoint: []string{"/usr/bin/flanneld"}}, func(r *Rootfs) error {
		if err := addBase(r); err != nil {
			return err
		}
		if err := r.CopyFile(filepath.Join(bin, "flanneld"), "/usr/bin/flanneld"); err != nil {
			return err
		}
		return addIptables(ctx, r)
	})
	if err != nil {
		return nil, nil, err
	}
	for _, small := range []struct{ name, ver, file string }{{"pause", v.Pause, "pause"}, {"testbin", v.Testbin, "testbin"}} {
		err = build(small.name, ImageSpec{Tags: []string{tag(small.name, small.ver)}, Entrypoint: []string{"/" + small.file}}, func(r *Rootfs) error {
			return r.CopyFile(filepath.Join(bin, small.file), "/"+small.file)
		})
		if err != nil {
			return nil, nil, err
		}
	}
	files := make([]string, 0, len(hostFiles))
	for f := range hostFiles {
		files = append(files, f)
	}
	sort.Strings(files)
	return images, files, nil
}

// kubeTags are the names of the Kubernetes images of version, which are one image: the
// multicall binary run under each component's name.
func kubeTags(version string) []string {
	var tags []string
	for _, n := range []string{"kube-apiserver", "kube-controller-manager", "kube-scheduler", "kube-proxy", "kubelet"} {
		tags = append(tags, Repository+"/"+n+":"+version)
	}
	return tags
}

// fillKube fills the root of the Kubernetes image: the multicall binary kube with a link per
// component. The bundle's (bundle) has the control plane and etcd (etcdutl and etcd's data
// directory; payload/cmd/kube built without tags); another version's has
// every Kubernetes component, and iptables, as it is kube-proxy's image too.
func fillKube(ctx context.Context, r *Rootfs, bin string, bundle bool) error {
	if err := addBase(r); err != nil {
		return err
	}
	if err := r.CopyFile(filepath.Join(bin, "kube"), "/usr/bin/kube"); err != nil {
		return err
	}
	links := []string{"kubelet", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kube-proxy", "kubectl"}
	if bundle {
		links = []string{"kube-apiserver", "kube-controller-manager", "kube-scheduler", "etcd"}
	}
	for _, l := range links {
		if err := r.Symlink("kube", "/usr/bin/"+l); err != nil {
			return err
		}
	}
	if !bundle {
		return addIptables(ctx, r)
	}
	if err := r.CopyFile(filepath.Join(bin, "etcdutl"), "/usr/bin/etcdutl"); err != nil {
		return err
	}
	return r.Mkdir("/var/lib/etcd", 0o700)
}

// KubeImages builds the Kubernetes images alone (no etcd), of version, from bin/kube: the
// bundle of another Kubernetes version than the node's, which plinthctl upgrade-k8s moves
// a cluster from or to. kube-proxy runs from the multicall there.
func KubeImages(ctx context.Context, bin, work, version string) (map[string]v1.Image, error) {
	r, err := NewRootfs(filepath.Join(work, "kube"))
	if err != nil {
		return nil, err
	}
	if err := fillKube(ctx, r, bin, false); err != nil {
		return nil, fmt.Errorf("image kube: %w", err)
	}
	tags := kubeTags(version)
	img, err := Image(ImageSpec{Rootfs: r.Dir, Tags: tags, Entrypoint: []string{"/usr/bin/kube"}})
	if err != nil {
		return nil, err
	}
	images := map[string]v1.Image{}
	for _, t := range tags {
		images[t] = img
	}
	return images, nil
}

// NodeRootfs fills the node image's root: machined, containerd (ctr a link to it) and runc,
// kubelet (built alone), the CNI plugins, iptables and mount, and the image bundle without
// its kubelet image, which paths.BuiltinImagesFile names instead (the node's kubelet is
// that image's program; the bundle keeps the image for nodes of another version). No
// kubectl: machined applies manifests itself (package apply). kubelet is on the node, not
// only in an image: the node containers of a local cluster then share its pages
// (docs/performance.md).
func NodeRootfs(ctx context.Context, r *Rootfs, bin, machined, bundle string) error {
	if err := addBase(r); err != nil {
		return err
	}
	for _, f := range []struct{ src, dst string }{
		{machined, "/usr/bin/machined"},
		{filepath.Join(bin, "kubelet"), "/usr/bin/kubelet"},
		{filepath.Join(bin, "containerd"), "/usr/bin/containerd"},
		{filepath.Join(bin, "containerd-shim-runc-v2"), "/usr/bin/containerd-shim-runc-v2"},
	} {
		if err := r.CopyFile(f.src, f.dst); err != nil {
			return err
		}
	}
	if err := writeNodeBundle(r, bundle, paths.ImageBundleDir+"/bundle.tar", paths.BuiltinImagesFile, "/usr/bin/kubelet"); err != nil {
		return err
	}
	// ctr is containerd's multicall (payload/cmd/containerd).
	if err := r.Symlink("containerd", "/usr/bin/ctr"); err != nil {
		return err
	}
	for _, p := range []string{"bridge", "host-local", "loopback", "portmap"} {
		if err := r.CopyFile(filepath.Join(bin, p), paths.CNIBinDir+"/"+p); err != nil {
			return err
		}
	}
	if _, err := os.Stat(filepath.Join(bin, "flannel")); err == nil {
		if err := r.CopyFile(filepath.Join(bin, "flannel"), paths.CNIBinDir+"/flannel"); err != nil {
			return err
		}
	}
	if err := addNodeHostPrograms(ctx, r); err != nil {
		return err
	}
	for _, d := range []string{"/var", "/run", "/tmp", "/system", "/etc/kubernetes", "/proc", "/sys", "/dev"} {
		if err := r.Mkdir(d, 0o755); err != nil {
			return err
		}
	}
	return r.WriteFile("/etc/os-release", []byte("NAME=Plinth\nID=plinth\nPRETTY_NAME=\"Plinth\"\n"), 0o644)
}

// addNodeHostPrograms copies the node image's host programs: runc, mount and iptables.
func addNodeHostPrograms(ctx context.Context, r *Rootfs) error {
	for _, p := range []struct{ host, image string }{{"/usr/sbin/runc", "/usr/bin/runc"}, {"/usr/bin/mount", "/usr/bin/mount"}, {"/usr/bin/umount", "/usr/bin/umount"}} {
		if err := r.CopyProgram(ctx, p.host, p.image); err != nil {
			return fmt.Errorf("%w (hack/setup.sh installs runc and mount)", err)
		}
	}
	for _, l := range []string{"mount", "umount"} {
		if err := r.Symlink("/usr/bin/"+l, "/bin/"+l); err != nil {
			return err
		}
	}
	return addIptables(ctx, r)
}

// NodeHostFiles lists the host files the node image takes from the build machine, by
// copying them into a scratch root under work (so that the image bundle's lock can record
// the node image's host inputs too).
func NodeHostFiles(ctx context.Context, work string) ([]string, error) {
	r, err := NewRootfs(filepath.Join(work, "node-host"))
	if err != nil {
		return nil, err
	}
	if err := addNodeHostPrograms(ctx, r); err != nil {
		return nil, err
	}
	return r.HostFiles(), nil
}
