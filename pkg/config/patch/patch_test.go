package patch

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

const header = "apiVersion: plinth.dev/v1alpha1\nkind: MachineConfig\n"

// baseConfig is a machine configuration used by most tests.
const baseConfig = header + `machine:
  hostname: node-1
  install:
    disk: /dev/sda
    wipe: false
  network:
    nameservers: [1.1.1.1, 8.8.8.8]
    interfaces:
      - name: eth0
        mtu: 1500
        addresses: [10.0.0.2/24]
      - name: eth1
        dhcp: true
cluster:
  name: test
`

// mustParse parses inline patch text or fails the test.
func mustParse(t *testing.T, text string) []Patch {
	t.Helper()
	ps, err := Parse([]byte(text), "inline")
	if err != nil {
		t.Fatalf("Parse(%q): %v", text, err)
	}
	return ps
}

// decodeTree decodes a YAML document for comparisons.
func decodeTree(t *testing.T, data string) any {
	t.Helper()
	var v any
	if err := yaml.Unmarshal([]byte(data), &v); err != nil {
		t.Fatalf("decoding %q: %v", data, err)
	}
	return v
}

// checkApply applies patch texts to doc and compares the result with want
// (YAML, compared as trees) or checks that the error contains wantErr.
func checkApply(t *testing.T, doc string, patches []string, want, wantErr string) {
	t.Helper()
	var ps []Patch
	for _, text := range patches {
		ps = append(ps, mustParse(t, text)...)
	}
	got, err := Apply([]byte(doc), ps)
	if wantErr != "" {
		if err == nil {
			t.Fatalf("Apply succeeded with\n%s\nwant error containing %q", got, wantErr)
		}
		if !strings.Contains(err.Error(), wantErr) {
			t.Fatalf("Apply error = %q, want it to contain %q", err, wantErr)
		}
		return
	}
	if err != nil {
		t.Fatalf("Apply: %v", err)
	}
	if g, w := decodeTree(t, string(got)), decodeTree(t, want); !reflect.DeepEqual(g, w) {
		t.Fatalf("Apply result:\n%s\nwant:\n%s", got, want)
	}
}

