package imagebuild

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// ConformanceSources are the inputs of the images the Kubernetes conformance tests run.
type ConformanceSources struct {
	// Bin holds the test programs built from source (make conformance-bins): agnhost, nnp
	// and sample-apiserver.
	Bin string
	// Payload holds the payload binaries: kube (with etcd compiled in) and pause.
	Payload string
	// Kubernetes is the source tree of the pinned k8s.io/kubernetes module: the test images'
	// own files (agnhost's TLS pair, the kitten and nautilus pages).
	Kubernetes string
}

// ConformanceRegistry is where the conformance test images are named, the registry e2e.test
// is told to use for them (KUBE_TEST_REPO_LIST): the names and tags are upstream's, so that
// e2e.test finds them on the nodes without pulling. Two tests pull even an image that is
// there (pull policy Always): the registry that ConformanceRegistryImage runs on every node
// serves those images at this address.
const ConformanceRegistry = "localhost:5000"

// ConformanceRegistryImage is the node-local registry's image: agnhost's
// fake-registry-server with the images the tests pull always (kitten, agnhost).
const ConformanceRegistryImage = Repository + "/conformance-registry:1"

// registryDir is where fake-registry-server reads what it serves.
const registryDir = "/var/registry"

// ConformanceRepoList is the KUBE_TEST_REPO_LIST file that maps e2e.test's registries to
// where ConformanceImages names its images. The invalid and private registries keep their
// defaults: the tests that use them expect pulls from there to fail.
const ConformanceRepoList = `promoterE2eRegistry: ` + ConformanceRegistry + `
gcRegistry: ` + Repository + `
gcEtcdRegistry: ` + Repository + `
buildImageRegistry: ` + Repository + `/build-image
sigStorageRegistry: ` + Repository + `/sig-storage
dockerLibraryRegistry: ` + Repository + `/library
cloudProviderGcpRegistry: ` + Repository + `/cloud-provider-gcp
`

// debianTools are host programs (Debian packages that hack/setup.sh installs) that the
// tests run inside agnhost and the DNS test image, beside busybox's applets: dig
// (bind9-dnsutils), nc (netcat-openbsd), curl, ip and ss (iproute2), getent (libc-bin) and
// bash.
var debianTools = map[string]string{
	"/usr/bin/dig":    "/usr/bin/dig",
	"/usr/bin/nc":     "/usr/bin/nc",
	"/usr/bin/curl":   "/usr/bin/curl",
	"/usr/sbin/ip":    "/usr/sbin/ip",
	"/usr/bin/ss":     "/usr/bin/ss",
	"/usr/bin/getent": "/usr/bin/getent",
	"/usr/bin/bash":   "/bin/bash",
}

// defaultPath is the images' PATH.
const defaultPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// busybox is Debian's static busybox (busybox-static), whose applets give the images their
// shell and utilities.
const busybox = "/usr/bin/busybox"

