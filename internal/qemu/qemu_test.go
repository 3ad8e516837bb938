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
		"-drive file=/os/disk.raw,format=raw,if=virtio,cache=unsafe,snapshot=on",
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
}

func TestArgsOverlayAndReboot(t *testing.T) {
	args, err := Options{Kernel: "k", Initrd: "i", Disk: "/os/disk.raw", Overlay: "/tmp/vm.qcow2", AllowReboot: true}.Args()
	if err != nil {
		t.Fatal(err)
	}
	joined := strings.Join(args, " ")
	if !strings.Contains(joined, "-drive file=/tmp/vm.qcow2,format=qcow2,if=virtio,cache=unsafe") || strings.Contains(joined, "-no-reboot") {
		t.Errorf("args: %s", joined)
	}
}
