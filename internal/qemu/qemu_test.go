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
		"-drive file=/os/plinth.iso,format=raw,if=none,id=cd0,media=cdrom,readonly=on -device ide-cd,drive=cd0,bootindex=2"} {
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
