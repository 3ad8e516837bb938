//go:build qemu

// Package qemu_test boots the OS image in QEMU VMs and drives the node through its API,
// as a user would. It needs qemu-system-x86_64 and the image of `make image-os`; run it
// with `make e2e-qemu`.
package qemu_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/plinthos/plinth/internal/qemu"
)

type env struct {
	t         testing.TB
	dir       string
	plinthctl string
	image     string
}

func setup(t testing.TB) *env {
	t.Helper()
	e := &env{t: t, dir: t.TempDir(), plinthctl: os.Getenv("PLINTHCTL"), image: os.Getenv("OS_IMAGE")}
	if e.plinthctl == "" || e.image == "" {
		t.Fatal("PLINTHCTL and OS_IMAGE must be set: run `make e2e-qemu`")
	}
	return e
}

func (e *env) run(timeout time.Duration, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, e.plinthctl, args...)
	cmd.Env = append(os.Environ(), "HOME="+e.dir)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

func (e *env) must(timeout time.Duration, args ...string) string {
	e.t.Helper()
	out, err := e.run(timeout, args...)
	if err != nil {
		e.t.Fatalf("plinthctl %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return out
}

func freePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// clusterConfig generates a cluster's configurations named name in e.dir/name and patches
// the control plane's with patch (JSON), returning the directory and the patched file.
func (e *env) clusterConfig(name, patch string) (dir, config string) {
	e.t.Helper()
	dir = filepath.Join(e.dir, name)
	e.must(time.Minute, "gen", "config", name, "https://"+qemu.GuestAddress+":6443", "--install-disk", "/dev/vda", "--output-dir", dir)
	config = filepath.Join(e.dir, name+"-controlplane.yaml")
	// The restricted user-mode network reaches nothing: time synchronisation would poll the
	// default server (pool.ntp.org) in vain, so it is off in every test VM.
	e.must(time.Minute, "machineconfig", "patch", filepath.Join(dir, "controlplane.yaml"), "-o", config,
		"--patch", `{"machine":{"time":{"disabled":true}}}`, "--patch", patch)
	return dir, config
}

// bootArgs writes the plinth.* arguments a VM reads from fw_cfg (opt/plinth/args): the
// maintenance network on QEMU's user network, then more.
func (e *env) bootArgs(name string, more ...string) string {
	e.t.Helper()
	return e.writeArgs(name, append([]string{fmt.Sprintf("plinth.net=eth0:%s/%d", qemu.GuestAddress, qemu.GuestPrefix)}, more...)...)
}

// writeArgs writes the plinth.* arguments a VM reads from fw_cfg (opt/plinth/args).
func (e *env) writeArgs(name string, args ...string) string {
	e.t.Helper()
	p := filepath.Join(e.dir, name)
	if err := os.WriteFile(p, []byte(strings.Join(args, " ")+"\n"), 0o644); err != nil {
		e.t.Fatal(err)
	}
	return p
}

// startVM boots the image's disk through the VM's UEFI firmware with o (the node API
// forwarded to a free port, the console in e.dir; unless o.Disk is set, a copy-on-write
// overlay of the image's disk) and returns the VM, the node API endpoint and the console
// log's path; the VM is killed at the end of the test, its console printed if the test
// failed.
func (e *env) startVM(name string, o qemu.Options) (*qemu.VM, string, string) {
	e.t.Helper()
	port := freePort(e.t)
	if o.Disk == "" {
		o.Disk, o.Overlay = filepath.Join(e.image, "disk.raw"), filepath.Join(e.dir, name+".qcow2")
	}
	o.Vars = filepath.Join(e.dir, name+"-vars.fd")
	o.Forwards = append(o.Forwards, qemu.Forward{HostPort: port, GuestPort: 50000})
	o.ConsoleLog = filepath.Join(e.dir, name+"-console.log")
	ctx, cancel := context.WithCancel(context.Background())
	vm, err := qemu.Start(ctx, o)
	if err != nil {
		cancel()
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() {
		vm.Kill()
		cancel()
		if e.t.Failed() {
			e.t.Logf("console of %s:\n%s", name, qemu.ReadConsole(o.ConsoleLog))
		}
	})
	return vm, "127.0.0.1:" + strconv.Itoa(port), o.ConsoleLog
}

// TestBootOSImage boots the OS-only image with a control-plane configuration handed over
// through fw_cfg, reaches the node API through a forwarded port, reads what the node shows,
// applies a change, reboots and finds the change, the grown EPHEMERAL and the previous
// boot's logs, and powers it off through the API.
func TestBootOSImage(t *testing.T) {
	e := setup(t)
	cfgDir, config := e.clusterConfig("vm", fmt.Sprintf(`{"machine":{"network":{"hostname":"vm-1","interfaces":[{"name":"eth0","addresses":["%s/%d"],"vlans":[{"vlanId":42,"addresses":["192.168.42.2/24"],"mtu":1400}]}]},
		  "sysctls":{"vm.max_map_count":"262144"},"files":[{"path":"/var/lib/plinth-e2e/hello.txt","content":"hello from the config\n"}]}}`,
		qemu.GuestAddress, qemu.GuestPrefix))
	e.must(time.Minute, "validate", "--config", config, "--mode", "metal")

	start := time.Now()
	vm, endpoint, console := e.startVM("vm", qemu.Options{OverlaySize: 6 << 30, AllowReboot: true, QMP: filepath.Join(e.dir, "qmp.sock"),
		FirmwareFiles: map[string]string{"opt/plinth/config": config}})
	pc := filepath.Join(cfgDir, "plinthconfig")
	ctl := func(args ...string) []string {
		return append([]string{"--plinthconfig", pc, "-e", endpoint, "-n", qemu.GuestAddress}, args...)
	}
	waitAPI := func(what string, ok func(version string) bool) string {
		t.Helper()
		deadline := time.Now().Add(5 * time.Minute)
		for {
			// A short try: QEMU accepts the forwarded connection before the guest listens, and
			// a try that started too early would wait out its whole timeout.
			out, err := e.run(5*time.Second, ctl("version")...)
			if err == nil && ok(out) {
				return out
			}
			select {
			case <-vm.Done():
				t.Fatalf("the VM stopped before %s: %v", what, vm.Wait(0))
			default:
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: not within 5 minutes: %v\n%s", what, err, out)
			}
			time.Sleep(2 * time.Second)
		}
	}
	version := waitAPI("the node API answered", func(string) bool { return true })
	t.Logf("power-on to node API answering: %s\n%s", time.Since(start).Round(time.Second), version)
	if !strings.Contains(version, "Platform:  metal") || !strings.Contains(version, "Hostname:  vm-1") {
		t.Errorf("version:\n%s", version)
	}
	services := e.must(time.Minute, ctl("services")...)
	for _, s := range []string{"apid", "trustd"} {
		if !strings.Contains(services, s) {
			t.Errorf("services lack %s:\n%s", s, services)
		}
	}
	if dmesg := e.must(time.Minute, ctl("dmesg")...); !strings.Contains(dmesg, "plinth-init") {
		t.Errorf("dmesg does not show stage 0:\n%s", dmesg)
	}
	// EPHEMERAL (256 MiB in the image) was grown to the 6 GiB disk's end.
	if mounts := e.must(time.Minute, ctl("mounts")...); !strings.Contains(mounts, "/var") || !strings.Contains(mounts, "/system/state") {
		t.Errorf("mounts:\n%s", mounts)
	} else {
		t.Logf("mounts:\n%s", mounts)
	}

	// The hardening defaults are set (machine.sysctls may override them).
	if got := strings.TrimSpace(e.must(time.Minute, ctl("read", "/proc/sys/kernel/kptr_restrict")...)); got != "1" {
		t.Errorf("kernel.kptr_restrict is %q, want the hardening default 1", got)
	}
	// machine.sysctls and machine.files act on metal too.
	if got := strings.TrimSpace(e.must(time.Minute, ctl("read", "/proc/sys/vm/max_map_count")...)); got != "262144" {
		t.Errorf("vm.max_map_count is %q", got)
	}
	if got := e.must(time.Minute, ctl("read", "/var/lib/plinth-e2e/hello.txt")...); got != "hello from the config\n" {
		t.Errorf("the file from the configuration holds %q", got)
	}

	// What the node sees: its links, addresses, routes and disks, as resources.
	links := getSpecs(t, e, ctl("get", "links", "-o", "json"))
	if eth0 := links["eth0"]; eth0 == nil || eth0["up"] != true || eth0["operationalState"] != "up" {
		t.Errorf("get links: eth0 is %v (all: %v)", eth0, links)
	}
	if vlan := links["eth0.42"]; vlan == nil || vlan["kind"] != "vlan" || vlan["mtu"] != float64(1400) || vlan["up"] != true {
		t.Errorf("get links: the VLAN eth0.42 is %v", vlan)
	}
	addrs := getSpecs(t, e, ctl("get", "addresses", "-o", "json"))
	if a := addrs["eth0/"+qemu.GuestAddress+"/24"]; a == nil || a["family"] != "ipv4" {
		t.Errorf("get addresses: %v", addrs)
	}
	if a := addrs["eth0.42/192.168.42.2/24"]; a == nil {
		t.Errorf("get addresses: no VLAN address in %v", addrs)
	}
	if routes := getSpecs(t, e, ctl("get", "routes", "-o", "json")); len(routes) == 0 {
		t.Error("get routes: none")
	}
	disks := getSpecs(t, e, ctl("get", "disks", "-o", "json"))
	vda := disks["vda"]
	if vda == nil || vda["size"] != float64(6<<30) {
		t.Fatalf("get disks: vda is %v", vda)
	}
	var ephemeral float64
	for _, p := range vda["partitions"].([]any) {
		if p := p.(map[string]any); p["label"] == "EPHEMERAL" {
			ephemeral = p["size"].(float64)
		}
	}
	// The image's EPHEMERAL is 256 MiB; on a 6 GiB disk it was grown to the disk's end.
	if ephemeral < 3<<30 {
		t.Errorf("EPHEMERAL is %.0f bytes on a 6 GiB disk: not grown (%v)", ephemeral, vda["partitions"])
	}

	// A change applied now is stored on STATE: after a reboot the node runs with it, not
	// with the configuration fw_cfg still offers.
	changed := filepath.Join(e.dir, "changed.yaml")
	e.must(time.Minute, "machineconfig", "patch", config, "-o", changed, "--patch", `{"machine":{"network":{"hostname":"vm-2"}}}`)
	e.must(time.Minute, ctl("apply-config", "-f", changed, "--mode", "no-reboot")...)
	rebootStart := time.Now()
	t.Logf("reboot --wait:\n%s", e.must(6*time.Minute, ctl("reboot", "--wait", "--timeout", "5m")...))
	t.Logf("reboot to node API answering: %s", time.Since(rebootStart).Round(time.Second))
	if version = e.must(time.Minute, ctl("version")...); !strings.Contains(version, "Hostname:  vm-2") {
		t.Errorf("after the reboot the node does not run the stored configuration:\n%s", version)
	}
	if prev := e.must(time.Minute, ctl("logs", "machined", "--previous")...); !strings.Contains(prev, "node is up") {
		t.Errorf("logs --previous of machined:\n%s", prev)
	}

	// The power button (what a hypervisor's "shut down" presses) powers the machine off
	// cleanly, as `plinthctl shutdown` does.
	pctx, pcancel := context.WithTimeout(context.Background(), time.Minute)
	defer pcancel()
	if err := vm.PowerDown(pctx); err != nil {
		t.Fatalf("press the power button: %v", err)
	}
	if err := vm.Wait(3 * time.Minute); err != nil {
		t.Fatalf("after the power button: %v", err)
	}
	if c := qemu.ReadConsole(console); !strings.Contains(c, "reboot: Power down") || !strings.Contains(c, "power button was pressed") {
		t.Errorf("the console does not show a clean power-off by the power button:\n%s", c)
	}
	t.Logf("powered off by the power button %s after power-on", time.Since(start).Round(time.Second))
}

// getSpecs runs `plinthctl get ... -o json` and returns the resources' specs by ID.
func getSpecs(t *testing.T, e *env, args []string) map[string]map[string]any {
	t.Helper()
	out := e.must(time.Minute, args...)
	dec := json.NewDecoder(strings.NewReader(out))
	specs := map[string]map[string]any{}
	for dec.More() {
		var doc struct {
			Metadata struct {
				ID string `json:"id"`
			} `json:"metadata"`
			Spec map[string]any `json:"spec"`
		}
		if err := dec.Decode(&doc); err != nil {
			t.Fatalf("plinthctl %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		specs[doc.Metadata.ID] = doc.Spec
	}
	return specs
}

// TestMaintenanceMode boots the image without a configuration: the machine waits in
// maintenance mode, refuses another cluster's admin and is refused by a client that was
// given another fingerprint, takes the configuration from this cluster's admin with the
// fingerprint its console shows, and reboots into it.
func TestMaintenanceMode(t *testing.T) {
	e := setup(t)
	cfgDir, config := e.clusterConfig("vm", fmt.Sprintf(`{"machine":{"network":{"hostname":"vm-1","interfaces":[{"name":"eth0","addresses":["%s/%d"]}]}}}`, qemu.GuestAddress, qemu.GuestPrefix))
	pc := filepath.Join(cfgDir, "plinthconfig")
	info := e.must(time.Minute, "--plinthconfig", pc, "config", "info")
	anchor := ""
	for _, f := range strings.Fields(info) {
		if strings.HasPrefix(f, "plinth.trust=") {
			anchor = f
		}
	}
	if anchor == "" {
		t.Fatalf("config info shows no trust anchor:\n%s", info)
	}
	// Another cluster, whose admin must not configure this machine.
	otherDir, _ := e.clusterConfig("other", "{}")

	start := time.Now()
	_, endpoint, console := e.startVM("vm", qemu.Options{AllowReboot: true,
		FirmwareFiles: map[string]string{"opt/plinth/args": e.bootArgs("args", anchor)}})
	// The console says how to configure the machine, with its certificate's fingerprint.
	var fingerprint string
	deadline := time.Now().Add(5 * time.Minute)
	for fingerprint == "" {
		for _, line := range strings.Split(qemu.ReadConsole(console), "\n") {
			if i := strings.Index(line, "--fingerprint "); i >= 0 {
				fingerprint = strings.Fields(line[i+len("--fingerprint "):])[0]
			}
		}
		if time.Now().After(deadline) {
			t.Fatal("the console shows no maintenance mode within 5 minutes")
		}
		time.Sleep(time.Second)
	}
	t.Logf("maintenance mode %s after power-on, fingerprint %s", time.Since(start).Round(time.Second), fingerprint)
	apply := func(plinthconfig, fp string) (string, error) {
		return e.run(time.Minute, "--plinthconfig", plinthconfig, "apply-config", "--maintenance", "--fingerprint", fp, "-e", endpoint, "-f", config)
	}
	if out, err := apply(filepath.Join(otherDir, "plinthconfig"), fingerprint); err == nil || !strings.Contains(out, "bad certificate") {
		t.Fatalf("another cluster's admin was not refused in the handshake: %v\n%s", err, out)
	} else {
		t.Logf("another cluster's admin: %v: %s", err, strings.TrimSpace(out))
	}
	if out, err := apply(pc, "sha256:"+strings.Repeat("0", 64)); err == nil || !strings.Contains(out, "fingerprint") {
		t.Fatalf("a client given another fingerprint sent the configuration: %v\n%s", err, out)
	}
	out, err := apply(pc, fingerprint)
	if err != nil || !strings.Contains(out, "reboots") {
		t.Fatalf("the cluster's admin: %v\n%s", err, out)
	}
	// The machine reboots into its configuration: the regular node API answers, with the
	// cluster's CA.
	deadline = time.Now().Add(5 * time.Minute)
	for {
		out, err := e.run(30*time.Second, "--plinthconfig", pc, "-e", endpoint, "-n", qemu.GuestAddress, "version")
		if err == nil && strings.Contains(out, "Hostname:  vm-1") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the configured machine's API did not answer within 5 minutes: %v\n%s", err, out)
		}
		time.Sleep(2 * time.Second)
	}
	t.Logf("configured and rebooted %s after power-on", time.Since(start).Round(time.Second))

	// reset forgets the configuration and the identity: the machine is back in
	// maintenance mode, with a new certificate.
	e.must(time.Minute, "--plinthconfig", pc, "-e", endpoint, "-n", qemu.GuestAddress, "reset", "--reboot")
	deadline = time.Now().Add(5 * time.Minute)
	for strings.Count(qemu.ReadConsole(console), "plinthctl apply-config --maintenance") < 2 {
		if time.Now().After(deadline) {
			t.Fatal("the machine is not in maintenance mode again within 5 minutes of reset")
		}
		time.Sleep(time.Second)
	}
	if out, err := apply(pc, fingerprint); err == nil || !strings.Contains(out, "fingerprint") {
		t.Errorf("the previous boot's fingerprint was accepted after the reset: %v\n%s", err, out)
	}
	t.Logf("reset: maintenance mode again %s after power-on", time.Since(start).Round(time.Second))
}

// waitFingerprint waits for the n-th maintenance-mode banner on the console and returns the
// certificate fingerprint it shows.
func waitFingerprint(t *testing.T, console string, n int) string {
	t.Helper()
	deadline := time.Now().Add(5 * time.Minute)
	for {
		var fps []string
		for _, line := range strings.Split(qemu.ReadConsole(console), "\n") {
			if i := strings.Index(line, "--fingerprint "); i >= 0 && strings.Contains(line, "apply-config --maintenance") {
				fps = append(fps, strings.Fields(line[i+len("--fingerprint "):])[0])
			}
		}
		if len(fps) >= n {
			return fps[n-1]
		}
		if time.Now().After(deadline) {
			t.Fatalf("the console shows no maintenance mode (%d) within 5 minutes", n)
		}
		time.Sleep(time.Second)
	}
}

// TestInstallFromISO boots a machine with a blank disk from the install media: maintenance
// mode on an address from DHCP (QEMU's); another cluster's admin is refused; the cluster's admin's configuration installs
// Plinth to /dev/vda; the machine reboots from the disk (its kernel command line is the
// installed entry's) into its configuration; reset returns it to maintenance mode, still
// from the disk, with EPHEMERAL emptied; configured again, reset --wipe-mode all leaves a
// disk the firmware skips, and the machine boots the install media again.
func TestInstallFromISO(t *testing.T) {
	e := setup(t)
	// The disk is chosen by a selector (the only virtio disk of at least 2 GiB), not by name.
	cfgDir, config := e.clusterConfig("vm", `{"machine":{"install":{"disk":null,"diskSelector":{"size":">= 2GiB","bus":"virtio"},"extraKernelArgs":["plinth.e2e=installed"]},"network":{"hostname":"vm-1","interfaces":[{"name":"eth0","dhcp":true}]}}}`)
	pc := filepath.Join(cfgDir, "plinthconfig")
	anchor := ""
	for _, f := range strings.Fields(e.must(time.Minute, "--plinthconfig", pc, "config", "info")) {
		if strings.HasPrefix(f, "plinth.trust=") {
			anchor = f
		}
	}
	otherDir, _ := e.clusterConfig("other", "{}")
	blank := filepath.Join(e.dir, "blank.raw")
	if err := os.WriteFile(blank, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(blank, 4<<30); err != nil {
		t.Fatal(err)
	}

	start := time.Now()
	_, endpoint, console := e.startVM("vm", qemu.Options{AllowReboot: true, Disk: blank, CDROM: filepath.Join(e.image, "plinth.iso"),
		FirmwareFiles: map[string]string{"opt/plinth/args": e.writeArgs("args", anchor)}})
	fingerprint := waitFingerprint(t, console, 1)
	if !strings.Contains(qemu.ReadConsole(console), "found the install media") {
		t.Fatalf("the machine did not boot the install media")
	}
	t.Logf("install media in maintenance mode %s after power-on", time.Since(start).Round(time.Second))
	apply := func(plinthconfig, fp string) (string, error) {
		return e.run(6*time.Minute, "--plinthconfig", plinthconfig, "apply-config", "--maintenance", "--fingerprint", fp, "-e", endpoint, "-f", config)
	}
	if out, err := apply(filepath.Join(otherDir, "plinthconfig"), fingerprint); err == nil || !strings.Contains(out, "bad certificate") {
		t.Fatalf("another cluster's admin was not refused: %v\n%s", err, out)
	}
	installStart := time.Now()
	out, err := apply(pc, fingerprint)
	if err != nil || !strings.Contains(out, "installed to /dev/vda") {
		t.Fatalf("install: %v\n%s", err, out)
	}
	t.Logf("installed in %s: %s", time.Since(installStart).Round(time.Second), strings.TrimSpace(out))

	ctl := func(args ...string) []string {
		return append([]string{"--plinthconfig", pc, "-e", endpoint, "-n", qemu.GuestAddress}, args...)
	}
	deadline := time.Now().Add(5 * time.Minute)
	for {
		out, err := e.run(30*time.Second, ctl("version")...)
		if err == nil && strings.Contains(out, "Hostname:  vm-1") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the installed machine's API did not answer within 5 minutes: %v\n%s", err, out)
		}
		time.Sleep(2 * time.Second)
	}
	t.Logf("booted from the disk into its configuration %s after power-on", time.Since(start).Round(time.Second))
	dmesg := e.must(time.Minute, ctl("dmesg")...)
	if !strings.Contains(dmesg, "plinth.slot=A") || !strings.Contains(dmesg, "plinth.e2e=installed") || strings.Contains(dmesg, "plinth.live") ||
		!strings.Contains(dmesg, anchor) {
		t.Errorf("the machine did not boot the installed entry (with the media's trust anchor and machine.install.extraKernelArgs):\n%s", firstLines(dmesg, 20))
	}
	if out := e.must(time.Minute, ctl("services")...); !strings.Contains(out, "apid") {
		t.Errorf("services:\n%s", out)
	}
	if out := e.must(time.Minute, ctl("get", "links")...); !strings.Contains(out, "eth0") {
		t.Errorf("get links:\n%s", out)
	}
	if out := e.must(time.Minute, ctl("get", "disks")...); !strings.Contains(out, "vda") {
		t.Errorf("get disks:\n%s", out)
	}
	if out := e.must(time.Minute, ctl("get", "dhcpleases")...); !strings.Contains(out, qemu.GuestAddress) {
		t.Errorf("get dhcpleases:\n%s", out)
	}
	// QEMU's restricted network offers no router: the lease gives no default route (nothing
	// leaves the machine).
	if out := e.must(time.Minute, ctl("get", "routes")...); strings.Contains(out, "ipv4/main/default") {
		t.Errorf("a default route from a restricted network's lease:\n%s", out)
	}
	if out := e.must(time.Minute, ctl("get", "timestatus")...); !strings.Contains(out, "disabled") {
		t.Errorf("get timestatus (time sync is off in the tests):\n%s", out)
	}

	// reset (system-disk): maintenance mode again, from the disk, with EPHEMERAL emptied.
	e.must(time.Minute, ctl("reset", "--reboot")...)
	next := waitFingerprint(t, console, 2)
	if next == fingerprint {
		t.Error("the machine kept its maintenance certificate across the reset")
	}
	if strings.Count(qemu.ReadConsole(console), "found the install media") != 1 {
		t.Error("after the reset the machine booted the install media, not its disk")
	}
	if !strings.Contains(qemu.ReadConsole(console), "machined: reset: /var emptied") {
		t.Error("the reset did not empty EPHEMERAL at the next boot")
	}
	t.Logf("reset: maintenance mode again, from the disk, %s after power-on", time.Since(start).Round(time.Second))

	// Configured again (from the disk: no install), then reset --wipe-mode all: the disk no
	// longer boots, and the firmware boots the install media again.
	if out, err := apply(pc, next); err != nil || !strings.Contains(out, "stored") {
		t.Fatalf("configure the installed machine again: %v\n%s", err, out)
	}
	deadline = time.Now().Add(5 * time.Minute)
	for {
		if out, err := e.run(30*time.Second, ctl("version")...); err == nil && strings.Contains(out, "Hostname:  vm-1") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the machine configured again did not answer within 5 minutes")
		}
		time.Sleep(2 * time.Second)
	}
	if out, err := e.run(time.Minute, ctl("reset", "--wipe-mode", "user-disks")...); err == nil || !strings.Contains(out, "no user disks") {
		t.Errorf("reset --wipe-mode user-disks was not refused: %v\n%s", err, out)
	}
	e.must(time.Minute, ctl("reset", "--wipe-mode", "all", "--reboot")...)
	waitFingerprint(t, console, 3)
	if n := strings.Count(qemu.ReadConsole(console), "found the install media"); n != 2 {
		t.Errorf("after reset --wipe-mode all the machine booted the install media %d times in all, want 2", n)
	}
	t.Logf("reset --wipe-mode all: the install media's maintenance mode %s after power-on", time.Since(start).Round(time.Second))
}

func firstLines(s string, n int) string {
	lines := strings.SplitN(s, "\n", n+1)
	return strings.Join(lines[:min(n, len(lines))], "\n")
}
