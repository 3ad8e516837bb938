// Package osimage builds what a VM boots Plinth from, out of pinned inputs: the kernel
// (vmlinuz) from the Debian package pinned in boot/kernel.lock, the initramfs (stage-0 init
// and the kernel modules it loads), the root filesystem (squashfs holding machined) and a
// raw GPT disk image with the root filesystem in slot A, the install ISO and the upgrade
// artifact, plus a manifest of what was built.
//
// The parts live in subpackages, one job each: kernellock (the pin), apt (fetching), deb
// (unpacking), kmod (module dependencies), initramfs, rootfs, diskimage.
package osimage

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"

	"github.com/klauspost/compress/zstd"

	"github.com/plinthos/plinth/internal/atomicfile"
	"github.com/plinthos/plinth/internal/imagebuild"
	"github.com/plinthos/plinth/internal/osimage/artifact"
	"github.com/plinthos/plinth/internal/osimage/diskimage"
	"github.com/plinthos/plinth/internal/osimage/esp"
	"github.com/plinthos/plinth/internal/osimage/ext4img"
	"github.com/plinthos/plinth/internal/osimage/initramfs"
	"github.com/plinthos/plinth/internal/osimage/iso"
	"github.com/plinthos/plinth/internal/osimage/kernellock"
	"github.com/plinthos/plinth/internal/osimage/kmod"
	"github.com/plinthos/plinth/internal/osimage/rootfs"
)

// Output file names, in Options.OutDir.
const (
	VmlinuzFile   = "vmlinuz"
	InitramfsFile = "initramfs.img"
	RootfsFile    = "rootfs.squashfs"
	DiskFile      = "disk.raw"
	ISOFile       = "plinth.iso"
	// UpgradeFile is the upgrade artifact (internal/osimage/artifact) of the kernel,
	// initramfs and root filesystem: what `plinthctl upgrade --image` sends.
	UpgradeFile  = "upgrade.tar"
	ManifestFile = "manifest.json"
)

// NoCABundle as Options.CABundle leaves the CA roots out of the root filesystem.
const NoCABundle = "none"

// Profiles of the root filesystem.
const (
	// ProfileOS is the OS alone: machined, no Kubernetes payload.
	ProfileOS = "os"
	// ProfileK8s adds the Kubernetes payload of the Docker node image (kubelet, containerd,
	// runc, iptables, CNI plugins, the image bundle) and the kernel modules it needs.
	ProfileK8s = "k8s"
)

// DefaultModules are the modules the initramfs loads on a QEMU (virtio) machine: the disk,
// network, entropy and console devices, the root filesystem, fw_cfg (where QEMU hands the
// machine config), ext4 for STATE and EPHEMERAL, 8021q for machine.network's VLANs, and the
// ACPI button and evdev for the power button (the node has no modprobe yet: what machined
// needs is loaded here), the CD-ROM (virtio-scsi), ISO 9660 and loop devices that boot
// the install media, efivarfs and FAT for the slots' boot entries, and softdog, the
// software watchdog a hung boot resets on (internal/watchdog). Built-in ones are skipped.
var DefaultModules = []string{"virtio_pci", "virtio_blk", "virtio_net", "virtio_rng", "virtio_console", "squashfs", "qemu_fw_cfg", "ext4", "8021q", "button", "evdev",
	"virtio_scsi", "sr_mod", "isofs", "loop", "efivarfs", "vfat", "nls_cp437", "nls_ascii", "softdog"}

