package config_test

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/plinthos/plinth/pkg/config"
)

// header is the first two lines of every configuration document; the lines of test
// documents below count from it (apiVersion is line 1, kind line 2).
const header = "apiVersion: plinth.dev/v1alpha1\nkind: MachineConfig\n"

// wantProblem describes one expected problem. Column 0 means "do not check".
type wantProblem struct {
	line, column int
	field        string
	contains     []string
}

func checkProblems(t *testing.T, file string, input string, ps config.Problems, want []wantProblem) {
	t.Helper()
	if len(ps) != len(want) {
		t.Fatalf("got %d problems, want %d:\n%v\ninput:\n%s", len(ps), len(want), ps, numbered([]byte(input)))
	}
	for i, w := range want {
		p := ps[i]
		if p.File != file {
			t.Errorf("problem %d: File = %q, want %q", i, p.File, file)
		}
		if p.Line != w.line {
			t.Errorf("problem %d (%s): Line = %d, want %d\ninput:\n%s", i, p, p.Line, w.line, numbered([]byte(input)))
		}
		if w.column != 0 && p.Column != w.column {
			t.Errorf("problem %d (%s): Column = %d, want %d", i, p, p.Column, w.column)
		}
		if p.Field != w.field {
			t.Errorf("problem %d (%s): Field = %q, want %q", i, p, p.Field, w.field)
		}
		for _, s := range w.contains {
			if !strings.Contains(p.Msg, s) {
				t.Errorf("problem %d: message %q does not contain %q", i, p.Msg, s)
			}
		}
		// The formatted problem starts with its location.
		prefix := file
		if w.line > 0 {
			prefix = fmt.Sprintf("%s:%d:", file, w.line)
			if p.Column > 0 {
				prefix = fmt.Sprintf("%s:%d:%d:", file, w.line, p.Column)
			}
		}
		if s := p.String(); !strings.HasPrefix(s, prefix) {
			t.Errorf("problem %d: String() = %q, want prefix %q", i, s, prefix)
		}
	}
}