func TestStrategicMerge(t *testing.T) {
	tests := []struct {
		name    string
		doc     string // baseConfig if empty
		patches []string
		want    string
		wantErr string
	}{
		{
			name:    "nested merge",
			patches: []string{"machine:\n  install:\n    image: plinth:v1\n  kubelet:\n    extraArgs:\n      v: '2'\n"},
			want: header + `machine:
  hostname: node-1
  install: {disk: /dev/sda, wipe: false, image: plinth:v1}
  kubelet: {extraArgs: {v: "2"}}
  network:
    nameservers: [1.1.1.1, 8.8.8.8]
    interfaces:
      - {name: eth0, mtu: 1500, addresses: [10.0.0.2/24]}
      - {name: eth1, dhcp: true}
cluster: {name: test}
`,
		},
		{
			name:    "scalar replace",
			patches: []string{"machine:\n  hostname: node-2\n  install:\n    wipe: true\ncluster:\n  name: prod\n"},
			want: header + `machine:
  hostname: node-2
  install: {disk: /dev/sda, wipe: true}
  network:
    nameservers: [1.1.1.1, 8.8.8.8]
    interfaces:
      - {name: eth0, mtu: 1500, addresses: [10.0.0.2/24]}
      - {name: eth1, dhcp: true}
cluster: {name: prod}
`,
		},
		{
			name:    "scalar replaces mapping and mapping replaces scalar",
			doc:     "a: {b: 1}\nc: 2\n",
			patches: []string{"a: 3\nc: {d: 4}\n"},
			want:    "a: 3\nc: {d: 4}\n",
		},
		{
			name:    "null is a value, not a deletion",
			doc:     "a: 1\nb: 2\n",
			patches: []string{"a: null\n"},
			want:    "a: null\nb: 2\n",
		},
		{
			name:    "delete key via $patch",
			patches: []string{"machine:\n  install:\n    $patch: delete\n  network:\n    nameservers: {$patch: delete}\n  absent: {$patch: delete}\ncluster: {name: {$patch: delete}}\n"},
			want: header + `machine:
  hostname: node-1
  network:
    interfaces:
      - {name: eth0, mtu: 1500, addresses: [10.0.0.2/24]}
      - {name: eth1, dhcp: true}
cluster: {}
`,
		},
		{
			name:    "delete directives inside new values are dropped",
			doc:     "a: 1\n",
			patches: []string{"b:\n  c: {$patch: delete}\n  d: 1\n  l: [{name: x, $patch: delete}, {name: y}]\n"},
			want:    "a: 1\nb: {d: 1, l: [{name: y}]}\n",
		},
		{
			name:    "named list merge by name",
			patches: []string{"machine:\n  network:\n    interfaces:\n      - name: eth2\n        dhcp: true\n      - name: eth0\n        mtu: 9000\n      - name: eth3\n"},
			want: header + `machine:
  hostname: node-1
  install: {disk: /dev/sda, wipe: false}
  network:
    nameservers: [1.1.1.1, 8.8.8.8]
    interfaces:
      - {name: eth0, mtu: 9000, addresses: [10.0.0.2/24]}
      - {name: eth1, dhcp: true}
      - {name: eth2, dhcp: true}
      - {name: eth3}
cluster: {name: test}
`,
		},
		{
			name:    "named list merge by path",
			doc:     "files:\n  - {path: /etc/a, content: a, mode: 420}\n  - {path: /etc/b, content: b}\n",
			patches: []string{"files:\n  - {path: /etc/c, content: c}\n  - {path: /etc/a, content: A}\n"},
			want:    "files:\n  - {path: /etc/a, content: A, mode: 420}\n  - {path: /etc/b, content: b}\n  - {path: /etc/c, content: c}\n",
		},
		{
			name:    "named list merge by destination",
			doc:     "routes:\n  - {destination: 0.0.0.0/0, gateway: 10.0.0.1}\n  - {destination: 10.1.0.0/16, gateway: 10.0.0.2}\n",
			patches: []string{"routes:\n  - {destination: 10.1.0.0/16, metric: 100}\n  - {destination: 10.2.0.0/16, gateway: 10.0.0.3}\n"},
			want:    "routes:\n  - {destination: 0.0.0.0/0, gateway: 10.0.0.1}\n  - {destination: 10.1.0.0/16, gateway: 10.0.0.2, metric: 100}\n  - {destination: 10.2.0.0/16, gateway: 10.0.0.3}\n",
		},
		{
			name:    "named list merge by vlanId",
			doc:     "vlans:\n  - {vlanId: 100, mtu: 1400}\n  - {vlanId: 200, mtu: 1400}\n",
			patches: []string{"vlans:\n  - {vlanId: 200, mtu: 1300}\n  - {vlanId: 300}\n"},
			want:    "vlans:\n  - {vlanId: 100, mtu: 1400}\n  - {vlanId: 200, mtu: 1300}\n  - {vlanId: 300}\n",
		},
		{
			name:    "named list merge by endpoint",
			doc:     "peers:\n  - {endpoint: '10.0.0.1:51820', publicKey: a}\n",
			patches: []string{"peers:\n  - {endpoint: '10.0.0.1:51820', keepalive: 25}\n  - {endpoint: '10.0.0.2:51820', publicKey: b}\n"},
			want:    "peers:\n  - {endpoint: '10.0.0.1:51820', publicKey: a, keepalive: 25}\n  - {endpoint: '10.0.0.2:51820', publicKey: b}\n",
		},
		{
			name:    "merge key candidates are tried in order",
			doc:     "l:\n  - {name: a, path: /x, v: 1}\n",
			patches: []string{"l:\n  - {name: a, path: /y, v: 2}\n"},
			want:    "l:\n  - {name: a, path: /y, v: 2}\n",
		},
		{
			name:    "merge key values of different kinds do not match",
			doc:     "vlans:\n  - {vlanId: 100, mtu: 1400}\n",
			patches: []string{"vlans:\n  - {vlanId: '100', mtu: 1300}\n"},
			want:    "vlans:\n  - {vlanId: 100, mtu: 1400}\n  - {vlanId: '100', mtu: 1300}\n",
		},
		{
			name:    "named list delete item",
			patches: []string{"machine:\n  network:\n    interfaces:\n      - name: eth0\n        $patch: delete\n      - name: eth9\n        $patch: delete\n"},
			want: header + `machine:
  hostname: node-1
  install: {disk: /dev/sda, wipe: false}
  network:
    nameservers: [1.1.1.1, 8.8.8.8]
    interfaces:
      - {name: eth1, dhcp: true}
cluster: {name: test}
`,
		},
		{
			name:    "named list delete then re-add",
			doc:     "l: [{name: a, x: 1}, {name: b}]\n",
			patches: []string{"l: [{name: a, $patch: delete}, {name: a, y: 2}]\n"},
			want:    "l: [{name: b}, {name: a, y: 2}]\n",
		},
		{
			name:    "patch list with delete items onto absent list",
			doc:     "a: 1\n",
			patches: []string{"l: [{name: a, $patch: delete}, {name: b}]\n"},
			want:    "a: 1\nl: [{name: b}]\n",
		},
		{
			name:    "patch list with delete items onto empty list",
			doc:     "l: []\n",
			patches: []string{"l: [{name: a, $patch: delete}, {name: b}]\n"},
			want:    "l: [{name: b}]\n",
		},
		{
			name:    "plain list replace",
			patches: []string{"machine:\n  network:\n    nameservers: [9.9.9.9]\n"},
			want: header + `machine:
  hostname: node-1
  install: {disk: /dev/sda, wipe: false}
  network:
    nameservers: [9.9.9.9]
    interfaces:
      - {name: eth0, mtu: 1500, addresses: [10.0.0.2/24]}
      - {name: eth1, dhcp: true}
cluster: {name: test}
`,
		},
		{
			name:    "list of mappings without a common merge key is replaced",
			doc:     "l: [{name: a}, {path: /b}]\n",
			patches: []string{"l: [{name: c}]\n"},
			want:    "l: [{name: c}]\n",
		},
		{
			name:    "named list replaced when the patch items lack the key",
			doc:     "l: [{name: a}]\n",
			patches: []string{"l: [{x: 1}]\n"},
			want:    "l: [{x: 1}]\n",
		},
		{
			name:    "empty patch list clears",
			doc:     "l: [{name: a}]\nm: [1, 2]\n",
			patches: []string{"l: []\nm: []\n"},
			want:    "l: []\nm: []\n",
		},
		{
			name:    "matching apiVersion and kind",
			patches: []string{header + "cluster:\n  name: prod\n"},
			want:    strings.Replace(baseConfig, "name: test", "name: prod", 1),
		},
		{
			name:    "apiVersion mismatch",
			patches: []string{"apiVersion: plinth.dev/v1beta1\nmachine:\n  hostname: x\n"},
			wantErr: `strategic merge patch (inline): patch apiVersion "plinth.dev/v1beta1" does not match document apiVersion "plinth.dev/v1alpha1"`,
		},
		{
			name:    "kind mismatch",
			patches: []string{"kind: Other\n"},
			wantErr: `patch kind "Other" does not match document kind "MachineConfig"`,
		},
		{
			name:    "kind missing from document",
			doc:     "machine: {}\n",
			patches: []string{"kind: MachineConfig\n"},
			wantErr: `patch kind "MachineConfig" does not match the document, which has no kind`,
		},
		{
			name:    "multi-document patch",
			patches: []string{"machine:\n  hostname: a\n---\nmachine:\n  hostname: b\n  install: {wipe: true}\n---\nmachine:\n  install: {disk: {$patch: delete}}\n"},
			want: header + `machine:
  hostname: b
  install: {wipe: true}
  network:
    nameservers: [1.1.1.1, 8.8.8.8]
    interfaces:
      - {name: eth0, mtu: 1500, addresses: [10.0.0.2/24]}
      - {name: eth1, dhcp: true}
cluster: {name: test}
`,
		},
		{
			name:    "multi-document error names the document",
			patches: []string{"machine:\n  hostname: a\n---\nkind: Other\n"},
			wantErr: "strategic merge patch (inline, document 2): patch kind",
		},
		{
			name:    "several patches apply in order",
			doc:     "a: 1\n",
			patches: []string{"a: 2\nb: [1]\n", "b: [2, 3]\n", "a: {$patch: delete}\n"},
			want:    "b: [2, 3]\n",
		},
		{
			name:    "timestamps stay strings",
			doc:     "date: 2001-12-14\n",
			patches: []string{"other: 2002-01-01\n"},
			want:    "date: '2001-12-14'\nother: '2002-01-01'\n",
		},
		{
			name:    "JSON strategic patch",
			patches: []string{`{"machine": {"network": {"interfaces": [{"name": "eth1", "mtu": 9000}]}}}`},
			want: header + `machine:
  hostname: node-1
  install: {disk: /dev/sda, wipe: false}
  network:
    nameservers: [1.1.1.1, 8.8.8.8]
    interfaces:
      - {name: eth0, mtu: 1500, addresses: [10.0.0.2/24]}
      - {name: eth1, dhcp: true, mtu: 9000}
cluster: {name: test}
`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			doc := tt.doc
			if doc == "" {
				doc = baseConfig
			}
			checkApply(t, doc, tt.patches, tt.want, tt.wantErr)
		})
	}
}

