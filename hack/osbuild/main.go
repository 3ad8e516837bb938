// Command osbuild builds the OS image a VM boots Plinth from: vmlinuz, initramfs.img,
// rootfs.squashfs, disk.raw and manifest.json, from the kernel pinned in boot/kernel.lock,
// the stage-0 init and machined (see docs/os-image.md).
//
//	osbuild -init _out/plinth-init -machined _out/machined -version v0.1.0 -out _out/os
//	osbuild -bump            # pin the newest kernel apt offers in boot/kernel.lock
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/plinthos/plinth/internal/osimage"
	"github.com/plinthos/plinth/internal/osimage/diskimage"
)

func main() {
	var o osimage.Options
	var modules string
	var rootMiB int64
	bump := flag.Bool("bump", false, "rewrite the kernel lock to the newest kernel apt offers (run apt-get update first), then exit")
	flag.StringVar(&o.Lock, "lock", "boot/kernel.lock", "the kernel lock file")
	flag.StringVar(&o.BootloaderLock, "bootloader-lock", "boot/bootloader.lock", "the boot loader (systemd-boot) lock file")
	flag.StringVar(&o.CacheDir, "cache", "_out/cache", "download and unpack cache")
	flag.StringVar(&o.OutDir, "out", "_out/os", "output directory")
	flag.StringVar(&o.Init, "init", "_out/plinth-init", "the stage-0 init binary (static)")
	flag.StringVar(&o.Machined, "machined", "_out/machined", "the machined binary (static)")
	flag.StringVar(&o.Version, "version", "dev", "the OS version, written to /etc/os-release and the manifest")
	flag.StringVar(&o.Profile, "profile", osimage.ProfileOS, "root filesystem profile: os (machined only) or k8s (with the Kubernetes payload: -payload, -bundle)")
	flag.StringVar(&o.PayloadBin, "payload", "_out/payload/bin", "with -profile k8s: the payload binaries (make payload)")
	flag.StringVar(&o.Bundle, "bundle", "_out/images/bundle.tar", "with -profile k8s: the image bundle (make images)")
	flag.StringVar(&modules, "modules", strings.Join(osimage.DefaultModules, ","), "kernel modules the initramfs loads (with their dependencies), comma separated")
	flag.StringVar(&o.CABundle, "ca-bundle", "", "PEM CA bundle for the root filesystem (default: the Mozilla roots of golang.org/x/crypto/x509roots/fallback pinned in go.mod, the same on every build machine; none: leave it out)")
	flag.BoolVar(&o.ArtifactOnly, "artifact-only", false, "build the upgrade artifact (kernel, initramfs, root filesystem) only: no disk image, no ISO")
	flag.Int64Var(&rootMiB, "root-size", diskimage.DefaultRootSize/diskimage.MiB, "size of each root slot (ROOT-A, ROOT-B) in MiB")
	flag.Parse()
	if flag.NArg() > 0 {
		fmt.Fprintf(os.Stderr, "osbuild: unexpected arguments %q\n", flag.Args())
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, o, *bump, modules, rootMiB); err != nil {
		fmt.Fprintln(os.Stderr, "osbuild:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, o osimage.Options, bump bool, modules string, rootMiB int64) error {
	if bump {
		old, bumped, err := osimage.BumpKernel(ctx, o.Lock)
		if err != nil {
			return err
		}
		if old == bumped {
			fmt.Printf("%s: %s %s is already the newest\n", o.Lock, bumped.Package, bumped.Version)
			return nil
		}
		fmt.Printf("%s: %s %s -> %s %s (sha256 %s)\n", o.Lock, old.Package, old.Version, bumped.Package, bumped.Version, bumped.SHA256)
		return nil
	}
	o.Modules = nil
	for m := range strings.SplitSeq(modules, ",") {
		if m = strings.TrimSpace(m); m != "" {
			o.Modules = append(o.Modules, m)
		}
	}
	o.RootSize = rootMiB * diskimage.MiB
	o.Log = slog.New(slog.NewTextHandler(os.Stderr, nil)).With("component", "osbuild")
	m, err := osimage.Build(ctx, o)
	if err != nil {
		return err
	}
	fmt.Printf("Plinth %s (profile %s), kernel %s (%s %s)\n", m.Version, m.Profile, m.Kernel.Release, m.Kernel.Package, m.Kernel.Version)
	for _, name := range osimage.FileNames() {
		f, ok := m.Files[name]
		if !ok {
			continue // -artifact-only
		}
		fmt.Printf("  %-16s %10s  sha256 %s\n", name, size(f.Size), f.SHA256)
	}
	fmt.Printf("  initramfs modules (load order, %d): %s\n", len(m.Modules), strings.Join(m.Modules, " "))
	if len(m.Builtin) > 0 {
		fmt.Printf("  built into the kernel: %s\n", strings.Join(m.Builtin, " "))
	}
	fmt.Printf("  root filesystem: %s, %d executable(s): %s\n", size(m.Files[osimage.RootfsFile].Size), len(m.Executables), strings.Join(m.Executables, " "))
	for _, p := range m.Partitions {
		fmt.Printf("  partition %-7s at %5d MiB, %5d MiB\n", p.Name, p.Start/diskimage.MiB, p.Size/diskimage.MiB)
	}
	fmt.Printf("written to %s (manifest.json)\n", o.OutDir)
	return nil
}

func size(n int64) string {
	switch {
	case n >= diskimage.MiB:
		return fmt.Sprintf("%.1f MiB", float64(n)/float64(diskimage.MiB))
	case n >= 1024:
		return fmt.Sprintf("%.1f KiB", float64(n)/1024)
	}
	return fmt.Sprintf("%d B", n)
}