// K8sModules are the modules the Kubernetes profile adds to the initramfs (stage 0 loads
// them all: the node has no modprobe, so nothing is loaded on demand): overlayfs for
// containerd, the bridge, veth and VXLAN (flannel) links, bridge netfilter, and the
// netfilter tables and matches of kube-proxy, the CNI plugins and flannel (iptables-nft).
var K8sModules = []string{"overlay", "br_netfilter", "bridge", "veth", "vxlan", "tun", "dummy",
	"nf_conntrack", "nf_nat", "nf_tables", "nft_compat", "nft_chain_nat", "nft_ct", "nft_masq", "nft_nat", "nft_redir",
	"nft_reject_inet", "nft_reject_ipv4", "nft_limit", "nft_fib_inet", "nf_conntrack_netlink",
	"xt_conntrack", "xt_MASQUERADE", "xt_addrtype", "xt_comment", "xt_mark", "xt_multiport", "xt_nat", "xt_tcpudp",
	"xt_statistic", "xt_physdev", "xt_REDIRECT", "xt_recent", "xt_limit", "xt_CT", "ipt_REJECT", "ip6t_REJECT",
	"ip_tables", "iptable_nat", "iptable_filter", "iptable_mangle", "ip6_tables", "ip6table_nat", "ip6table_filter", "ip6table_mangle"}

// Options say what to build from what.
type Options struct {
	Lock string // path of boot/kernel.lock
	// BootloaderLock is the path of boot/bootloader.lock (systemd-boot).
	BootloaderLock string
	CacheDir       string // where downloaded and unpacked packages are kept between builds
	OutDir         string // where the outputs are written
	Init           string // the stage-0 init binary
	Machined       string // the machined binary
	Version        string // the OS version
	Profile        string // ProfileOS or ProfileK8s
	// PayloadBin and Bundle are the Kubernetes profile's payload binaries (make payload) and
	// image bundle (make images).
	PayloadBin, Bundle string
	Modules            []string
	// CABundle is a PEM CA bundle for the root filesystem: empty takes the Mozilla roots of
	// the golang.org/x/crypto/x509roots/fallback module pinned in go.mod (the same on every
	// build machine, unlike the host's own bundle); NoCABundle leaves it out.
	CABundle string
	RootSize int64 // size of each root slot on the disk
	// ArtifactOnly builds the kernel, initramfs, root filesystem and upgrade artifact, and no
	// disk image or ISO (a build that only upgrades nodes).
	ArtifactOnly bool
	Log          *slog.Logger
}

// File is one output in the manifest.
type File struct {
	Size   int64  `json:"size"`
	SHA256 string `json:"sha256"`
}

// Manifest describes a build. It holds no timestamps or paths, so equal inputs give an
// equal manifest.
type Manifest struct {
	Version string `json:"version"`
	Profile string `json:"profile"`
	Kernel  struct {
		Package   string `json:"package"`
		Version   string `json:"version"`
		Release   string `json:"release"`
		DebSHA256 string `json:"debSHA256"`
	} `json:"kernel"`
	// Modules are the initramfs's modules in load order; Builtin the wanted ones compiled in.
	Modules     []string            `json:"modules"`
	Builtin     []string            `json:"builtin,omitempty"`
	Executables []string            `json:"executables"`
	Partitions  []ManifestPartition `json:"partitions"`
	Files       map[string]File     `json:"files"`
}

// ManifestPartition is one partition of disk.raw.
type ManifestPartition struct {
	Name  string `json:"name"`
	Start int64  `json:"start"`
	Size  int64  `json:"size"`
	GUID  string `json:"guid"`
}

