// Package qemu runs a Plinth VM with qemu-system-x86_64: direct kernel boot of the OS
// image's kernel and initramfs with its disk, the machine configuration handed over
// through the firmware configuration device, the serial console written to a file, and a
// user-mode network that cannot reach anything off the machine (restrict=on) with ports
// of 127.0.0.1 forwarded to the VM, or a network card on a tap device of the caller's.
// A VM runs attached to its caller (Start) or detached (Options.PIDFile, for VMs that
// outlive plinthctl); KVMUsable decides between KVM and TCG with a canary VM.
package qemu

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Binary is the emulator.
const Binary = "qemu-system-x86_64"

// GuestAddress is the VM's address on QEMU's user-mode network; the host is GuestGateway.
const (
	GuestAddress = "10.0.2.15"
	GuestGateway = "10.0.2.2"
	GuestPrefix  = 24
)

// Forward publishes a TCP port of 127.0.0.1 to a port of the VM.
type Forward struct {
	HostPort, GuestPort int
}

// Options describe a VM.
type Options struct {
	// Kernel and Initrd, when set, are booted directly (with Append); otherwise the VM boots
	// through UEFI firmware (OVMF) from its disk, then its CD-ROM.
	//
	// Disk is the VM's disk (the OS image, or a blank disk to install to). With Overlay set, the VM's disk is a
	// qcow2 file there of OverlaySize bytes backed by Disk (which stays untouched; the VM
	// sees a larger disk and its writes persist across its reboots); with Snapshot, writes
	// are thrown away when the emulator ends.
	Kernel, Initrd, Disk string
	Overlay              string
	OverlaySize          int64
	Snapshot             bool
	// CDROM is an ISO image attached as a CD-ROM (virtio-scsi: Debian's cloud kernel has no
	// AHCI driver), booted when the disk is not
	// bootable.
	CDROM string
	// Vars is the VM's own copy of the firmware's variable store, made from OVMF's template
	// when missing; needed for a firmware boot.
	Vars string
	// AllowReboot lets the guest reboot; otherwise a reboot (or a kernel panic) ends the
	// emulator.
	AllowReboot bool
	// Append is added to the kernel command line after the console settings.
	Append string
	// MemoryMB and CPUs size the VM (defaults 1024 and 1).
	MemoryMB, CPUs int
	// FirmwareFiles are files handed to the VM through fw_cfg, by name (such as
	// opt/plinth/config).
	FirmwareFiles map[string]string
	// Forwards are the published ports.
	Forwards []Forward
	// Tap, when set, puts the VM's network card on that tap device (created beforehand, in
	// the emulator's network namespace) instead of the user-mode network; Forwards must
	// then be empty. What the tap reaches is the tap's business: Plinth's local clusters
	// join the taps to a bridge with no way off the machine (internal/vmnet).
	Tap string
	// MAC is the network card's address; empty leaves QEMU's default, which is the same
	// for every VM (so VMs sharing a bridge need their own).
	MAC string
	// PIDFile, when set, detaches the emulator: it daemonises once the VM is set up (the
	// command then returns) and writes its process id there. A detached emulator has no
	// display and outlives whoever started it.
	PIDFile string
	// ConsoleLog receives the serial console.
	ConsoleLog string
	// KVM uses hardware acceleration; otherwise TCG (software emulation).
	KVM bool
	// QMP is the path of the emulator's control socket (QMP), for PowerDown; empty: none.
	QMP string
}