func TestLoadProblems(t *testing.T) {
	tests := []struct {
		name  string
		input string
		want  []wantProblem
	}{
		// Unknown fields.
		{
			name:  "unknown top-level field",
			input: header + "machin:\n  type: worker\n",
			want:  []wantProblem{{3, 1, "machin", []string{`unknown field "machin"`, `did you mean "machine"?`}}},
		},
		{
			name:  "unknown nested field",
			input: header + "machine:\n  type: worker\n  netwrk:\n    hostname: node1\n",
			want:  []wantProblem{{5, 3, "machine.netwrk", []string{`unknown field "netwrk"`, `did you mean "network"?`}}},
		},
		{
			name: "unknown field in a list item",
			input: header + "machine:\n  network:\n    interfaces:\n      - name: eth0\n" +
				"        adresses: [10.0.0.2/24]\n",
			want: []wantProblem{{7, 9, "machine.network.interfaces[0].adresses",
				[]string{`unknown field "adresses"`, `did you mean "addresses"?`}}},
		},
		{
			name:  "unknown field in a map value",
			input: header + "machine:\n  registries:\n    mirrors:\n      docker.io:\n        endpoint: [https://m]\n",
			want: []wantProblem{{7, 9, `machine.registries.mirrors["docker.io"].endpoint`,
				[]string{`unknown field "endpoint"`, `did you mean "endpoints"?`}}},
		},
		{
			name:  "unknown field in the cluster",
			input: header + "cluster:\n  name: demo\n  controlplane:\n    endpoint: https://a:6443\n",
			want:  []wantProblem{{5, 3, "cluster.controlplane", []string{`did you mean "controlPlane"?`}}},
		},
		{
			name:  "unknown field far from every valid one",
			input: header + "machine:\n  zzzzzzzzzz: 1\n",
			want: []wantProblem{{4, 3, "machine.zzzzzzzzzz",
				[]string{`unknown field "zzzzzzzzzz"`, "valid fields here: ", "certSANs", "network"}}},
		},
		{
			name:  "non-scalar key in a struct",
			input: header + "machine:\n  ? [a]\n  : b\n",
			want:  []wantProblem{{4, 5, "machine", []string{"keys must be plain field names, got a list"}}},
		},
		{
			name:  "non-scalar key in a map",
			input: header + "machine:\n  sysctls:\n    ? {a: b}\n    : c\n",
			want:  []wantProblem{{5, 7, "machine.sysctls", []string{"keys must be plain names, got a mapping"}}},
		},

		// Wrong types.
		{
			name:  "string where a bool is expected",
			input: header + "machine:\n  install:\n    wipe: \"yes please\"\n",
			want:  []wantProblem{{5, 11, "machine.install.wipe", []string{`expected true or false, got "yes please"`}}},
		},
		{
			name:  "quoted true is a string, not a bool",
			input: header + "cluster:\n  allowSchedulingOnControlPlanes: \"true\"\n",
			want:  []wantProblem{{4, 35, "cluster.allowSchedulingOnControlPlanes", []string{"expected true or false"}}},
		},
		{
			name:  "string where an int is expected",
			input: header + "machine:\n  network:\n    interfaces:\n      - name: eth0\n        mtu: big\n",
			want:  []wantProblem{{7, 14, "machine.network.interfaces[0].mtu", []string{`expected a whole number that fits int, got "big"`}}},
		},
		{
			name:  "float where an int is expected",
			input: header + "machine:\n  network:\n    interfaces:\n      - name: eth0\n        mtu: 1500.5\n",
			want:  []wantProblem{{7, 14, "machine.network.interfaces[0].mtu", []string{"expected a whole number"}}},
		},
		{
			name: "negative number where an unsigned is expected",
			input: header + "machine:\n  network:\n    interfaces:\n      - name: eth0\n        routes:\n" +
				"          - gateway: 10.0.0.1\n            metric: -1\n",
			want: []wantProblem{{9, 21, "machine.network.interfaces[0].routes[0].metric", []string{"fits uint32", `got "-1"`}}},
		},
		{
			name:  "number too large for an int",
			input: header + "machine:\n  network:\n    interfaces:\n      - name: eth0\n        vlans:\n          - vlanId: 99999999999999999999\n",
			want:  []wantProblem{{8, 21, "machine.network.interfaces[0].vlans[0].vlanId", []string{"expected a whole number that fits int"}}},
		},
		{
			name:  "string where a list is expected",
			input: header + "machine:\n  certSANs: node1.example.com\n",
			want:  []wantProblem{{4, 13, "machine.certSANs", []string{`expected a list, got "node1.example.com"`, "`- item`"}}},
		},
		{
			name:  "mapping where a list is expected",
			input: header + "cluster:\n  network:\n    podSubnets:\n      ipv4: 10.244.0.0/16\n",
			want:  []wantProblem{{6, 7, "cluster.network.podSubnets", []string{"expected a list, got a mapping"}}},
		},
		{
			name:  "string where a struct is expected",
			input: header + "machine: worker\n",
			want:  []wantProblem{{3, 10, "machine", []string{"expected a mapping with fields such as", "type", `got "worker"`}}},
		},
		{
			name:  "list where a map is expected",
			input: header + "machine:\n  sysctls:\n    - net.ipv4.ip_forward=1\n",
			want:  []wantProblem{{5, 5, "machine.sysctls", []string{"expected a mapping of names to values, got a list"}}},
		},
		{
			name:  "list where a string is expected",
			input: header + "machine:\n  type: [worker]\n",
			want:  []wantProblem{{4, 9, "machine.type", []string{"expected a string, got a list"}}},
		},
		{
			name:  "mapping as a map value where a string is expected",
			input: header + "machine:\n  env:\n    HTTPS_PROXY: {url: x}\n",
			want:  []wantProblem{{5, 18, "machine.env.HTTPS_PROXY", []string{"expected a string, got a mapping"}}},
		},
		{
			name:  "list where a base64 string is expected",
			input: header + "machine:\n  ca:\n    crt: [a]\n",
			want:  []wantProblem{{5, 10, "machine.ca.crt", []string{"expected a base64 string, got a list"}}},
		},
		{
			name:  "bad base64 in a crt field",
			input: header + "machine:\n  ca:\n    crt: \"not*base64!\"\n",
			want:  []wantProblem{{5, 10, "machine.ca.crt", []string{"not valid base64", "base64 -w0"}}},
		},
		{
			name:  "bad base64 in a service account key",
			input: header + "cluster:\n  serviceAccount:\n    key: '%%%'\n",
			want:  []wantProblem{{5, 10, "cluster.serviceAccount.key", []string{"not valid base64"}}},
		},

		// Duplicates.
		{
			name:  "duplicate struct field",
			input: header + "machine:\n  type: worker\n  token: a\n  type: controlplane\n",
			want:  []wantProblem{{6, 3, "machine.type", []string{`field "type" appears twice; keep one`}}},
		},
		{
			name:  "duplicate top-level field",
			input: header + "machine: {}\nmachine: {}\n",
			want:  []wantProblem{{4, 1, "machine", []string{`field "machine" appears twice`}}},
		},
		{
			name:  "duplicate map key",
			input: header + "machine:\n  sysctls:\n    net.ipv4.ip_forward: \"1\"\n    vm.swappiness: \"0\"\n    net.ipv4.ip_forward: \"0\"\n",
			want:  []wantProblem{{7, 5, `machine.sysctls["net.ipv4.ip_forward"]`, []string{`"net.ipv4.ip_forward" appears twice; keep one`}}},
		},

		// File permissions.
		{
			name:  "permissions with a digit that is not octal",
			input: header + "machine:\n  files:\n    - path: /var/a\n      content: x\n      permissions: 0o9\n",
			want:  []wantProblem{{7, 20, "machine.files[0].permissions", []string{`"0o9" is not a file mode`, "0o644"}}},
		},
		{
			name:  "permissions beyond 0o7777",
			input: header + "machine:\n  files:\n    - path: /var/a\n      content: x\n      permissions: 0o17777\n",
			want:  []wantProblem{{7, 20, "machine.files[0].permissions", []string{"is not a file mode"}}},
		},
		{
			name:  "quoted permissions without a leading 0",
			input: header + "machine:\n  files:\n    - path: /var/a\n      content: x\n      permissions: \"644\"\n",
			want:  []wantProblem{{7, 20, "machine.files[0].permissions", []string{`"644" is ambiguous`, "0o644"}}},
		},
		{
			name:  "symbolic permissions",
			input: header + "machine:\n  files:\n    - path: /var/a\n      content: x\n      permissions: rw-r--r--\n",
			want:  []wantProblem{{7, 20, "machine.files[0].permissions", []string{`"rw-r--r--" is not a file mode`}}},
		},
		{
			name:  "negative permissions",
			input: header + "machine:\n  files:\n    - path: /var/a\n      content: x\n      permissions: -1\n",
			want:  []wantProblem{{7, 20, "machine.files[0].permissions", []string{"is not a file mode"}}},
		},
		{
			name:  "permissions as a list",
			input: header + "machine:\n  files:\n    - path: /var/a\n      content: x\n      permissions: [6, 4, 4]\n",
			want:  []wantProblem{{7, 20, "machine.files[0].permissions", []string{"expected file permissions in octal such as 0o644, got a list"}}},
		},

		// Malformed YAML.
		{
			name:  "mapping value where none is allowed",
			input: header + "machine:\n  type: worker\n  token: a: b\n",
			want:  []wantProblem{{5, 0, "", []string{"invalid YAML", "mapping values are not allowed in this context"}}},
		},
		{
			name:  "tab indentation",
			input: header + "machine:\n\ttype: worker\n",
			want:  []wantProblem{{4, 0, "", []string{"invalid YAML", "found character that cannot start any token"}}},
		},
		{
			name:  "unterminated quoted string",
			input: header + "cluster:\n  name: demo\n  token: \"abc\n",
			want:  []wantProblem{{5, 0, "", []string{"invalid YAML", "unexpected end of stream"}}},
		},
		{
			name:  "unknown alias",
			input: header + "machine:\n  type: *role\n",
			want:  []wantProblem{{0, 0, "", []string{"invalid YAML", "unknown anchor 'role' referenced"}}},
		},

		// Documents, apiVersion and kind.
		{
			name:  "empty input",
			input: "",
			want:  []wantProblem{{0, 0, "", []string{"no MachineConfig document found", "plinthctl gen config"}}},
		},
		{
			name:  "only comments and separators",
			input: "# nothing here\n---\n---\n",
			want:  []wantProblem{{0, 0, "", []string{"no MachineConfig document found"}}},
		},
		{
			name:  "null document",
			input: "~\n",
			want:  []wantProblem{{0, 0, "", []string{"no MachineConfig document found"}}},
		},
		{
			name:  "missing kind",
			input: "apiVersion: plinth.dev/v1alpha1\nmachine:\n  type: worker\n",
			want:  []wantProblem{{1, 1, "kind", []string{"document 1 has no kind", "add `kind: MachineConfig`"}}},
		},
		{
			name:  "kind that is not a scalar",
			input: "apiVersion: plinth.dev/v1alpha1\nkind: [MachineConfig]\n",
			want:  []wantProblem{{1, 1, "kind", []string{"has no kind"}}},
		},
		{
			name:  "unknown kind",
			input: "apiVersion: plinth.dev/v1alpha1\nkind: MachineConfg\n",
			want:  []wantProblem{{2, 7, "kind", []string{`unknown kind "MachineConfg"`, "only MachineConfig"}}},
		},
		{
			name:  "missing apiVersion",
			input: "kind: MachineConfig\nmachine: {}\n",
			want:  []wantProblem{{1, 1, "apiVersion", []string{"document 1 has no apiVersion", "add `apiVersion: plinth.dev/v1alpha1`"}}},
		},
		{
			name:  "wrong apiVersion",
			input: "apiVersion: plinth.dev/v1\nkind: MachineConfig\n",
			want:  []wantProblem{{1, 13, "apiVersion", []string{`unsupported apiVersion "plinth.dev/v1"`, "plinth.dev/v1alpha1"}}},
		},
		{
			name:  "second document has a wrong apiVersion",
			input: header + "---\napiVersion: v1\nkind: MachineConfig\n",
			want:  []wantProblem{{4, 13, "apiVersion", []string{`unsupported apiVersion "v1"`}}},
		},
		{
			name:  "two MachineConfig documents",
			input: header + "machine:\n  type: worker\n---\n" + header,
			want:  []wantProblem{{6, 1, "", []string{"a second MachineConfig document", "one machine"}}},
		},
		{
			name:  "a document that is a list",
			input: "- apiVersion: plinth.dev/v1alpha1\n- kind: MachineConfig\n",
			want:  []wantProblem{{1, 1, "", []string{"must be a mapping with apiVersion and kind, got a list"}}},
		},
		{
			name:  "a document that is a scalar",
			input: "hello\n",
			want:  []wantProblem{{1, 1, "", []string{`must be a mapping with apiVersion and kind, got "hello"`}}},
		},
		{
			name:  "problems of several documents at once",
			input: "kind: Secret\n---\n" + header + "---\napiVersion: plinth.dev/v1alpha1\n",
			want: []wantProblem{
				{1, 7, "kind", []string{`unknown kind "Secret"`}},
				{6, 1, "kind", []string{"document 3 has no kind"}},
			},
		},

		// Several problems at once, sorted by line.
		{
			name: "several problems sorted by line",
			input: header +
				"machine:\n" + // 3
				"  type: [worker]\n" + // 4
				"  netwrk: {}\n" + // 5
				"  install:\n" + // 6
				"    wipe: maybe\n" + // 7
				"cluster:\n" + // 8
				"  nmae: demo\n" + // 9
				"  network:\n" + // 10
				"    podSubnets: 10.244.0.0/16\n", // 11
			want: []wantProblem{
				{4, 9, "machine.type", []string{"expected a string"}},
				{5, 3, "machine.netwrk", []string{`did you mean "network"?`}},
				{7, 11, "machine.install.wipe", []string{"expected true or false"}},
				{9, 3, "cluster.nmae", []string{`did you mean "name"?`}},
				{11, 17, "cluster.network.podSubnets", []string{"expected a list"}},
			},
		},
		{
			name:  "problems on one line sorted by field",
			input: header + "machine: {zz: 1, type: [a], aa: 2}\n",
			want: []wantProblem{
				{3, 29, "machine.aa", []string{`unknown field "aa"`}},
				{3, 24, "machine.type", []string{"expected a string"}},
				{3, 11, "machine.zz", []string{`unknown field "zz"`}},
			},
		},
		{
			name: "a problem in an aliased value is located at the anchor",
			input: header +
				"machine:\n" + // 3
				"  network:\n" + // 4
				"    hostname: &h {a: b}\n" + // 5
				"  install:\n" + // 6
				"    disk: *h\n" + // 7
				"  netwrk: 1\n", // 8
			want: []wantProblem{
				{5, 15, "machine.install.disk", []string{"expected a string, got a mapping"}},
				{5, 15, "machine.network.hostname", []string{"expected a string, got a mapping"}},
				{8, 3, "machine.netwrk", []string{`unknown field "netwrk"`}},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, err := config.Load([]byte(tt.input), "test.yaml")
			if d != nil {
				t.Errorf("Load returned a document along with an error")
			}
			checkProblems(t, "test.yaml", tt.input, problemsOf(t, err), tt.want)
		})
	}
}