func TestJSONPatch(t *testing.T) {
	tests := []struct {
		name    string
		patch   string
		want    string
		wantErr string
	}{
		{
			name: "add, replace and remove as YAML",
			patch: `- op: add
  path: /machine/network/interfaces/-
  value: {name: eth2, mtu: 9000}
- op: replace
  path: /machine/hostname
  value: node-2
- op: remove
  path: /machine/install/wipe
- op: add
  path: /machine/network/nameservers/0
  value: 9.9.9.9
`,
			want: header + `machine:
  hostname: node-2
  install: {disk: /dev/sda}
  network:
    nameservers: [9.9.9.9, 1.1.1.1, 8.8.8.8]
    interfaces:
      - {name: eth0, mtu: 1500, addresses: [10.0.0.2/24]}
      - {name: eth1, dhcp: true}
      - {name: eth2, mtu: 9000}
cluster: {name: test}
`,
		},
		{
			name: "add, replace and remove as JSON",
			patch: `[
	{"op": "add", "path": "/machine/network/interfaces/-", "value": {"name": "eth2", "mtu": 9000}},
	{"op": "replace", "path": "/machine/hostname", "value": "node-2"},
	{"op": "remove", "path": "/machine/install/wipe"},
	{"op": "add", "path": "/machine/network/nameservers/0", "value": "9.9.9.9"}
]`,
			want: header + `machine:
  hostname: node-2
  install: {disk: /dev/sda}
  network:
    nameservers: [9.9.9.9, 1.1.1.1, 8.8.8.8]
    interfaces:
      - {name: eth0, mtu: 1500, addresses: [10.0.0.2/24]}
      - {name: eth1, dhcp: true}
      - {name: eth2, mtu: 9000}
cluster: {name: test}
`,
		},
		{
			name: "move, copy and successful test",
			patch: `[{"op": "test", "path": "/machine/network/interfaces/0/mtu", "value": 1500},
{"op": "copy", "from": "/machine/install", "path": "/machine/install2"},
{"op": "move", "from": "/cluster/name", "path": "/cluster/clusterName"}]`,
			want: header + `machine:
  hostname: node-1
  install: {disk: /dev/sda, wipe: false}
  install2: {disk: /dev/sda, wipe: false}
  network:
    nameservers: [1.1.1.1, 8.8.8.8]
    interfaces:
      - {name: eth0, mtu: 1500, addresses: [10.0.0.2/24]}
      - {name: eth1, dhcp: true}
cluster: {clusterName: test}
`,
		},
		{
			name:    "test failure",
			patch:   "- op: test\n  path: /machine/hostname\n  value: other\n- op: remove\n  path: /machine/hostname\n",
			wantErr: "JSON patch (inline): operation 1 (test /machine/hostname): ",
		},
		{
			name:    "remove of a missing key",
			patch:   "- op: replace\n  path: /machine/hostname\n  value: x\n- op: remove\n  path: /machine/foo\n",
			wantErr: "JSON patch (inline): operation 2 (remove /machine/foo): ",
		},
		{
			name:    "move from a missing key",
			patch:   `[{"op": "move", "from": "/nope", "path": "/x"}]`,
			wantErr: "JSON patch (inline): operation 1 (move /x from /nope): ",
		},
		{
			name:    "result must stay a mapping",
			patch:   `[{"op": "replace", "path": "", "value": [1]}]`,
			wantErr: "JSON patch (inline): the result must be a mapping, got a sequence",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ps := mustParse(t, tt.patch)
			if len(ps) != 1 || ps[0].kind != kindJSON {
				t.Fatalf("Parse(%q) = %v, want one JSON patch", tt.patch, ps)
			}
			checkApply(t, baseConfig, []string{tt.patch}, tt.want, tt.wantErr)
		})
	}
}