// Args returns the emulator's arguments for o.
func (o Options) Args() ([]string, error) {
	if o.Disk == "" {
		return nil, errors.New("a VM needs a disk")
	}
	if (o.Kernel == "") != (o.Initrd == "") {
		return nil, errors.New("a direct kernel boot needs both a kernel and an initramfs")
	}
	if o.Kernel == "" && o.Vars == "" {
		return nil, errors.New("a firmware boot needs a variable store (Options.Vars)")
	}
	mem, cpus := o.MemoryMB, o.CPUs
	if mem == 0 {
		mem = 1024
	}
	if cpus == 0 {
		cpus = 1
	}
	accel := "tcg"
	if o.KVM {
		accel = "kvm"
	}
	cmdline := "console=ttyS0 panic=10"
	if o.Append != "" {
		cmdline += " " + o.Append
	}
	drive := "file=" + o.Disk + ",format=raw,if=none,id=disk0,cache=unsafe"
	if o.Overlay != "" {
		drive = "file=" + o.Overlay + ",format=qcow2,if=none,id=disk0,cache=unsafe"
	}
	if o.Snapshot {
		drive += ",snapshot=on"
	}
	netdev := "user,id=net0,restrict=on"
	for _, f := range o.Forwards {
		netdev += fmt.Sprintf(",hostfwd=tcp:127.0.0.1:%d-:%d", f.HostPort, f.GuestPort)
	}
	if o.Tap != "" {
		if len(o.Forwards) > 0 {
			return nil, errors.New("ports are forwarded by the user-mode network only, not on a tap")
		}
		if strings.Contains(o.Tap, ",") {
			return nil, fmt.Errorf("tap %q: a comma in the name cannot be passed to QEMU", o.Tap)
		}
		netdev = "tap,id=net0,ifname=" + o.Tap + ",script=no,downscript=no"
	}
	nic := "virtio-net-pci,netdev=net0"
	if o.MAC != "" {
		if _, err := net.ParseMAC(o.MAC); err != nil || strings.Contains(o.MAC, ",") {
			return nil, fmt.Errorf("MAC address %q is not valid", o.MAC)
		}
		nic += ",mac=" + o.MAC
	}
	args := []string{
		"-machine", "q35,accel=" + accel,
		"-m", strconv.Itoa(mem),
		"-smp", strconv.Itoa(cpus),
	}
	if o.PIDFile != "" {
		args = append(args, "-display", "none") // -nographic cannot be combined with -daemonize
	} else {
		args = append(args, "-nographic")
	}
	args = append(args, "-nodefaults", "-no-user-config")
	if o.Kernel != "" {
		args = append(args, "-kernel", o.Kernel, "-initrd", o.Initrd, "-append", cmdline)
	} else {
		code, _, err := FindOVMF()
		if err != nil {
			return nil, err
		}
		args = append(args, "-drive", "if=pflash,format=raw,readonly=on,file="+code, "-drive", "if=pflash,format=raw,file="+o.Vars)
	}
	args = append(args, "-drive", drive, "-device", "virtio-blk-pci,drive=disk0,bootindex=1")
	if o.CDROM != "" {
		args = append(args, "-drive", "file="+o.CDROM+",format=raw,if=none,id=cd0,media=cdrom,readonly=on",
			"-device", "virtio-scsi-pci,id=scsi0", "-device", "scsi-cd,bus=scsi0.0,drive=cd0,bootindex=2")
	}
	args = append(args,
		"-netdev", netdev,
		"-device", nic,
		"-device", "virtio-rng-pci",
	)
	if !o.AllowReboot {
		args = append(args, "-no-reboot")
	}
	if o.QMP != "" {
		args = append(args, "-qmp", "unix:"+o.QMP+",server=on,wait=off")
	}
	if o.PIDFile != "" {
		args = append(args, "-daemonize", "-pidfile", o.PIDFile)
	}
	if o.ConsoleLog != "" {
		args = append(args, "-serial", "file:"+o.ConsoleLog)
	} else {
		args = append(args, "-serial", "null")
	}
	names := make([]string, 0, len(o.FirmwareFiles))
	for name := range o.FirmwareFiles {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		if strings.Contains(o.FirmwareFiles[name], ",") || strings.Contains(name, ",") {
			return nil, fmt.Errorf("fw_cfg file %s: a comma in the name or path cannot be passed to QEMU", name)
		}
		args = append(args, "-fw_cfg", "name="+name+",file="+o.FirmwareFiles[name])
	}
	return args, nil
}

// OVMF's firmware and variable store template, as Debian's ovmf package installs them.
var ovmfPairs = [][2]string{
	{"/usr/share/OVMF/OVMF_CODE_4M.fd", "/usr/share/OVMF/OVMF_VARS_4M.fd"},
	{"/usr/share/OVMF/OVMF_CODE.fd", "/usr/share/OVMF/OVMF_VARS.fd"},
}

// FindOVMF returns the UEFI firmware for x86-64 VMs and its variable store template.
func FindOVMF() (code, vars string, err error) {
	for _, p := range ovmfPairs {
		_, cerr := os.Stat(p[0])
		_, verr := os.Stat(p[1])
		if cerr == nil && verr == nil {
			return p[0], p[1], nil
		}
	}
	return "", "", errors.New("no UEFI firmware for VMs (OVMF) in /usr/share/OVMF: install it (Debian: apt-get install ovmf)")
}

// makeVars copies OVMF's variable store template to path unless path exists.
func makeVars(path string) error {
	if _, err := os.Stat(path); err == nil {
		return nil
	}
	_, tmpl, err := FindOVMF()
	if err != nil {
		return err
	}
	data, err := os.ReadFile(tmpl)
	if err != nil {
		return fmt.Errorf("firmware variables: %w", err)
	}
	if err := os.WriteFile(path, data, 0o600); err != nil {
		return fmt.Errorf("firmware variables: %w", err)
	}
	return nil
}

// CreateOverlay creates a qcow2 file at path of size bytes (0: the base's size) whose
// unwritten blocks read from the raw image base.
func CreateOverlay(ctx context.Context, path, base string, size int64) error {
	abs, err := filepath.Abs(base)
	if err != nil {
		return err
	}
	args := []string{"create", "-q", "-f", "qcow2", "-F", "raw", "-b", abs, path}
	if size > 0 {
		args = append(args, strconv.FormatInt(size, 10))
	}
	out, err := exec.CommandContext(ctx, "qemu-img", args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("qemu-img create (Debian: qemu-utils): %w: %s", err, strings.TrimSpace(string(out)))
	}
	return nil
}

