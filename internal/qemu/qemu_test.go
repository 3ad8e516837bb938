package qemu

import (
	"slices"
	"strings"
	"testing"
)

func TestArgs(t *testing.T) {
	args, err := Options{
		Kernel: "/os/vmlinuz", Initrd: "/os/initramfs.img", Disk: "/os/disk.raw", Snapshot: true,
		Append: "plinth.debug", FirmwareFiles: map[string]string{"opt/plinth/config": "/tmp/cp.yaml"},
		Forwards: []Forward{{HostPort: 40000, GuestPort: 50000}}, ConsoleLog: "/tmp/console.log",
	}.Args()
	if err != nil {
		t.Fatal(err)
	}
	joined := strings.Join(args, " ")
	for _, want := range []string{
		"-machine q35,accel=tcg", "-m 1024", "-smp 1", "-no-reboot",
		"-append console=ttyS0 panic=10 plinth.debug",
		"-drive file=/os/disk.raw,format=raw,if=none,id=disk0,cache=unsafe,snapshot=on", "-device virtio-blk-pci,drive=disk0,bootindex=1",
		"-netdev user,id=net0,restrict=on,hostfwd=tcp:127.0.0.1:40000-:50000",
		"-fw_cfg name=opt/plinth/config,file=/tmp/cp.yaml",
		"-serial file:/tmp/console.log",
	} {
		if !strings.Contains(joined, want) {
			t.Errorf("args lack %q:\n%s", want, joined)
		}
	}
	// Nothing may leave the machine: the user-mode network is restricted, and there is
	// no other network device.
	if n := strings.Count(joined, "-netdev"); n != 1 || !slices.Contains(args, "-nodefaults") {
		t.Errorf("network devices: %s", joined)
	}
}

func TestArgsRefuse(t *testing.T) {
	if _, err := (Options{Kernel: "k", Initrd: "i"}).Args(); err == nil {
		t.Error("a VM without a disk")
	}
	if _, err := (Options{Kernel: "k", Initrd: "i", Disk: "d", FirmwareFiles: map[string]string{"opt/x": "/tmp/a,b"}}).Args(); err == nil {
		t.Error("a comma in a fw_cfg path")
	}
	if _, err := (Options{Kernel: "k", Disk: "d"}).Args(); err == nil {
		t.Error("a kernel without an initramfs")
	}
	if _, err := (Options{Disk: "d"}).Args(); err == nil {
		t.Error("a firmware boot without a variable store")
	}
}

func TestArgsFirmwareBoot(t *testing.T) {
	if _, _, err := FindOVMF(); err != nil {
		t.Skip(err)
	}
	args, err := Options{Disk: "/vm/disk.qcow2", Vars: "/vm/vars.fd", CDROM: "/os/plinth.iso"}.Args()
	if err != nil {
		t.Fatal(err)
	}
	joined := strings.Join(args, " ")
	for _, want := range []string{"if=pflash,format=raw,readonly=on,file=/usr/share/OVMF/", "-drive if=pflash,format=raw,file=/vm/vars.fd",
		"-drive file=/os/plinth.iso,format=raw,if=none,id=cd0,media=cdrom,readonly=on -device virtio-scsi-pci,id=scsi0 -device scsi-cd,bus=scsi0.0,drive=cd0,bootindex=2"} {
		if !strings.Contains(joined, want) {
			t.Errorf("args lack %q:\n%s", want, joined)
		}
	}
	if strings.Contains(joined, "-kernel") || strings.Contains(joined, "-append") {
		t.Errorf("a firmware boot with a kernel: %s", joined)
	}
}

func TestArgsOverlayAndReboot(t *testing.T) {
	args, err := Options{Kernel: "k", Initrd: "i", Disk: "/os/disk.raw", Overlay: "/tmp/vm.qcow2", AllowReboot: true}.Args()
	if err != nil {
		t.Fatal(err)
	}
	joined := strings.Join(args, " ")
	if !strings.Contains(joined, "-drive file=/tmp/vm.qcow2,format=qcow2,if=none,id=disk0,cache=unsafe") || strings.Contains(joined, "-no-reboot") {
		t.Errorf("args: %s", joined)
	}
}

func TestArgsTapDetached(t *testing.T) {
	args, err := Options{Disk: "/os/disk.raw", Overlay: "/vm/n1.qcow2", Vars: "/vm/n1-vars.fd", Kernel: "k", Initrd: "i",
		Tap: "tap1", MAC: "52:54:00:12:34:01", PIDFile: "/vm/n1.pid", ConsoleLog: "/vm/n1.log", KVM: true}.Args()
	if err != nil {
		t.Fatal(err)
	}
	joined := strings.Join(args, " ")
	for _, want := range []string{
		"-machine q35,accel=kvm",
		"-netdev tap,id=net0,ifname=tap1,script=no,downscript=no -device virtio-net-pci,netdev=net0,mac=52:54:00:12:34:01",
		"-display none", "-daemonize -pidfile /vm/n1.pid", "-serial file:/vm/n1.log",
	} {
		if !strings.Contains(joined, want) {
			t.Errorf("args lack %q:\n%s", want, joined)
		}
	}
	// A detached emulator has no terminal; there is no user-mode network beside the tap.
	if strings.Contains(joined, "-nographic") || strings.Contains(joined, "user,") || strings.Count(joined, "-netdev") != 1 {
		t.Errorf("args: %s", joined)
	}
}

func TestArgsTapRefuse(t *testing.T) {
	base := Options{Kernel: "k", Initrd: "i", Disk: "d"}
	for name, o := range map[string]Options{
		"forwards on a tap": {Tap: "tap0", Forwards: []Forward{{HostPort: 1, GuestPort: 2}}},
		"comma in the tap":  {Tap: "tap0,x"},
		"bad MAC":           {MAC: "52:54:00:12:34"},
		"comma in the MAC":  {MAC: "52:54:00:12:34:56,x"},
	} {
		o.Kernel, o.Initrd, o.Disk = base.Kernel, base.Initrd, base.Disk
		if _, err := o.Args(); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func TestStartRefusesDetached(t *testing.T) {
	if _, err := Start(t.Context(), Options{Kernel: "k", Initrd: "i", Disk: "d", PIDFile: "/tmp/x.pid"}); err == nil {
		t.Error("Start ran a detached VM")
	}
}

func TestCanaryArgs(t *testing.T) {
	joined := strings.Join(CanaryArgs("/os/vmlinuz"), " ")
	for _, want := range []string{"accel=kvm", "-no-reboot", "-kernel /os/vmlinuz", "panic=-1", "-serial stdio", "-nodefaults"} {
		if !strings.Contains(joined, want) {
			t.Errorf("canary args lack %q: %s", want, joined)
		}
	}
	if strings.Contains(joined, "-netdev") || strings.Contains(joined, "-initrd") {
		t.Errorf("the canary has a network or an initramfs: %s", joined)
	}
}