func TestIntegerPreservation(t *testing.T) {
	doc := header + "machine:\n  mtu: 1500\n  big: 9007199254740993\n  huge: 18446744073709551615\n  ratio: 0.5\n  port: 6443\n"
	patches := append(mustParse(t, `[{"op": "add", "path": "/machine/extra", "value": 1000000}]`),
		mustParse(t, "machine:\n  port: 50000\n")...)
	patches = append(patches, mustParse(t, "- {op: test, path: /machine/mtu, value: 1500}")...)
	got, err := Apply([]byte(doc), patches)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"mtu: 1500\n", "big: 9007199254740993\n", "huge: 18446744073709551615\n", "ratio: 0.5\n", "port: 50000\n", "extra: 1000000\n"} {
		if !strings.Contains(string(got), want) {
			t.Errorf("result does not contain %q:\n%s", want, got)
		}
	}
	if strings.Contains(string(got), "e+") {
		t.Errorf("result has a number in exponent form:\n%s", got)
	}
	var typed struct {
		Machine struct {
			MTU   int    `yaml:"mtu"`
			Huge  uint64 `yaml:"huge"`
			Extra int    `yaml:"extra"`
		} `yaml:"machine"`
	}
	if err := yaml.Unmarshal(got, &typed); err != nil {
		t.Fatalf("result does not decode into typed fields: %v\n%s", err, got)
	}
	if typed.Machine.MTU != 1500 || typed.Machine.Huge != 18446744073709551615 || typed.Machine.Extra != 1000000 {
		t.Errorf("typed decode = %+v", typed.Machine)
	}
}