// Prepare makes the files the VM needs before its emulator starts: the overlay (when
// Options.Overlay is set) and, for a firmware boot, the variable store when missing.
func (o Options) Prepare(ctx context.Context) error {
	if o.Overlay != "" {
		if err := CreateOverlay(ctx, o.Overlay, o.Disk, o.OverlaySize); err != nil {
			return err
		}
	}
	if o.Kernel == "" {
		if err := makeVars(o.Vars); err != nil {
			return err
		}
	}
	return nil
}

// VM is a running emulator.
type VM struct {
	cmd    *exec.Cmd
	done   chan struct{}
	mu     sync.Mutex
	err    error
	output *lockedWriter
	qmp    string
}

// PowerDown presses the VM's ACPI power button (QMP system_powerdown), as a hypervisor's
// "shut down" does. The VM needs Options.QMP.
func (vm *VM) PowerDown(ctx context.Context) error {
	if vm.qmp == "" {
		return errors.New("the VM has no QMP socket (Options.QMP)")
	}
	var d net.Dialer
	conn, err := d.DialContext(ctx, "unix", vm.qmp)
	if err != nil {
		return fmt.Errorf("QMP: %w", err)
	}
	defer conn.Close()
	if deadline, ok := ctx.Deadline(); ok {
		_ = conn.SetDeadline(deadline)
	}
	dec := json.NewDecoder(conn)
	var greeting map[string]any
	if err := dec.Decode(&greeting); err != nil {
		return fmt.Errorf("QMP greeting: %w", err)
	}
	for _, cmd := range []string{"qmp_capabilities", "system_powerdown"} {
		if _, err := fmt.Fprintf(conn, `{"execute":%q}`+"\n", cmd); err != nil {
			return fmt.Errorf("QMP %s: %w", cmd, err)
		}
		for { // skip events until the command's answer
			var resp map[string]any
			if err := dec.Decode(&resp); err != nil {
				return fmt.Errorf("QMP %s: %w", cmd, err)
			}
			if e, ok := resp["error"]; ok {
				return fmt.Errorf("QMP %s: %v", cmd, e)
			}
			if _, ok := resp["return"]; ok {
				break
			}
		}
	}
	return nil
}

// Start starts the VM. Its emulator's own messages (not the console) are kept for Err.
func Start(ctx context.Context, o Options) (*VM, error) {
	args, err := o.Args()
	if err != nil {
		return nil, err
	}
	if o.PIDFile != "" {
		return nil, errors.New("Start keeps the emulator attached: run a detached one (Options.PIDFile) with Options.Args")
	}
	if _, err := exec.LookPath(Binary); err != nil {
		return nil, fmt.Errorf("%s is not installed (Debian: apt-get install qemu-system-x86): %w", Binary, err)
	}
	if err := o.Prepare(ctx); err != nil {
		return nil, err
	}
	cmd := exec.Command(Binary, args...)
	w := &lockedWriter{}
	cmd.Stdout, cmd.Stderr = w, w
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", Binary, err)
	}
	vm := &VM{cmd: cmd, done: make(chan struct{}), output: w, qmp: o.QMP}
	go func() {
		err := cmd.Wait()
		vm.mu.Lock()
		vm.err = err
		vm.mu.Unlock()
		close(vm.done)
	}()
	go func() {
		select {
		case <-ctx.Done():
			vm.Kill()
		case <-vm.done:
		}
	}()
	return vm, nil
}

// Done is closed when the emulator ended (the VM powered off, or was killed).
func (vm *VM) Done() <-chan struct{} { return vm.done }

// Wait waits for the emulator to end, up to timeout, and returns how it ended.
func (vm *VM) Wait(timeout time.Duration) error {
	select {
	case <-vm.done:
	case <-time.After(timeout):
		return fmt.Errorf("the VM is still running after %s", timeout)
	}
	vm.mu.Lock()
	defer vm.mu.Unlock()
	if vm.err != nil {
		return fmt.Errorf("%s: %w: %s", Binary, vm.err, strings.TrimSpace(vm.output.String()))
	}
	return nil
}

// Kill stops the emulator at once.
func (vm *VM) Kill() {
	if vm.cmd.Process != nil {
		_ = vm.cmd.Process.Kill()
	}
}

// lockedWriter keeps the emulator's own output.
type lockedWriter struct {
	mu  sync.Mutex
	buf strings.Builder
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *lockedWriter) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

// ReadConsole returns the console log so far (empty if there is none yet).
func ReadConsole(path string) string {
	data, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	return string(data)
}