// TestLoadGeneratedWithMistakes checks line numbers inside a full generated configuration.
func TestLoadGeneratedWithMistakes(t *testing.T) {
	base := string(mustMarshal(t, controlPlane(t), false))
	if !strings.Contains(base, "\n  install:\n") || !strings.Contains(base, "\n    dnsDomain: cluster.local\n") {
		t.Fatalf("generated config lacks the lines this test edits:\n%s", base)
	}
	edited := strings.Replace(base, "\n  install:\n", "\n  netwrk:\n    hostname: node1\n  install:\n", 1)
	edited = strings.Replace(edited, "\n    dnsDomain: cluster.local\n", "\n    dnsDomain: [cluster.local]\n", 1)

	_, err := config.Load([]byte(edited), "controlplane.yaml")
	ps := problemsOf(t, err)
	typo := lineOf(t, []byte(edited), "netwrk:")
	domain := lineOf(t, []byte(edited), "dnsDomain: [cluster.local]")
	checkProblems(t, "controlplane.yaml", edited, ps, []wantProblem{
		{typo, 3, "machine.netwrk", []string{`unknown field "netwrk"`, `did you mean "network"?`}},
		{domain, 16, "cluster.network.dnsDomain", []string{"expected a string, got a list"}},
	})
	if got := ps[0].String(); !strings.HasPrefix(got, fmt.Sprintf("controlplane.yaml:%d:3: machine.netwrk: unknown field", typo)) {
		t.Errorf("String() = %q", got)
	}
	if got, want := ps.Error(), ps[0].String()+"\n"+ps[1].String(); got != want {
		t.Errorf("Error() = %q, want %q", got, want)
	}
}