// ConformanceImages builds the images the [Conformance] tests of e2e.test run, under the
// names e2e.test asks for once its registries are mapped by ConformanceRepoList. What each
// holds is what the tests use of it, built here from source or Debian packages:
//   - agnhost (2.66.1, and 2.55 for the tests that want the previous one): the agnhost
//     program, dash as sh, busybox's other applets, dig, nc, curl, ip, ss, getent and bash;
//   - kitten and nautilus: agnhost's root with their page, serving it;
//   - glibc-dns-testing: the same root (its dig and getent use glibc);
//   - busybox 1.37.0-2: busybox's applets (Debian's busybox is 1.35);
//   - nginx 1.27.0-2: agnhost's root serving HTTP on port 80 (the tests need a server that
//     runs until stopped, and sh);
//   - nonewprivs: nnp, setuid root;
//   - sample-apiserver: the aggregated API server the aggregator test deploys;
//   - etcd 3.7.0-0: the payload's multicall binary at /usr/local/bin/etcd;
//   - pause 3.10.2: the payload's pause;
//   - the node-local registry (ConformanceRegistryImage).
func ConformanceImages(ctx context.Context, src ConformanceSources, work string) (map[string]v1.Image, error) {
	images := map[string]v1.Image{}
	build := func(dir string, spec ImageSpec, fill ...func(*Rootfs) error) error {
		r, err := NewRootfs(filepath.Join(work, dir))
		if err != nil {
			return err
		}
		for _, f := range fill {
			if err := f(r); err != nil {
				return fmt.Errorf("image %s: %w", dir, err)
			}
		}
		spec.Rootfs = r.Dir
		if spec.Env == nil {
			spec.Env = []string{"PATH=" + defaultPath}
		}
		img, err := Image(spec)
		if err != nil {
			return fmt.Errorf("image %s: %w", dir, err)
		}
		for _, t := range spec.Tags {
			images[t] = img
		}
		return nil
	}
	e2e := func(name, tag string) string { return ConformanceRegistry + "/" + name + ":" + tag }
	agnhost := func(r *Rootfs) error { return fillAgnhost(ctx, r, src) }
	entry := []string{"/agnhost"}
	steps := []struct {
		dir  string
		spec ImageSpec
		fill []func(*Rootfs) error
	}{
		{"agnhost", ImageSpec{Tags: []string{e2e("agnhost", "2.66.1"), e2e("agnhost", "2.55")}, Entrypoint: entry, Cmd: []string{"pause"}}, []func(*Rootfs) error{agnhost}},
		{"kitten", ImageSpec{Tags: []string{e2e("kitten", "1.8")}, Entrypoint: entry, Cmd: []string{"test-webserver"}},
			[]func(*Rootfs) error{agnhost, page(src, "kitten")}},
		{"nautilus", ImageSpec{Tags: []string{e2e("nautilus", "1.8")}, Entrypoint: entry, Cmd: []string{"test-webserver"}},
			[]func(*Rootfs) error{agnhost, page(src, "nautilus")}},
		{"glibc-dns-testing", ImageSpec{Tags: []string{e2e("glibc-dns-testing", "2.1.1")}, Cmd: []string{"sleep", "3600"}}, []func(*Rootfs) error{agnhost}},
		{"nginx", ImageSpec{Tags: []string{e2e("nginx", "1.27.0-2")}, Entrypoint: entry, Cmd: []string{"netexec", "--http-port=80"}}, []func(*Rootfs) error{agnhost}},
		{"busybox", ImageSpec{Tags: []string{e2e("busybox", "1.37.0-2")}, Cmd: []string{"sh"}}, []func(*Rootfs) error{
			func(r *Rootfs) error { return addBusybox(ctx, r) },
		}},
		{"nonewprivs", ImageSpec{Tags: []string{e2e("nonewprivs", "1.4")}, Cmd: []string{"nnp"}}, []func(*Rootfs) error{
			func(r *Rootfs) error {
				if err := addBase(r); err != nil {
					return err
				}
				if err := r.CopyFile(filepath.Join(src.Bin, "nnp"), "/usr/local/bin/nnp"); err != nil {
					return err
				}
				// The test checks that no_new_privs stops this setuid program from gaining root.
				return os.Chmod(r.host("/usr/local/bin/nnp"), os.ModeSetuid|0o755)
			},
		}},
		{"sample-apiserver", ImageSpec{Tags: []string{e2e("sample-apiserver", "1.29.2")}, Entrypoint: []string{"/sample-apiserver"}}, []func(*Rootfs) error{
			addBase,
			func(r *Rootfs) error {
				return r.CopyFile(filepath.Join(src.Bin, "sample-apiserver"), "/sample-apiserver")
			},
		}},
		{"etcd", ImageSpec{Tags: []string{Repository + "/etcd:3.7.0-0"}, Entrypoint: []string{"/usr/local/bin/etcd"}}, []func(*Rootfs) error{
			addBase,
			func(r *Rootfs) error {
				if err := r.CopyFile(filepath.Join(src.Payload, "kube"), "/usr/bin/kube"); err != nil {
					return err
				}
				// The multicall binary runs the component its name says.
				return r.Symlink("/usr/bin/kube", "/usr/local/bin/etcd")
			},
		}},
		{"pause", ImageSpec{Tags: []string{Repository + "/pause:3.10.2"}, Entrypoint: []string{"/pause"}}, []func(*Rootfs) error{
			func(r *Rootfs) error { return r.CopyFile(filepath.Join(src.Payload, "pause"), "/pause") },
		}},
	}
	for _, s := range steps {
		if err := build(s.dir, s.spec, s.fill...); err != nil {
			return nil, err
		}
	}
	// The registry serves the images the tests pull even though the nodes have them: the
	// ImageVolume test's kitten and the PodCertificate mTLS test's agnhost.
	served := map[string]v1.Image{"kitten:1.8": images[e2e("kitten", "1.8")], "agnhost:2.66.1": images[e2e("agnhost", "2.66.1")]}
	err := build("registry", ImageSpec{Tags: []string{ConformanceRegistryImage}, Entrypoint: entry, Cmd: []string{"fake-registry-server", "--port", "5000"}},
		agnhost, func(r *Rootfs) error { return writeRegistry(r, served) })
	if err != nil {
		return nil, err
	}
	return images, nil
}