// Build makes vmlinuz, initramfs.img, rootfs.squashfs, disk.raw and manifest.json in
// o.OutDir.
func Build(ctx context.Context, o Options) (Manifest, error) {
	var m Manifest
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	log := o.Log
	switch o.Profile {
	case ProfileOS:
	case ProfileK8s:
		for _, p := range []string{o.PayloadBin, o.Bundle} {
			if _, err := os.Stat(p); p == "" || err != nil {
				return m, fmt.Errorf("profile %s needs the payload binaries and the image bundle (make payload images): %q: %v", ProfileK8s, p, err)
			}
		}
	default:
		return m, fmt.Errorf("unknown profile %q (want %s or %s)", o.Profile, ProfileOS, ProfileK8s)
	}
	if o.RootSize == 0 {
		o.RootSize = diskimage.DefaultRootSize
	}
	if o.Modules == nil {
		o.Modules = DefaultModules
	}
	if o.Profile == ProfileK8s {
		o.Modules = append(slices.Clone(o.Modules), K8sModules...)
	}
	m.Version, m.Profile = o.Version, o.Profile
	if err := os.MkdirAll(o.OutDir, 0o755); err != nil {
		return m, fmt.Errorf("output directory: %w", err)
	}

	lock, err := kernellock.Read(o.Lock)
	if err != nil {
		return m, err
	}
	log.Info("kernel", "package", lock.Package, "version", lock.Version)
	k, err := FetchKernel(ctx, lock, o.CacheDir)
	if err != nil {
		return m, err
	}
	m.Kernel.Package, m.Kernel.Version, m.Kernel.Release, m.Kernel.DebSHA256 = lock.Package, lock.Version, lock.ABI(), lock.SHA256
	if err := copyFile(k.Vmlinuz, filepath.Join(o.OutDir, VmlinuzFile)); err != nil {
		return m, err
	}

	ix, err := kmod.ScanTree(k.ModulesDir)
	if err != nil {
		return m, err
	}
	load, builtin, err := ix.Closure(o.Modules)
	if err != nil {
		return m, fmt.Errorf("initramfs modules: %w", err)
	}
	spec := initramfs.Spec{}
	if spec.Init, err = os.ReadFile(o.Init); err != nil {
		return m, fmt.Errorf("stage-0 init: %w", err)
	}
	for _, mod := range load {
		data, err := kmod.ReadFile(filepath.Join(k.ModulesDir, mod.Path))
		if err != nil {
			return m, fmt.Errorf("initramfs modules: %w", err)
		}
		spec.Modules = append(spec.Modules, initramfs.Module{Name: mod.Name, Data: data})
		m.Modules = append(m.Modules, mod.Name)
	}
	m.Builtin = builtin
	if err := writeWith(filepath.Join(o.OutDir, InitramfsFile), func(w io.Writer) error { return initramfs.Write(w, spec) }); err != nil {
		return m, err
	}
	log.Info("initramfs", "modules", len(m.Modules), "builtin", builtin)

	stage, err := os.MkdirTemp(o.OutDir, ".rootfs-")
	if err != nil {
		return m, fmt.Errorf("rootfs staging: %w", err)
	}
	defer os.RemoveAll(stage)
	root := filepath.Join(stage, "root")
	rspec := rootfs.Spec{Machined: o.Machined, Version: o.Version, CABundle: o.CABundle}
	switch o.CABundle {
	case NoCABundle:
		rspec.CABundle = ""
	case "":
		rspec.CABundle = filepath.Join(stage, "ca-certificates.crt")
		if err := os.WriteFile(rspec.CABundle, imagebuild.CABundle(), 0o644); err != nil {
			return m, fmt.Errorf("rootfs: CA bundle: %w", err)
		}
	}
	if o.Profile == ProfileK8s {
		if err := imagebuild.NodeRootfs(ctx, &imagebuild.Rootfs{Dir: root}, o.PayloadBin, o.Machined, o.Bundle); err != nil {
			return m, fmt.Errorf("the Kubernetes payload: %w", err)
		}
		err = rootfs.Write(root, rspec)
	} else {
		err = rootfs.Stage(root, rspec)
	}
	if err != nil {
		return m, err
	}
	if m.Executables, err = rootfs.Executables(root); err != nil {
		return m, err
	}
	squash := filepath.Join(o.OutDir, RootfsFile)
	if err := rootfs.Squash(ctx, root, squash); err != nil {
		return m, err
	}
	log.Info("root filesystem", "executables", m.Executables)
	if o.ArtifactOnly {
		if err := writeArtifact(o, lock); err != nil {
			return m, err
		}
		return m, writeManifest(o, &m, []string{VmlinuzFile, InitramfsFile, RootfsFile, UpgradeFile})
	}

	squashSum, err := fileSHA256(squash)
	if err != nil {
		return m, err
	}
	seed := sha256.Sum256(fmt.Appendf(nil, "plinth disk\x00%s\x00%s\x00%s", o.Version, lock.SHA256, squashSum))
	layout, err := diskimage.NewLayout(o.RootSize, seed[:])
	if err != nil {
		return m, err
	}
	efiPart, _ := layout.Find(diskimage.EFI)
	loaderLock, err := kernellock.ReadPin(o.BootloaderLock)
	if err != nil {
		return m, err
	}
	loader, err := FetchBootloader(ctx, loaderLock, o.CacheDir)
	if err != nil {
		return m, err
	}
	// The FAT library stamps directories with the time it reads from SOURCE_DATE_EPOCH,
	// the reproducible-builds convention, or the clock: fix it unless the caller did.
	if os.Getenv("SOURCE_DATE_EPOCH") == "" {
		if err := os.Setenv("SOURCE_DATE_EPOCH", "315532800"); err != nil { // 1980-01-01
			return m, fmt.Errorf("EFI partition: %w", err)
		}
	}
	efiImg := filepath.Join(stage, "efi.img")
	if err := writeESP(o, loader, efiImg, efiPart.Size); err != nil {
		return m, err
	}
	contents := map[string]string{diskimage.RootA: squash, diskimage.EFI: efiImg}
	for _, name := range []string{diskimage.State, diskimage.Ephemeral} {
		p, _ := layout.Find(name)
		fs := filepath.Join(stage, name+".ext4")
		if err := ext4img.Make(ctx, fs, name, p.Size, diskimage.GUID(seed[:], name+"/fs")); err != nil {
			return m, err
		}
		contents[name] = fs
	}
	if err := diskimage.Write(ctx, filepath.Join(o.OutDir, DiskFile), layout, contents); err != nil {
		return m, err
	}
	if err := writeISO(o, loader, stage, contents, layout); err != nil {
		return m, err
	}
	log.Info("install media", "file", ISOFile)
	if err := writeArtifact(o, lock); err != nil {
		return m, err
	}
	for _, p := range layout.Partitions {
		m.Partitions = append(m.Partitions, ManifestPartition{Name: p.Name, Start: p.Start, Size: p.Size, GUID: p.GUID})
	}
	log.Info("disk image", "size", layout.Size)

	return m, writeManifest(o, &m, FileNames())
}