func TestLoadValid(t *testing.T) {
	input := "# A hand-written configuration.\n---\n" + header + `machine:
  type: worker
  token: abcdef.0123456789abcdef
  certSANs: &sans [node1.example.com, 10.0.0.5]
  install: ~
  network:
    hostname: node1
    interfaces:
      - name: eth0
        dhcp: true
        mtu: 0x5dc
        routes:
          - network: 10.10.0.0/16
            gateway: 10.0.0.1
            metric: 100
        vlans:
          - vlanId: 10
            addresses: [192.168.10.2/24]
      - name: bond0
        bond:
          interfaces: [eth1, eth2]
          mode: 802.3ad
          lacpRate: fast
  sysctls:
    net.ipv4.ip_forward: "1"
    vm.overcommit_memory: 1
  files:
    - path: /var/etc/a
      content: |
        line one
        line two
      permissions: 0o600
      op: overwrite
  env:
    HTTPS_PROXY: http://proxy:3128
cluster:
  name: demo
  apiServer:
    certSANs: *sans
  proxy:
    disabled: true
...
---
`
	d := mustLoad(t, []byte(input), "node.yaml")
	if d.File != "node.yaml" {
		t.Errorf("File = %q", d.File)
	}
	c := d.Config
	if c.APIVersion != config.APIVersion || c.Kind != config.KindMachineConfig {
		t.Errorf("apiVersion/kind = %q/%q", c.APIVersion, c.Kind)
	}
	m := c.Machine
	if m.Type != config.TypeWorker || m.Token != "abcdef.0123456789abcdef" {
		t.Errorf("type/token = %q/%q", m.Type, m.Token)
	}
	if got := strings.Join(c.Cluster.APIServer.CertSANs, ","); got != "node1.example.com,10.0.0.5" {
		t.Errorf("aliased certSANs = %q", got)
	}
	if len(m.Network.Interfaces) != 2 {
		t.Fatalf("interfaces = %+v", m.Network.Interfaces)
	}
	eth0 := m.Network.Interfaces[0]
	if !eth0.DHCP || eth0.MTU != 1500 || eth0.Routes[0].Metric != 100 || eth0.VLANs[0].VLANID != 10 {
		t.Errorf("eth0 = %+v", eth0)
	}
	if b := m.Network.Interfaces[1].Bond; b == nil || b.Mode != "802.3ad" || b.LACPRate != "fast" || len(b.Interfaces) != 2 {
		t.Errorf("bond0.bond = %+v", b)
	}
	// A YAML integer is accepted for a string value and kept as written.
	if m.Sysctls["vm.overcommit_memory"] != "1" || m.Sysctls["net.ipv4.ip_forward"] != "1" {
		t.Errorf("sysctls = %v", m.Sysctls)
	}
	if f := m.Files[0]; f.Content != "line one\nline two\n" || f.Permissions != 0o600 || f.Op != "overwrite" {
		t.Errorf("files[0] = %+v", f)
	}
	if !c.Cluster.Proxy.Disabled {
		t.Errorf("proxy.disabled = false, want true")
	}
}