func TestParseErrors(t *testing.T) {
	tests := []struct {
		name    string
		text    string
		wantErr string
	}{
		{"empty", "", "inline patch: patch is empty"},
		{"whitespace", "  \n\t\n", "patch is empty"},
		{"comments only", "# nothing\n", "patch is empty"},
		{"empty documents", "---\n---\n", "patch is empty"},
		{"malformed YAML", "machine:\n  hostname: [a\n", "inline patch: invalid YAML"},
		{"malformed indentation", "machine:\n  a: 1\n b: 2\n", "invalid YAML"},
		{"duplicate keys", "a: 1\na: 2\n", "invalid YAML"},
		{"scalar", "foo.yaml", `got the scalar "foo.yaml" (to read a patch from a file, use "@path")`},
		{"sequence of scalars", "- a\n- b\n", `item 1 is the scalar "a"`},
		{"sequence without op", "- op: add\n  path: /a\n  value: 1\n- path: /b\n", `item 2 has no "op" key`},
		{"unknown op", `[{"op": "merge", "path": "/a"}]`, `operation 1: unsupported op "merge"`},
		{"op not a string", `[{"op": 1, "path": "/a"}]`, `"op" must be a string`},
		{"missing path", `[{"op": "remove"}]`, `operation 1: remove: missing "path"`},
		{"bad path", `[{"op": "remove", "path": "a/b"}]`, `must be a JSON pointer`},
		{"missing from", `[{"op": "copy", "path": "/a"}]`, `copy /a: missing "from"`},
		{"missing value", `[{"op": "add", "path": "/a"}]`, `add /a: missing "value"`},
		{"value not JSON", "- {op: add, path: /a, value: .inf}\n", "cannot convert to JSON"},
		{"unsupported directive", "a:\n  b: {$patch: replace}\n", `a.b: unsupported $patch directive "replace"`},
		{"top-level directive", "$patch: delete\n", "not allowed at the top level"},
		{"second document broken", "a: 1\n---\n- b\n", "inline patch, document 2:"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ps, err := Parse([]byte(tt.text), "inline")
			if err == nil {
				t.Fatalf("Parse(%q) = %v, want error containing %q", tt.text, ps, tt.wantErr)
			}
			if !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("Parse(%q) error = %q, want it to contain %q", tt.text, err, tt.wantErr)
			}
		})
	}
}

func TestApplyDocumentErrors(t *testing.T) {
	tests := []struct {
		name    string
		doc     string
		wantErr string
	}{
		{"empty", "", "document is empty"},
		{"malformed", "a: [\n", "document: invalid YAML"},
		{"two documents", "a: 1\n---\nb: 2\n", "expected one YAML document, got 2"},
		{"sequence", "- a\n", "document: expected a mapping, got a sequence"},
	}
	ps := mustParse(t, "a: 1\n")
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Apply([]byte(tt.doc), ps)
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("Apply error = %v, want it to contain %q", err, tt.wantErr)
			}
		})
	}

	if _, err := Apply([]byte("a: 1\n"), []Patch{{}}); err == nil || !strings.Contains(err.Error(), "invalid patch") {
		t.Fatalf("Apply with a zero Patch: error = %v", err)
	}
}