// writeArtifact writes the upgrade artifact of the kernel, initramfs and root filesystem
// in o.OutDir.
func writeArtifact(o Options, lock kernellock.Lock) error {
	err := writeWith(filepath.Join(o.OutDir, UpgradeFile), func(w io.Writer) error {
		return artifact.Write(w, o.OutDir, artifact.Manifest{Version: o.Version, Profile: o.Profile, KernelRelease: lock.ABI()})
	})
	if err != nil {
		return err
	}
	o.Log.Info("upgrade artifact", "file", UpgradeFile)
	return nil
}

// writeManifest describes the outputs names in m and writes m to manifest.json.
func writeManifest(o Options, m *Manifest, names []string) error {
	m.Files = map[string]File{}
	for _, name := range names {
		f, err := describe(filepath.Join(o.OutDir, name))
		if err != nil {
			return err
		}
		m.Files[name] = f
	}
	b, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return fmt.Errorf("manifest: %w", err)
	}
	if err := atomicfile.Write(filepath.Join(o.OutDir, ManifestFile), append(b, '\n'), 0o644); err != nil {
		return fmt.Errorf("manifest: %w", err)
	}
	return nil
}

// writeISO makes the install media from the built files: the live system boots the
// kernel and initramfs with the squashfs as its root, and installs these with the empty
// STATE and EPHEMERAL file systems (compressed: they are mostly zeros).
func writeISO(o Options, loader, work string, contents map[string]string, layout diskimage.Layout) error {
	root, _ := layout.Find(diskimage.RootA)
	media, err := json.Marshal(iso.Media{Version: o.Version, RootSize: root.Size})
	if err != nil {
		return fmt.Errorf("ISO: %w", err)
	}
	mediaPath := filepath.Join(work, iso.MediaManifest)
	if err := os.WriteFile(mediaPath, media, 0o644); err != nil {
		return fmt.Errorf("ISO: %w", err)
	}
	files := map[string]string{
		iso.MediaKernel:    filepath.Join(o.OutDir, VmlinuzFile),
		iso.MediaInitramfs: filepath.Join(o.OutDir, InitramfsFile),
		iso.MediaLoader:    loader,
		iso.MediaRootfs:    contents[diskimage.RootA],
		iso.MediaManifest:  mediaPath,
	}
	for name, part := range map[string]string{iso.MediaState: diskimage.State, iso.MediaEphemeral: diskimage.Ephemeral} {
		dst := filepath.Join(work, name)
		if err := compress(contents[part], dst); err != nil {
			return err
		}
		files[name] = dst
	}
	spec := iso.Spec{Version: o.Version, Files: map[string]string{}}
	for dst, src := range map[*[]byte]string{&spec.Loader: loader, &spec.Kernel: files[iso.MediaKernel], &spec.Initramfs: files[iso.MediaInitramfs]} {
		if *dst, err = os.ReadFile(src); err != nil {
			return fmt.Errorf("ISO: %w", err)
		}
	}
	for name, src := range files {
		spec.Files["/plinth/"+name] = src
	}
	return iso.Write(filepath.Join(o.OutDir, ISOFile), work, spec)
}