func TestLoadFilePermissions(t *testing.T) {
	tests := []struct {
		value string
		want  config.FileMode
	}{
		{"0o644", 0o644},
		{"0O644", 0o644},
		{"0644", 0o644},
		{"420", 0o644},
		{`"0600"`, 0o600},
		{`'0o600'`, 0o600},
		{"0o7777", 0o7777},
		{"0", 0},
		{"0o0", 0},
		{"~", 0},
	}
	for _, tt := range tests {
		t.Run(tt.value, func(t *testing.T) {
			input := header + "machine:\n  files:\n    - path: /var/a\n      content: x\n      permissions: " + tt.value + "\n"
			d := mustLoad(t, []byte(input), "test.yaml")
			if got := d.Config.Machine.Files[0].Permissions; got != tt.want {
				t.Errorf("permissions %s = %#o, want %#o", tt.value, got, tt.want)
			}
		})
	}
}

func TestLoadBase64(t *testing.T) {
	// Line breaks and spaces inside base64 text are ignored, so a folded value decodes.
	input := header + "machine:\n  ca:\n    crt: |\n      aGVsbG8g\n      d29ybGQ=\n    key: \"\"\n"
	d := mustLoad(t, []byte(input), "test.yaml")
	if got := string(d.Config.Machine.CA.Crt); got != "hello world" {
		t.Errorf("crt = %q, want %q", got, "hello world")
	}
	if len(d.Config.Machine.CA.Key) != 0 {
		t.Errorf("key = %q, want empty", d.Config.Machine.CA.Key)
	}
}