func TestString(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "p.yaml")
	if err := os.WriteFile(file, []byte("a: 1\n---\n- {op: remove, path: /a}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, arg := range []string{"a: 1", "[]", "@" + file} {
		ps, err := Load(arg)
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range ps {
			got = append(got, p.String())
		}
	}
	ps, err := Parse([]byte("a: 1"), "q.yaml")
	if err != nil {
		t.Fatal(err)
	}
	got = append(got, ps[0].String(), Patch{}.String())
	want := []string{
		"strategic merge patch (inline)",
		"JSON patch (inline)",
		"strategic merge patch from file " + file + " (document 1)",
		"JSON patch from file " + file + " (document 2)",
		"strategic merge patch from file q.yaml",
		"invalid patch (inline)",
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("String() = %q\nwant %q", got, want)
	}
}

func TestLoad(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "p.yaml")
	if err := os.WriteFile(file, []byte("machine:\n  hostname: from-file\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	jsonFile := filepath.Join(dir, "p.json")
	if err := os.WriteFile(jsonFile, []byte(`[{"op": "add", "path": "/machine/extra", "value": true}]`), 0o600); err != nil {
		t.Fatal(err)
	}
	brokenFile := filepath.Join(dir, "broken.yaml")
	if err := os.WriteFile(brokenFile, []byte("a: [\n"), 0o600); err != nil {
		t.Fatal(err)
	}

	ps, err := LoadAll([]string{"@" + file, "@" + jsonFile, "cluster:\n  name: inline\n"})
	if err != nil {
		t.Fatal(err)
	}
	if len(ps) != 3 || ps[0].String() != "strategic merge patch from file "+file || ps[1].String() != "JSON patch from file "+jsonFile {
		t.Fatalf("LoadAll = %v", ps)
	}
	got, err := Apply([]byte(baseConfig), ps)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"hostname: from-file\n", "extra: true\n", "name: inline\n"} {
		if !strings.Contains(string(got), want) {
			t.Errorf("result does not contain %q:\n%s", want, got)
		}
	}

	if ps, err := LoadAll(nil); err != nil || len(ps) != 0 {
		t.Errorf("LoadAll(nil) = %v, %v", ps, err)
	}

	errTests := []struct {
		arg     string
		wantErr string
	}{
		{"@" + filepath.Join(dir, "missing.yaml"), "reading patch file: open " + filepath.Join(dir, "missing.yaml")},
		{"@", "missing file name"},
		{"@" + brokenFile, "patch file " + brokenFile + ": invalid YAML"},
		{"", "inline patch: patch is empty"},
	}
	for _, tt := range errTests {
		if _, err := Load(tt.arg); err == nil || !strings.Contains(err.Error(), tt.wantErr) {
			t.Errorf("Load(%q) error = %v, want it to contain %q", tt.arg, err, tt.wantErr)
		}
	}
	if _, err := LoadAll([]string{"a: 1", "@" + filepath.Join(dir, "missing.yaml")}); err == nil {
		t.Error("LoadAll with a missing file succeeded")
	}
}

// TestPatchReuse checks that applying a patch does not modify it or the
// document, so that patches can be applied to several documents.
func TestPatchReuse(t *testing.T) {
	ps := mustParse(t, "machine:\n  network:\n    interfaces:\n      - name: eth5\n        routes: [{destination: 0.0.0.0/0}]\n")
	ps = append(ps, mustParse(t, `[{"op": "add", "path": "/machine/network/interfaces/2/routes/-", "value": {"destination": "::/0"}}]`)...)
	ps = append(ps, mustParse(t, "machine:\n  network:\n    interfaces:\n      - name: eth5\n        mtu: 1\n")...)
	first, err := Apply([]byte(baseConfig), ps)
	if err != nil {
		t.Fatal(err)
	}
	second, err := Apply([]byte(baseConfig), ps)
	if err != nil {
		t.Fatal(err)
	}
	if string(first) != string(second) {
		t.Fatalf("applying the same patches twice differs:\n%s\n---\n%s", first, second)
	}
	if strings.Count(string(first), "destination") != 2 {
		t.Fatalf("unexpected result:\n%s", first)
	}
	// Applying to the result again merges into the existing eth5.
	third, err := Apply(first, ps[2:])
	if err != nil {
		t.Fatal(err)
	}
	if string(third) != string(first) {
		t.Fatalf("re-applying an idempotent patch changed the result:\n%s\n---\n%s", first, third)
	}
}

func TestNoPatches(t *testing.T) {
	got, err := Apply([]byte(baseConfig), nil)
	if err != nil {
		t.Fatal(err)
	}
	if g, w := decodeTree(t, string(got)), decodeTree(t, baseConfig); !reflect.DeepEqual(g, w) {
		t.Fatalf("Apply without patches changed the document:\n%s", got)
	}
}
