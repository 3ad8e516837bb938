//go:build e2e

package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"time"
)

// snapName is a scheduled snapshot's file name.
var snapName = regexp.MustCompile(`etcd-\d{8}T\d{6}Z\.db`)

// checkScheduledSnapshots turns on the control plane's scheduled etcd snapshots without a
// reboot: the first is taken at once, listed and read with the file verbs, and passes
// etcdutl's check. The configuration is put back afterwards.
func checkScheduledSnapshots(e *env, cp string) {
	e.t.Helper()
	dir := "/var/lib/plinth/etcd-snapshots"
	original := filepath.Join(e.home, ".plinth", "clusters", e.name, "controlplane.yaml")
	scheduled := filepath.Join(e.home, "controlplane-snapshots.yaml")
	e.must(time.Minute, e.plinthctl, "machineconfig", "patch", original,
		"--patch", `{"cluster": {"etcd": {"snapshots": {"interval": "6h", "keep": 3}}}}`, "-o", scheduled)
	e.must(time.Minute, e.plinthctl, "-n", cp, "apply-config", "-f", scheduled, "--mode", "no-reboot")
	defer e.must(time.Minute, e.plinthctl, "-n", cp, "apply-config", "-f", original, "--mode", "no-reboot")

	var name string
	e.eventually(2*time.Minute, "the first scheduled etcd snapshot", func() error {
		out, err := e.run(time.Minute, e.plinthctl, "-n", cp, "ls", dir)
		if name = snapName.FindString(out); err != nil || name == "" {
			return fmt.Errorf("ls %s: %v\n%s", dir, err, out)
		}
		return nil
	})
	data := e.must(2*time.Minute, e.plinthctl, "-n", cp, "read", dir+"/"+name)
	local := filepath.Join(e.home, name)
	if err := os.WriteFile(local, []byte(data), 0o600); err != nil {
		e.t.Fatal(err)
	}
	etcdutl := filepath.Join(filepath.Dir(e.kubectl), "etcdutl")
	if out, err := exec.Command(etcdutl, "snapshot", "status", local, "-w", "table").CombinedOutput(); err != nil {
		e.t.Errorf("etcdutl snapshot status of the scheduled %s (%d bytes): %v\n%s", name, len(data), err, out)
	}
}