func TestLoadNullLeavesZero(t *testing.T) {
	input := header + "machine:\n  type: ~\n  install: null\n  network:\n    interfaces:\n      - name: eth0\n        bond: ~\n  sysctls:\ncluster: ~\n"
	c := mustLoad(t, []byte(input), "test.yaml").Config
	if c.Machine.Type != "" || c.Machine.Install.Disk != "" || c.Machine.Sysctls != nil || c.Cluster.Name != "" {
		t.Errorf("null values decoded to %+v", c)
	}
	if c.Machine.Network.Interfaces[0].Bond != nil {
		t.Errorf("bond: ~ decoded to %+v", c.Machine.Network.Interfaces[0].Bond)
	}
}

func TestLoadFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "worker.yaml")
	if err := os.WriteFile(path, mustMarshal(t, worker(t), true), 0o600); err != nil {
		t.Fatal(err)
	}
	d, err := config.LoadFile(path)
	if err != nil {
		t.Fatalf("LoadFile: %v", err)
	}
	if d.File != path || d.Config.Machine.Type != config.TypeWorker {
		t.Errorf("LoadFile = file %q, type %q", d.File, d.Config.Machine.Type)
	}

	bad := filepath.Join(dir, "bad.yaml")
	if err := os.WriteFile(bad, []byte(header+"machine:\n  tpye: worker\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err = config.LoadFile(bad)
	ps := problemsOf(t, err)
	if ps[0].File != bad || ps[0].Line != 4 || !strings.HasPrefix(ps[0].String(), bad+":4:3: machine.tpye: ") {
		t.Errorf("problem = %s", ps[0])
	}

	if _, err := config.LoadFile(filepath.Join(dir, "missing.yaml")); err == nil || !strings.Contains(err.Error(), "read config") {
		t.Errorf("LoadFile(missing) error = %v, want a read error", err)
	}
}

func TestProblemString(t *testing.T) {
	tests := []struct {
		p    config.Problem
		want string
	}{
		{config.Problem{File: "a.yaml", Line: 3, Column: 5, Field: "machine.type", Msg: "bad"}, "a.yaml:3:5: machine.type: bad"},
		{config.Problem{File: "a.yaml", Line: 3, Field: "machine.type", Msg: "bad"}, "a.yaml:3: machine.type: bad"},
		{config.Problem{File: "a.yaml", Msg: "bad"}, "a.yaml: bad"},
		{config.Problem{Line: 3, Column: 5, Msg: "bad"}, "line 3:5: bad"},
		{config.Problem{Field: "cluster.name", Msg: "bad"}, "cluster.name: bad"},
		{config.Problem{Msg: "bad"}, "bad"},
	}
	for _, tt := range tests {
		if got := tt.p.String(); got != tt.want {
			t.Errorf("%#v.String() = %q, want %q", tt.p, got, tt.want)
		}
	}
	ps := config.Problems{tests[0].p, tests[5].p}
	if got, want := ps.Error(), "a.yaml:3:5: machine.type: bad\nbad"; got != want {
		t.Errorf("Error() = %q, want %q", got, want)
	}
}

// TestLoadTaggedScalarIsLocated: the checker accepts a scalar with an explicit tag
// that the decoder then refuses; the problem must still name the line and field.
func TestLoadTaggedScalarIsLocated(t *testing.T) {
	tests := []struct {
		name, input, field string
		line               int
	}{
		{"bool tag on yes", header + "machine:\n  install:\n    wipe: !!bool yes\n", "machine.install.wipe", 5},
		{"int tag on a word", header + "cluster:\n  name: !!int abc\n", "cluster.name", 4},
		{"timestamp tag on a word", header + "machine:\n  token: !!timestamp xyz\n", "machine.token", 4},
		{"null tag on a mapping", header + "machine:\n  network:\n    interfaces:\n      - name: eth0\n        bond: !!null {mode: x}\n", "machine.network.interfaces[0].bond", 7},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := config.Load([]byte(tt.input), "test.yaml")
			ps := problemsOf(t, err)
			if len(ps) != 1 || ps[0].Line != tt.line || ps[0].Field != tt.field || ps[0].File != "test.yaml" {
				t.Errorf("problems = %v, want one at test.yaml:%d on %s", ps, tt.line, tt.field)
			}
			if strings.Contains(ps[0].Msg, "decode:") {
				t.Errorf("problem %s reads like an internal decoding failure", ps[0])
			}
		})
	}
}