// writeRegistry lays images (by NAME:TAG) out under registryDir as fake-registry-server
// reads them: NAME/manifests/TAG holds the manifest's digest, and the manifest, the
// configuration and the (compressed) layers are NAME/{manifests,blobs}/sha256/XX/HASH/data.
func writeRegistry(r *Rootfs, images map[string]v1.Image) error {
	for ref, img := range images {
		name, tag, ok := strings.Cut(ref, ":")
		if !ok || img == nil {
			return fmt.Errorf("registry: no image %s", ref)
		}
		dir := registryDir + "/" + name
		blob := func(kind string, d v1.Hash, data io.Reader) error {
			p := r.host(fmt.Sprintf("%s/%s/%s/%s/%s/data", dir, kind, d.Algorithm, d.Hex[:2], d.Hex))
			if err := mkdirAll(filepath.Dir(p)); err != nil {
				return err
			}
			f, err := os.OpenFile(p, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o644)
			if err != nil {
				return err
			}
			if _, err := io.Copy(f, data); err != nil {
				f.Close()
				return err
			}
			return f.Close()
		}
		manifest, err := img.RawManifest()
		if err != nil {
			return err
		}
		digest, err := img.Digest()
		if err != nil {
			return err
		}
		if err := blob("manifests", digest, bytes.NewReader(manifest)); err != nil {
			return err
		}
		if err := r.WriteFile(dir+"/manifests/"+tag, []byte(digest.String()), 0o644); err != nil {
			return err
		}
		err = eachBlob(img, func(d v1.Hash, _ int64, _ bool, open func() (io.ReadCloser, error)) error {
			rc, err := open()
			if err != nil {
				return err
			}
			defer rc.Close()
			return blob("blobs", d, rc)
		})
		if err != nil {
			return fmt.Errorf("registry: %s: %w", ref, err)
		}
	}
	return nil
}

// fillAgnhost fills agnhost's root: the program, the TLS pair its porter serves, the
// tools, a user 1000 and a group 50000 that some tests run as, and the directories the
// tests write to.
func fillAgnhost(ctx context.Context, r *Rootfs, src ConformanceSources) error {
	if err := addBusybox(ctx, r); err != nil {
		return err
	}
	if err := r.CopyFile(filepath.Join(src.Bin, "agnhost"), "/agnhost"); err != nil {
		return err
	}
	if err := r.Symlink("agnhost", "/agnhost-2"); err != nil {
		return err
	}
	for _, f := range []string{"localhost.crt", "localhost.key"} {
		if err := r.CopyFile(filepath.Join(src.Kubernetes, "test/images/agnhost/porter", f), "/"+f); err != nil {
			return err
		}
	}
	for host, image := range debianTools {
		if err := r.CopyProgram(ctx, host, image); err != nil {
			return fmt.Errorf("%w (install the Debian packages of hack/setup.sh)", err)
		}
	}
	// Debian's busybox runs its own applets in preference to the programs in PATH (it is
	// built with FEATURE_SH_STANDALONE), so its sh would run busybox's nc, which lacks the
	// options the tests pass (-v; -u with -w). dash is the shell here, as on Debian.
	if err := r.CopyProgram(ctx, "/usr/bin/dash", "/bin/sh"); err != nil {
		return err
	}
	if err := r.WriteFile("/etc/passwd", []byte("root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/sbin/nologin\nuser:x:1000:1000::/home/user:/bin/sh\n"), 0o644); err != nil {
		return err
	}
	if err := r.WriteFile("/etc/group", []byte("root:x:0:\nnogroup:x:65534:\nuser:x:1000:\ntestgroup:x:50000:\n"), 0o644); err != nil {
		return err
	}
	return r.Mkdir("/uploads", 0o777)
}

// page adds the kitten or nautilus page that test-webserver serves.
func page(src ConformanceSources, name string) func(*Rootfs) error {
	return func(r *Rootfs) error {
		html := filepath.Join(src.Kubernetes, "test/images", name, "html")
		if err := r.CopyFile(filepath.Join(html, name+".jpg"), "/"+name+".jpg"); err != nil {
			return err
		}
		return r.CopyFile(filepath.Join(html, "data.json"), "/data.json")
	}
}

// addBusybox adds the base files, busybox and a link in /bin for each of its applets, and a
// /tmp anyone may write to.
func addBusybox(ctx context.Context, r *Rootfs) error {
	if err := addBase(r); err != nil {
		return err
	}
	if err := r.CopyFile(busybox, "/bin/busybox"); err != nil {
		return fmt.Errorf("%w (install Debian's busybox-static: hack/setup.sh)", err)
	}
	out, err := exec.CommandContext(ctx, busybox, "--list").Output()
	if err != nil {
		return fmt.Errorf("busybox --list: %w", err)
	}
	for _, applet := range strings.Fields(string(out)) {
		if applet == "busybox" {
			continue
		}
		if err := r.Symlink("busybox", "/bin/"+applet); err != nil {
			return err
		}
	}
	for _, d := range []string{"/usr/bin", "/usr/sbin", "/sbin"} {
		if err := r.Mkdir(d, 0o755); err != nil {
			return err
		}
	}
	if err := r.Mkdir("/tmp", 0o777); err != nil {
		return err
	}
	return os.Chmod(r.host("/tmp"), os.ModeSticky|0o777)
}
