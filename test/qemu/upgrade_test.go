//go:build qemu

package qemu_test

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/plinthos/plinth/internal/qemu"
)

// TestUpgradeAndRollback boots the disk image (slot A), upgrades it to the next version
// (UPGRADE_NEXT) and sees the trial committed, rolls back by hand, then upgrades it to a
// build whose stage-0 init exits (UPGRADE_BROKEN) and to one whose machined exits
// (UPGRADE_BROKEN_MACHINED): each trial boot panics, the firmware's next boot is the old
// slot, and the node reports the rollback and why. A build whose machined hangs
// (UPGRADE_HANG) is reset by the watchdog stage 0 armed, and rolls back the same way. A
// rollback to a broken slot is refused.
// Last, a staged upgrade waits for the next reboot and commits then.
func TestUpgradeAndRollback(t *testing.T) {
	next, broken, brokenMachined, hang := os.Getenv("UPGRADE_NEXT"), os.Getenv("UPGRADE_BROKEN"), os.Getenv("UPGRADE_BROKEN_MACHINED"), os.Getenv("UPGRADE_HANG")
	if next == "" || broken == "" || brokenMachined == "" || hang == "" {
		t.Skip("UPGRADE_NEXT, UPGRADE_BROKEN, UPGRADE_BROKEN_MACHINED and UPGRADE_HANG are not set: run make e2e-qemu (make image-os-upgrades builds them)")
	}
	e := setup(t)
	cfgDir, config := e.clusterConfig("up", fmt.Sprintf(`{"machine":{"network":{"hostname":"up-1","interfaces":[{"name":"eth0","addresses":["%s/%d"]}]}}}`,
		qemu.GuestAddress, qemu.GuestPrefix))
	start := time.Now()
	vm, endpoint, console := e.startVM("up", qemu.Options{OverlaySize: 4 << 30, AllowReboot: true,
		FirmwareFiles: map[string]string{"opt/plinth/config": config}})
	pc := filepath.Join(cfgDir, "plinthconfig")
	ctl := func(args ...string) []string {
		return append([]string{"--plinthconfig", pc, "-e", endpoint, "-n", qemu.GuestAddress}, args...)
	}
	waitVersion := func(what, want string) {
		t.Helper()
		deadline := time.Now().Add(5 * time.Minute)
		for {
			out, err := e.run(5*time.Second, ctl("version")...)
			if err == nil && strings.Contains(out, "Tag:") && strings.Contains(out, want) {
				return
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
	// statusHas waits (the resource follows the node's record a moment later) until the
	// upgrade status holds every one of wants, and says whether it did, with the last one.
	statusHas := func(wants ...string) (bool, string) {
		t.Helper()
		deadline := time.Now().Add(time.Minute)
		for {
			st := e.must(time.Minute, ctl("get", "upgradestatus", "-o", "yaml")...)
			missing := false
			for _, w := range wants {
				missing = missing || !strings.Contains(st, w)
			}
			if !missing || time.Now().After(deadline) {
				return !missing, st
			}
			time.Sleep(time.Second)
		}
	}
	nodeVersion := func() string {
		t.Helper()
		// `version` shows the client's Tag, then the node's.
		out := e.must(time.Minute, ctl("version")...)
		tag := ""
		for line := range strings.SplitSeq(out, "\n") {
			if v, ok := strings.CutPrefix(strings.TrimSpace(line), "Tag:"); ok {
				tag = strings.TrimSpace(v)
			}
		}
		if tag == "" {
			t.Fatalf("no node version in:\n%s", out)
		}
		return tag
	}
	waitVersion("the node API answered", "")
	t.Logf("node API %s after power-on", time.Since(start).Round(time.Second))
	first := nodeVersion()
	if ok, st := statusHas("booted: A", "default: A"); !ok {
		t.Fatalf("upgrade status of a fresh disk:\n%s", st)
	}

	// 1. The next version: written to B, trial boot, health gate, committed.
	began := time.Now()
	out, err := e.run(15*time.Minute, ctl("upgrade", "--image", next, "--wait", "--timeout", "10m")...)
	if err != nil || !strings.Contains(out, "committed") {
		t.Fatalf("upgrade to the next version: %v\n%s\nconsole:\n%s", err, out, qemu.ReadConsole(console))
	}
	t.Logf("upgrade to the next version committed %s after the command began:\n%s", time.Since(began).Round(time.Second), out)
	if v := nodeVersion(); v != first+"-next" {
		t.Errorf("after the upgrade the node runs %q, want %q", v, first+"-next")
	}
	if ok, st := statusHas("booted: B", "default: B", "state: committed"); !ok {
		t.Errorf("upgrade status after the commit:\n%s", st)
	}
	if logs := e.must(time.Minute, ctl("logs", "machined")...); !strings.Contains(logs, "committed") {
		t.Errorf("machined's log does not tell of the commit:\n%s", logs)
	}

	// 2. A rollback by hand: back to slot A and the first version, which stays the default.
	out = e.must(10*time.Minute, ctl("rollback", "--wait")...)
	t.Logf("rollback:\n%s", out)
	waitVersion("the rolled back node answered", "")
	if v := nodeVersion(); v != first {
		t.Errorf("after the rollback the node runs %q, want %q", v, first)
	}
	if ok, st := statusHas("booted: A", "default: A", "state: reverted"); !ok {
		t.Errorf("upgrade status after the rollback:\n%s", st)
	}

	// 3. A build whose init exits: the trial boot panics and the machine comes back on A.
	began = time.Now()
	out, err = e.run(15*time.Minute, ctl("upgrade", "--image", broken, "--wait", "--timeout", "10m")...)
	if err == nil || !strings.Contains(out, "rolled back") || !strings.Contains(out, "did not reach machined") {
		t.Fatalf("upgrade to the broken build: want a rollback, got %v\n%s\nconsole:\n%s", err, out, qemu.ReadConsole(console))
	}
	t.Logf("the broken build rolled back %s after the command began:\n%s", time.Since(began).Round(time.Second), out)
	if c := qemu.ReadConsole(console); !strings.Contains(c, "broken on purpose") || !strings.Contains(c, "Kernel panic") {
		t.Errorf("the console does not show the broken trial's panic:\n%s", c)
	}
	if v := nodeVersion(); v != first {
		t.Errorf("after the rolled back upgrade the node runs %q, want %q", v, first)
	}
	if ok, st := statusHas("booted: A", "default: A", "state: rolled-back", "to: "+first+"-broken"); !ok {
		t.Errorf("upgrade status after the rolled back upgrade:\n%s", st)
	}
	// 3b. A build whose machined exits right after stage 0 started it: the same way back.
	began = time.Now()
	out, err = e.run(15*time.Minute, ctl("upgrade", "--image", brokenMachined, "--wait", "--timeout", "10m")...)
	if err == nil || !strings.Contains(out, "rolled back") {
		t.Fatalf("upgrade to the build whose machined exits: want a rollback, got %v\n%s\nconsole:\n%s", err, out, qemu.ReadConsole(console))
	}
	t.Logf("the build whose machined exits rolled back %s after the command began", time.Since(began).Round(time.Second))
	if v := nodeVersion(); v != first {
		t.Errorf("after the second rolled back upgrade the node runs %q, want %q", v, first)
	}
	if ok, st := statusHas("state: rolled-back", "to: "+first+"-broken-machined"); !ok {
		t.Errorf("upgrade status after the second rolled back upgrade:\n%s", st)
	}
	// 3c. A build whose machined hangs: nothing panics; the watchdog that stage 0 armed is
	// never fed, resets the machine after a minute, and the firmware boots A.
	began = time.Now()
	out, err = e.run(15*time.Minute, ctl("upgrade", "--image", hang, "--wait", "--timeout", "10m")...)
	if err == nil || !strings.Contains(out, "rolled back") {
		t.Fatalf("upgrade to the build that hangs: want a rollback, got %v\n%s\nconsole:\n%s", err, out, qemu.ReadConsole(console))
	}
	t.Logf("the build that hangs rolled back %s after the command began", time.Since(began).Round(time.Second))
	if c := qemu.ReadConsole(console); !strings.Contains(c, "hangs on purpose") || !strings.Contains(c, "watchdog armed") ||
		!strings.Contains(c, "softdog: Initiating system reboot") {
		t.Errorf("the console does not show the hung trial reset by the watchdog:\n%s", c)
	}
	if v := nodeVersion(); v != first {
		t.Errorf("after the hung upgrade the node runs %q, want %q", v, first)
	}
	if ok, st := statusHas("state: rolled-back", "to: "+first+"-hang"); !ok {
		t.Errorf("upgrade status after the hung upgrade:\n%s", st)
	}
	t.Logf("get upgradestatus:\n%s", e.must(time.Minute, ctl("get", "upgradestatus")...))
	// 4. Rolling back to the slot that failed is refused.
	if out, err := e.run(time.Minute, ctl("rollback")...); err == nil || !strings.Contains(out, "did not commit") {
		t.Errorf("rollback to the broken slot: want a refusal, got %v\n%s", err, out)
	}

	// 5. A staged upgrade: written and armed, the node keeps running; the next reboot is
	// the trial, which commits.
	out = e.must(10*time.Minute, ctl("upgrade", "--image", next, "--stage")...)
	if !strings.Contains(out, "staged") {
		t.Errorf("upgrade --stage:\n%s", out)
	}
	if ok, st := statusHas("armed: B", "state: armed", "booted: A"); !ok {
		t.Errorf("upgrade status of a staged upgrade:\n%s", st)
	}
	if v := nodeVersion(); v != first {
		t.Errorf("a staged upgrade changed the running version to %q", v)
	}
	e.must(10*time.Minute, ctl("reboot", "--wait")...)
	deadline := time.Now().Add(5 * time.Minute)
	for st := ""; !strings.Contains(st, "state: committed"); st, _ = e.run(time.Minute, ctl("get", "upgradestatus", "-o", "yaml")...) {
		if time.Now().After(deadline) {
			t.Fatalf("the staged upgrade was not committed after the reboot:\n%s", st)
		}
		time.Sleep(2 * time.Second)
	}
	if v := nodeVersion(); v != first+"-next" {
		t.Errorf("after the staged upgrade's reboot the node runs %q, want %q", v, first+"-next")
	}
}
