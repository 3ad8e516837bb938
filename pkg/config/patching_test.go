package config_test

import (
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/plinthos/plinth/pkg/config"
	"github.com/plinthos/plinth/pkg/config/patch"
)

func mustParsePatch(t *testing.T, text string) []patch.Patch {
	t.Helper()
	ps, err := patch.Parse([]byte(text), "inline")
	if err != nil {
		t.Fatalf("patch.Parse(%q): %v", text, err)
	}
	return ps
}

func TestApplyPatchesNone(t *testing.T) {
	c := controlPlane(t)
	got, err := config.ApplyPatches(c, nil, "controlplane.yaml")
	if err != nil || got != c {
		t.Errorf("ApplyPatches(no patches) = %p, %v; want the same config %p", got, err, c)
	}
}

func TestApplyPatchesStrategic(t *testing.T) {
	c := richConfig(t)
	orig := deepCopy(c)
	ps := mustParsePatch(t, `
machine:
  network:
    hostname: node7
    interfaces:
      - name: eth0
        mtu: 1500
      - name: eth5
        dhcp: true
  files:
    - path: /var/etc/motd
      permissions: 0o640
  install:
    $patch: delete
cluster:
  allowSchedulingOnControlPlanes: false
  network:
    serviceSubnets: [10.97.0.0/16]
`)
	got, err := config.ApplyPatches(c, ps, "cp.yaml")
	if err != nil {
		t.Fatalf("ApplyPatches: %v", err)
	}
	if !reflect.DeepEqual(c, orig) {
		t.Error("ApplyPatches modified its argument")
	}
	n := got.Machine.Network
	if n.Hostname != "node7" {
		t.Errorf("hostname = %q, want node7", n.Hostname)
	}
	if len(n.Interfaces) != 4 || n.Interfaces[0].MTU != 1500 || !n.Interfaces[0].DHCP || n.Interfaces[3].Name != "eth5" {
		t.Errorf("interfaces = %+v", n.Interfaces)
	}
	if f := got.Machine.Files[0]; f.Permissions != 0o640 || f.Content != orig.Machine.Files[0].Content {
		t.Errorf("files[0] = %+v", f)
	}
	if got.Machine.Install.Disk != "" || got.Cluster.AllowSchedulingOnControlPlanes {
		t.Errorf("install = %+v, allowScheduling = %v", got.Machine.Install, got.Cluster.AllowSchedulingOnControlPlanes)
	}
	if s := got.Cluster.Network.ServiceSubnets; len(s) != 1 || s[0] != "10.97.0.0/16" {
		t.Errorf("serviceSubnets = %v", s)
	}
	// Everything the patch does not touch is kept, secrets included.
	want := deepCopy(orig)
	want.Machine.Network.Hostname = "node7"
	want.Machine.Network.Interfaces[0].MTU = 1500
	want.Machine.Network.Interfaces = append(want.Machine.Network.Interfaces, config.Interface{Name: "eth5", DHCP: true})
	want.Machine.Files[0].Permissions = 0o640
	want.Machine.Install = config.InstallSpec{}
	want.Cluster.AllowSchedulingOnControlPlanes = false
	want.Cluster.Network.ServiceSubnets = []string{"10.97.0.0/16"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("patched config differs beyond the patch:\n got %+v\nwant %+v", got, want)
	}
	// The fixture has network interfaces and time servers, which Docker refuses.
	if ps := config.Validate(got, config.ModeCloud); len(ps) != 0 {
		t.Errorf("patched config does not validate: %v", ps)
	}
}

func TestApplyPatchesJSON(t *testing.T) {
	ps := mustParsePatch(t, `[{"op": "replace", "path": "/cluster/name", "value": "prod"},
		{"op": "add", "path": "/machine/sysctls", "value": {"vm.swappiness": "0"}}]`)
	got, err := config.ApplyPatches(worker(t), ps, "worker.yaml")
	if err != nil {
		t.Fatalf("ApplyPatches: %v", err)
	}
	if got.Cluster.Name != "prod" || got.Machine.Sysctls["vm.swappiness"] != "0" {
		t.Errorf("cluster.name = %q, sysctls = %v", got.Cluster.Name, got.Machine.Sysctls)
	}
}

func TestApplyPatchesInOrder(t *testing.T) {
	ps := mustParsePatch(t, "cluster: {name: first}\n---\ncluster: {name: second}\n")
	got, err := config.ApplyPatches(worker(t), ps, "worker.yaml")
	if err != nil || got.Cluster.Name != "second" {
		t.Errorf("ApplyPatches = %v, %v; want name second", got.Cluster.Name, err)
	}
}

func TestApplyPatchesErrors(t *testing.T) {
	tests := []struct {
		name, patch string
		contains    []string
		field       string // when the error holds Problems: the field of the first one
	}{
		{
			name:     "unknown field",
			patch:    "machine:\n  netwrk:\n    hostname: node1\n",
			contains: []string{"patch cp.yaml: the result is not a valid configuration", "patched cp.yaml", `unknown field "netwrk"`, `did you mean "network"?`},
			field:    "machine.netwrk",
		},
		{
			name:     "unknown nested field",
			patch:    "machine:\n  network:\n    interfaces:\n      - name: eth0\n        speed: 1000\n",
			contains: []string{`unknown field "speed"`},
			field:    "machine.network.interfaces[0].speed",
		},
		{
			name:     "wrong type",
			patch:    "machine:\n  install:\n    wipe: sometimes\n",
			contains: []string{"expected true or false", `"sometimes"`},
			field:    "machine.install.wipe",
		},
		{
			name:     "unknown top-level field",
			patch:    "cluster:\n  name: x\nextra: true\n",
			contains: []string{`unknown field "extra"`},
			field:    "extra",
		},
		{
			name:     "kind changed",
			patch:    "kind: Other\nmachine: {}\n",
			contains: []string{"patch cp.yaml", "kind"},
		},
		{
			name:     "JSON patch on a missing path",
			patch:    `[{"op": "remove", "path": "/machine/nothing"}]`,
			contains: []string{"patch cp.yaml", "/machine/nothing"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := config.ApplyPatches(controlPlane(t), mustParsePatch(t, tt.patch), "cp.yaml")
			if err == nil {
				t.Fatal("ApplyPatches succeeded, want an error")
			}
			for _, s := range tt.contains {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("error %q does not contain %q", err, s)
				}
			}
			var ps config.Problems
			if tt.field != "" {
				if !errors.As(err, &ps) {
					t.Fatalf("error %v does not wrap config.Problems", err)
				}
				if ps[0].Field != tt.field || ps[0].File != "patched cp.yaml" || ps[0].Line == 0 {
					t.Errorf("problem = %#v, want field %s in patched cp.yaml with a line", ps[0], tt.field)
				}
			}
		})
	}
}