// compress writes src zstd-compressed to dst, reproducibly (one encoder thread).
func compress(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return fmt.Errorf("compress: %w", err)
	}
	defer in.Close()
	return writeWith(dst, func(w io.Writer) error {
		enc, err := zstd.NewWriter(w, zstd.WithEncoderConcurrency(1), zstd.WithEncoderLevel(zstd.SpeedDefault))
		if err != nil {
			return err
		}
		if _, err := io.Copy(enc, in); err != nil {
			enc.Close()
			return err
		}
		return enc.Close()
	})
}

// writeESP makes the EFI system partition's file system at path: systemd-boot (at loader)
// and slot A's entry with the kernel and initramfs just built.
func writeESP(o Options, loader, path string, size int64) error {
	spec := esp.Spec{Entries: []esp.Entry{{Slot: "A", Title: "Plinth " + o.Version, Version: o.Version, Options: esp.KernelArgs("A")}}}
	var err error
	for dst, src := range map[*[]byte]string{
		&spec.Loader:               loader,
		&spec.Entries[0].Kernel:    filepath.Join(o.OutDir, VmlinuzFile),
		&spec.Entries[0].Initramfs: filepath.Join(o.OutDir, InitramfsFile),
	} {
		if *dst, err = os.ReadFile(src); err != nil {
			return fmt.Errorf("EFI partition: %w", err)
		}
	}
	return esp.WriteImage(path, size, spec)
}

// FileNames are the outputs in the order they are built.
func FileNames() []string {
	return slices.Clone([]string{VmlinuzFile, InitramfsFile, RootfsFile, DiskFile, ISOFile, UpgradeFile})
}

func describe(path string) (File, error) {
	info, err := os.Stat(path)
	if err != nil {
		return File{}, fmt.Errorf("manifest: %w", err)
	}
	sum, err := fileSHA256(path)
	if err != nil {
		return File{}, err
	}
	return File{Size: info.Size(), SHA256: sum}, nil
}

func copyFile(src, dst string) error {
	return writeWith(dst, func(w io.Writer) error {
		in, err := os.Open(src)
		if err != nil {
			return err
		}
		defer in.Close()
		_, err = io.Copy(w, in)
		return err
	})
}

// writeWith writes dst through fill, atomically (a temporary file renamed into place).
func writeWith(dst string, fill func(io.Writer) error) error {
	f, err := os.CreateTemp(filepath.Dir(dst), "."+filepath.Base(dst)+".")
	if err != nil {
		return fmt.Errorf("write %s: %w", dst, err)
	}
	defer os.Remove(f.Name())
	if err := fill(f); err != nil {
		f.Close()
		return fmt.Errorf("write %s: %w", dst, err)
	}
	if err := f.Chmod(0o644); err != nil {
		f.Close()
		return fmt.Errorf("write %s: %w", dst, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("write %s: %w", dst, err)
	}
	if err := os.Rename(f.Name(), dst); err != nil {
		return fmt.Errorf("write %s: %w", dst, err)
	}
	return nil
}
