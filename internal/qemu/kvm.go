package qemu

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"time"
)

// KVMDevice is the kernel's hardware virtualisation device.
const KVMDevice = "/dev/kvm"

// CanaryTimeout bounds the KVM canary. A kernel under working KVM reaches its panic in
// well under a second (under TCG on our 2-core machines it takes about 3 s); where KVM is
// broken (nested virtualisation that hangs its guests) the canary never gets there.
const CanaryTimeout = 3 * time.Second

// canaryMark is what the canary's console shows when the kernel ran to its end.
const canaryMark = "Kernel panic"

// CanaryArgs are the emulator's arguments of the KVM canary: kernel booted directly
// without an initramfs, so it panics at once for want of a root file system, and the
// emulator exits (-no-reboot) with the console on its standard output.
func CanaryArgs(kernel string) []string {
	return []string{
		"-machine", "q35,accel=kvm", "-m", "128", "-smp", "1",
		"-display", "none", "-nodefaults", "-no-user-config", "-no-reboot",
		"-kernel", kernel, "-append", "console=ttyS0 panic=-1 quiet",
		"-serial", "stdio", "-monitor", "none",
	}
}

// KVMUsable says whether VMs should use KVM here: /dev/kvm opens for reading and writing
// and a canary VM (CanaryArgs with kernel, the OS image's) runs its kernel to the end within
// CanaryTimeout. When it says no, reason says why (for a line of progress).
func KVMUsable(ctx context.Context, kernel string) (ok bool, reason string) {
	f, err := os.OpenFile(KVMDevice, os.O_RDWR, 0)
	if err != nil {
		return false, fmt.Sprintf("%s cannot be opened: %v", KVMDevice, err)
	}
	f.Close()
	ctx, cancel := context.WithTimeout(ctx, CanaryTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, Binary, CanaryArgs(kernel)...)
	start := time.Now()
	out, err := cmd.CombinedOutput()
	switch {
	case errors.Is(ctx.Err(), context.DeadlineExceeded):
		return false, fmt.Sprintf("a canary VM under KVM did not boot its kernel within %s", CanaryTimeout)
	case err != nil:
		return false, fmt.Sprintf("a canary VM under KVM failed: %v: %s", err, lastLine(string(out)))
	case !strings.Contains(string(out), canaryMark):
		return false, fmt.Sprintf("a canary VM under KVM ended without running its kernel: %s", lastLine(string(out)))
	}
	return true, fmt.Sprintf("a canary VM under KVM ran its kernel in %s", time.Since(start).Round(time.Millisecond))
}

// lastLine is the last non-empty line of s.
func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return strings.TrimSpace(lines[len(lines)-1])
}