// TestLoadAliasExpansionIsBounded: a small document whose aliases expand to millions of
// nodes must be refused quickly, as the YAML decoder itself does ("excessive aliasing").
func TestLoadAliasExpansionIsBounded(t *testing.T) {
	const n = 80
	var b strings.Builder
	b.WriteString(header + "machine:\n  network:\n")
	b.WriteString("    hostname: &r {network: 10.0.0.0/8, gateway: 10.0.0.1, bogus: 1}\n")
	b.WriteString("    nameservers: &v {vlanId: 5, routes: [" + strings.TrimSuffix(strings.Repeat("*r,", n), ",") + "]}\n")
	b.WriteString("    interfaces:\n      - &i {name: eth0, vlans: [" + strings.TrimSuffix(strings.Repeat("*v,", n), ",") + "]}\n")
	b.WriteString(strings.Repeat("      - *i\n", n-1))

	start := time.Now()
	_, err := config.Load([]byte(b.String()), "bomb.yaml")
	elapsed := time.Since(start)
	ps := problemsOf(t, err)
	if elapsed > 3*time.Second || len(ps) > 1000 {
		t.Errorf("Load of %d bytes took %v and reported %d problems; want a quick refusal", b.Len(), elapsed, len(ps))
	}
}

// TestLoadAliasBombWithoutOtherProblems: nested aliases of valid values are refused with a
// problem that says why, quickly.
func TestLoadAliasBombWithoutOtherProblems(t *testing.T) {
	const n = 60
	var b strings.Builder
	b.WriteString(header + "machine:\n  network:\n    interfaces:\n")
	b.WriteString("      - &i {name: eth0, vlans: [&v {vlanId: 5, routes: [&r {network: 10.0.0.0/8, gateway: 10.0.0.1}" +
		strings.Repeat(", *r", n) + "]}" + strings.Repeat(", *v", n) + "]}\n")
	b.WriteString(strings.Repeat("      - *i\n", n))

	start := time.Now()
	_, err := config.Load([]byte(b.String()), "bomb.yaml")
	elapsed := time.Since(start)
	ps := problemsOf(t, err)
	if elapsed > 3*time.Second {
		t.Errorf("Load of %d bytes took %v", b.Len(), elapsed)
	}
	if len(ps) != 1 || !strings.Contains(ps[0].Msg, "too many aliases") || ps[0].File != "bomb.yaml" {
		t.Errorf("problems = %v, want one about too many aliases", ps)
	}

	// The same document with few aliases is fine: aliases themselves are allowed.
	small := header + "machine:\n  network:\n    interfaces:\n" +
		"      - &i {name: eth0, vlans: [&v {vlanId: 5, routes: [&r {network: 10.0.0.0/8, gateway: 10.0.0.1}, *r]}, *v]}\n" +
		"      - *i\n"
	d := mustLoad(t, []byte(small), "small.yaml")
	if ifs := d.Config.Machine.Network.Interfaces; len(ifs) != 2 || len(ifs[1].VLANs) != 2 || len(ifs[1].VLANs[1].Routes) != 2 {
		t.Errorf("aliased interfaces = %+v", ifs)
	}
}

// TestLoadManyProblems: a document with very many mistakes reports a bounded number of
// them, and says that there are more.
func TestLoadManyProblems(t *testing.T) {
	var b strings.Builder
	b.WriteString(header + "machine:\n")
	for i := range 500 {
		fmt.Fprintf(&b, "  unknown%d: x\n", i)
	}
	_, err := config.Load([]byte(b.String()), "many.yaml")
	ps := problemsOf(t, err)
	if len(ps) < 10 || len(ps) > 200 {
		t.Fatalf("got %d problems, want a bounded number", len(ps))
	}
	more := 0
	for _, p := range ps {
		if strings.Contains(p.Msg, "more than") {
			more++
		}
	}
	if more != 1 {
		t.Errorf("%d problems say there are more, want 1:\n%v", more, ps)
	}
	if first := lineOf(t, []byte(b.String()), "unknown0: x"); !slices.ContainsFunc(ps, func(p config.Problem) bool { return p.Line == first }) {
		t.Errorf("the first mistake (line %d) is not among the problems reported", first)
	}
}
