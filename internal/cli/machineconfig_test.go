package cli_test

import (
	"bytes"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/plinthos/plinth/pkg/config"
)

func TestMachineConfigPatch(t *testing.T) {
	isolate(t)
	dir := t.TempDir()
	genConfig(t, dir)
	worker := filepath.Join(dir, "worker.yaml")
	orig := loadMC(t, worker)
	origData := readFile(t, worker)

	p := filepath.Join(dir, "p.yaml")
	writeFile(t, p, []byte("machine:\n  network:\n    hostname: worker-1\n  kubelet:\n    nodeLabels:\n      gpu: \"true\"\n"))

	t.Run("to a file", func(t *testing.T) {
		out := filepath.Join(t.TempDir(), "worker-1.yaml")
		printed := mustRun(t, "machineconfig", "patch", worker, "--patch", "@"+p, "-o", out)
		if !strings.Contains(printed, "wrote "+out) {
			t.Errorf("output %q does not report the file", printed)
		}
		checkMode(t, out, 0o600)
		got := loadMC(t, out)
		if got.Machine.Network.Hostname != "worker-1" || got.Machine.Kubelet.NodeLabels["gpu"] != "true" {
			t.Errorf("patch not applied: hostname %q, labels %v", got.Machine.Network.Hostname, got.Machine.Kubelet.NodeLabels)
		}
		// Everything else is kept.
		if got.Machine.Token != orig.Machine.Token || !bytes.Equal(got.Machine.CA.Crt, orig.Machine.CA.Crt) ||
			got.Cluster.ControlPlane.Endpoint != orig.Cluster.ControlPlane.Endpoint || got.Machine.Install.Disk != orig.Machine.Install.Disk {
			t.Error("the patch changed other fields")
		}
		mustRun(t, "validate", "-c", out, "-m", "metal")
		if !bytes.Equal(readFile(t, worker), origData) {
			t.Error("the input file was modified")
		}
	})

	t.Run("to stdout", func(t *testing.T) {
		printed := mustRun(t, "mc", "patch", worker, "-p", "@"+p)
		doc, err := config.Load([]byte(printed), "stdout")
		if err != nil {
			t.Fatalf("stdout is not a machine config: %v\n%s", err, printed)
		}
		if doc.Config.Machine.Network.Hostname != "worker-1" {
			t.Errorf("hostname = %q", doc.Config.Machine.Network.Hostname)
		}
		// No docs by default, docs on request.
		if strings.Contains(printed, "#") {
			t.Error("output has comments without --with-docs")
		}
		withDocs := mustRun(t, "mc", "patch", worker, "-p", "@"+p, "--with-docs")
		if !strings.Contains(withDocs, "# ") {
			t.Error("output has no comments with --with-docs")
		}
	})

	t.Run("patches apply in order", func(t *testing.T) {
		printed := mustRun(t, "mc", "patch", worker,
			"--patch", `{"machine": {"network": {"hostname": "first"}}}`,
			"--patch", `[{"op": "replace", "path": "/machine/network/hostname", "value": "second"}]`)
		doc, err := config.Load([]byte(printed), "stdout")
		if err != nil {
			t.Fatal(err)
		}
		if doc.Config.Machine.Network.Hostname != "second" {
			t.Errorf("hostname = %q, want second", doc.Config.Machine.Network.Hostname)
		}
	})

	t.Run("delete directive", func(t *testing.T) {
		printed := mustRun(t, "mc", "patch", worker, "--patch", `{"machine": {"install": {"disk": {"$patch": "delete"}}}}`)
		doc, err := config.Load([]byte(printed), "stdout")
		if err != nil {
			t.Fatal(err)
		}
		if doc.Config.Machine.Install.Disk != "" {
			t.Errorf("install disk = %q, want it deleted", doc.Config.Machine.Install.Disk)
		}
		if doc.Config.Machine.Token != orig.Machine.Token {
			t.Error("the delete removed other fields")
		}
		out := filepath.Join(t.TempDir(), "nodisk.yaml")
		writeFile(t, out, []byte(printed))
		mustFail(t, []string{"machine.install.disk"}, "validate", "-c", out, "-m", "metal")
		mustRun(t, "validate", "-c", out, "-m", "docker")

		// Deleting an item of a named list.
		withFiles := mustRun(t, "mc", "patch", worker, "--patch",
			`{"machine": {"files": [{"path": "/var/a", "content": "a"}, {"path": "/var/b", "content": "b"}]}}`)
		in := filepath.Join(t.TempDir(), "files.yaml")
		writeFile(t, in, []byte(withFiles))
		printed = mustRun(t, "mc", "patch", in, "--patch", `{"machine": {"files": [{"path": "/var/a", "$patch": "delete"}]}}`)
		doc, err = config.Load([]byte(printed), "stdout")
		if err != nil {
			t.Fatal(err)
		}
		var paths []string
		for _, f := range doc.Config.Machine.Files {
			paths = append(paths, f.Path)
		}
		if !slices.Equal(paths, []string{"/var/b"}) {
			t.Errorf("files after deleting /var/a: %q", paths)
		}
	})

	t.Run("errors", func(t *testing.T) {
		out := filepath.Join(t.TempDir(), "out.yaml")
		mustFail(t, []string{"no patch given"}, "mc", "patch", worker, "-o", out)
		checkMissing(t, out)

		// A patch giving a field the wrong type fails and writes nothing.
		mustFail(t, []string{"wipe", "not a valid configuration"}, "mc", "patch", worker, "--patch", `{"machine": {"install": {"wipe": "yes"}}}`, "-o", out)
		checkMissing(t, out)
		mustFail(t, []string{"mtu"}, "mc", "patch", worker, "--patch", `{"machine": {"network": {"interfaces": [{"name": "eth0", "mtu": "big"}]}}}`, "-o", out)
		checkMissing(t, out)
		// An unknown field.
		mustFail(t, []string{"hostnam"}, "mc", "patch", worker, "--patch", `{"machine": {"network": {"hostnam": "x"}}}`, "-o", out)
		checkMissing(t, out)
		// Bad patch arguments.
		mustFail(t, []string{"missing.yaml"}, "mc", "patch", worker, "--patch", "@"+filepath.Join(dir, "missing.yaml"), "-o", out)
		mustFail(t, []string{"$patch"}, "mc", "patch", worker, "--patch", `{"machine": {"install": {"$patch": "replace"}}}`, "-o", out)
		checkMissing(t, out)
		// Bad input file.
		mustFail(t, []string{"missing.yaml"}, "mc", "patch", filepath.Join(dir, "missing.yaml"), "--patch", "@"+p)
		mustFail(t, []string{"accepts 1 arg"}, "mc", "patch", "--patch", "@"+p)
		if got := dirNames(t, filepath.Dir(out)); len(got) != 0 {
			t.Errorf("files left behind: %q", got)
		}
	})
}

// TestMachineConfigPatchHelpExample runs the JSON patch of the command's --help example
// on a config made by gen config.
func TestMachineConfigPatchHelpExample(t *testing.T) {
	isolate(t)
	dir := t.TempDir()
	genConfig(t, dir)
	cp := filepath.Join(dir, "controlplane.yaml")
	out, err := run(t, "machineconfig", "patch", cp,
		"--patch", `[{"op": "add", "path": "/cluster/allowSchedulingOnControlPlanes", "value": true}]`)
	if err != nil {
		t.Fatalf("the example of `plinthctl machineconfig patch --help` fails on a generated controlplane.yaml: %v\n%s", err, out)
	}
	doc, err := config.Load([]byte(out), "stdout")
	if err != nil || !doc.Config.Cluster.AllowSchedulingOnControlPlanes {
		t.Errorf("allowSchedulingOnControlPlanes not set: %v", err)
	}
}
