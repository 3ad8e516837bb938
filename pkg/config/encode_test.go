package config_test

import (
	"bytes"
	"reflect"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/plinthos/plinth/pkg/config"
)

// richConfig is the generated control-plane config with every optional part filled, so
// that a round trip exercises every type.
func richConfig(t *testing.T) *config.MachineConfig {
	c := controlPlane(t)
	m := &c.Machine
	m.CertSANs = []string{"node1.example.com", "10.0.0.5"}
	m.Install = config.InstallSpec{Disk: "/dev/nvme0n1", Image: "ghcr.io/plinthos/installer:v0.1.0", Wipe: true, ExtraKernelArgs: []string{"console=ttyS0", "net.ifnames=0"}}
	m.Kubelet = config.KubeletSpec{
		Image:       "plinth.local/kubelet:v1.37.2",
		ExtraArgs:   map[string]string{"max-pods": "150", "node-ip": "10.0.0.5"},
		ExtraMounts: []config.Mount{{Source: "/var/lib/longhorn", Destination: "/var/lib/longhorn", Type: "bind", Options: []string{"rbind", "rshared"}}},
		NodeLabels:  map[string]string{"example.com/zone": "a", "role": ""},
		NodeTaints:  map[string]string{"dedicated": "gpu:NoSchedule"},
	}
	m.Network = config.NetworkSpec{
		Hostname: "node1",
		Interfaces: []config.Interface{
			{Name: "eth0", DHCP: true, MTU: 9000, Addresses: []string{"10.0.0.5/24"},
				Routes: []config.Route{{Network: "10.10.0.0/16", Gateway: "10.0.0.1", Source: "10.0.0.5", Metric: 100}},
				VLANs:  []config.VLAN{{VLANID: 10, DHCP: true, Addresses: []string{"10.1.0.5/24"}, Routes: []config.Route{{Gateway: "10.1.0.1"}}, MTU: 1500}}},
			{Name: "bond0", Bond: &config.Bond{Interfaces: []string{"eth1", "eth2"}, Mode: "802.3ad", MIIMon: 100, LACPRate: "fast"}},
			{Name: "eth3", Ignore: true},
		},
		Nameservers: []string{"1.1.1.1", "2606:4700:4700::1111"},
	}
	m.Time = config.TimeSpec{Servers: []string{"time.cloudflare.com"}}
	m.Sysctls = map[string]string{"net.ipv4.ip_forward": "1", "vm.max_map_count": "262144"}
	m.Files = []config.File{
		{Path: "/var/etc/motd", Content: "Welcome.\nSecond line: with a colon.\n", Permissions: 0o600, Op: "overwrite"},
		{Path: "/etc/cri/conf.d/20-x.part", Content: "[plugins]\n  x = true\n", Permissions: 0o644, Op: "create"},
		{Path: "/var/a", Content: "no trailing newline", Op: "append"},
	}
	m.Env = map[string]string{"HTTPS_PROXY": "http://proxy:3128", "NO_PROXY": "10.0.0.0/8,.svc"}
	m.Registries = config.RegistriesSpec{Mirrors: map[string]config.Mirror{
		"docker.io": {Endpoints: []string{"https://mirror.example.com"}, SkipFallback: true},
		"*":         {Endpoints: []string{"http://10.0.0.1:5000"}},
	}}
	m.Logging = config.LoggingSpec{Destinations: []config.LogDestination{{Endpoint: "tcp://10.0.0.1:5044", Format: "json_lines"}}}

	cl := &c.Cluster
	cl.APIServer.ExtraArgs = map[string]string{"feature-gates": "A=true,B=false"}
	cl.APIServer.CertSANs = []string{"api.example.com"}
	cl.ControllerManager.ExtraArgs = map[string]string{"node-cidr-mask-size": "24"}
	cl.Scheduler.ExtraArgs = map[string]string{"v": "2"}
	cl.Proxy = config.ProxySpec{Image: cl.Proxy.Image, Mode: "ipvs", ExtraArgs: map[string]string{"v": "1"}}
	cl.Etcd.ExtraArgs = map[string]string{"quota-backend-bytes": "8589934592"}
	cl.CoreDNS.Disabled = true
	cl.ExtraManifests = []string{"https://example.com/a.yaml"}
	cl.InlineManifests = []config.InlineManifest{{Name: "ns", Contents: "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: x\n---\nkind: Y\n"}}
	cl.AllowSchedulingOnControlPlanes = true
	cl.Network.CNI = config.CNISpec{Name: "custom", URLs: []string{"https://example.com/cni.yaml"}}
	if ps := config.Validate(c, config.ModeCloud); len(ps) != 0 {
		t.Fatalf("richConfig is not valid: %v", ps)
	}
	return c
}

func TestRoundTrip(t *testing.T) {
	configs := map[string]func(*testing.T) *config.MachineConfig{
		"controlplane": func(t *testing.T) *config.MachineConfig { return controlPlane(t) },
		"worker":       func(t *testing.T) *config.MachineConfig { return worker(t) },
		"rich":         richConfig,
		"empty": func(*testing.T) *config.MachineConfig {
			return &config.MachineConfig{APIVersion: config.APIVersion, Kind: config.KindMachineConfig}
		},
	}
	for name, get := range configs {
		for _, withDocs := range []bool{false, true} {
			t.Run(name+map[bool]string{false: "", true: "/withDocs"}[withDocs], func(t *testing.T) {
				c := get(t)
				orig := deepCopy(c)
				out := mustMarshal(t, c, withDocs)
				if !reflect.DeepEqual(c, orig) {
					t.Fatal("Marshal modified its argument")
				}
				d := mustLoad(t, out, name+".yaml")
				if !reflect.DeepEqual(d.Config, c) {
					t.Errorf("round trip changed the config\n got %+v\nwant %+v\nYAML:\n%s", d.Config, c, out)
				}
				again := mustMarshal(t, d.Config, withDocs)
				if !bytes.Equal(again, out) {
					t.Errorf("second Marshal differs from the first:\n--- first\n%s\n--- second\n%s", out, again)
				}
				if ps := config.Validate(d.Config, config.ModeCloud); name != "empty" && len(ps) != 0 {
					t.Errorf("round-tripped config does not validate: %v", ps)
				}
			})
		}
	}
}

func TestMarshalWithDocs(t *testing.T) {
	c := richConfig(t)
	plain := string(mustMarshal(t, c, false))
	docs := string(mustMarshal(t, c, true))

	if strings.Contains(plain, "#") {
		t.Errorf("Marshal without docs contains a comment:\n%s", plain)
	}
	for _, want := range []string{
		"# MachineConfig is the whole configuration of one machine",
		"# APIVersion is the version of this document's schema.",
		"  # Type is the role of the machine",
		"  # Install says where and how the OS is installed: the installer reads it.",
		"    # Disk is the block device the OS is installed to",
		"  # Network holds the cluster's subnets, DNS domain and CNI.",
		"# Name is the link name",                     // first item of a list is annotated
		"# Endpoints are mirror URLs",                 // first value of a map is annotated
		"# VLANID is the VLAN identifier, 1 to 4094.", // nested list
	} {
		if !strings.Contains(docs, want) {
			t.Errorf("Marshal with docs lacks %q", want)
		}
	}
	// Fields behind a pointer are annotated.
	b := &config.MachineConfig{Machine: config.MachineSpec{Network: config.NetworkSpec{Interfaces: []config.Interface{
		{Name: "bond0", Bond: &config.Bond{Interfaces: []string{"eth0"}, Mode: "broadcast"}},
	}}}}
	if out := string(mustMarshal(t, b, true)); !strings.Contains(out, "# Interfaces are the names of the links that make up the bond.") {
		t.Errorf("bond fields are not annotated:\n%s", out)
	}
	// Only the first item of a list is annotated.
	if n := strings.Count(docs, "# Path is the absolute path of the file."); n != 1 {
		t.Errorf("files: %d path comments, want 1", n)
	}
	if n := strings.Count(docs, "# Name is the link name"); n != 1 {
		t.Errorf("interfaces: %d name comments, want 1", n)
	}
	// Comments are wrapped.
	for _, line := range strings.Split(docs, "\n") {
		if text, ok := strings.CutPrefix(strings.TrimSpace(line), "# "); ok && len(text) > 90 {
			t.Errorf("comment line longer than 90 characters: %q", line)
		}
	}
	// Without the comments, the two outputs are the same document.
	if got := stripComments(t, docs); got != stripComments(t, plain) {
		t.Errorf("documents with and without docs differ:\n%s\n---\n%s", got, plain)
	}
}

// stripComments re-encodes a YAML text without its comments.
func stripComments(t *testing.T, text string) string {
	t.Helper()
	var n yaml.Node
	if err := yaml.Unmarshal([]byte(text), &n); err != nil {
		t.Fatal(err)
	}
	var clear func(*yaml.Node)
	clear = func(n *yaml.Node) {
		n.HeadComment, n.LineComment, n.FootComment = "", "", ""
		for _, c := range n.Content {
			clear(c)
		}
	}
	clear(&n)
	out, err := yaml.Marshal(&n)
	if err != nil {
		t.Fatal(err)
	}
	return string(out)
}

func TestMarshalFormat(t *testing.T) {
	c := richConfig(t)
	out := string(mustMarshal(t, c, false))
	for _, want := range []string{
		"apiVersion: plinth.dev/v1alpha1\nkind: MachineConfig\nmachine:\n  type: controlplane\n", // field order, two-space indent
		"      permissions: 0o600\n", // file modes in octal
		"    - path: /var/a\n",       // lists indented under their key
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	// Empty optional fields are left out; required ones are kept.
	w := string(mustMarshal(t, worker(t), false))
	for _, absent := range []string{"secretboxEncryptionSecret", "aggregatorCA", "serviceAccount", "key:", "sysctls", "files"} {
		if strings.Contains(w, absent) {
			t.Errorf("worker output contains %q:\n%s", absent, w)
		}
	}
	empty := string(mustMarshal(t, &config.MachineConfig{}, false))
	for _, present := range []string{"apiVersion: \"\"", "kind: \"\"", "type: \"\"", "token: \"\"", "endpoint: \"\""} {
		if !strings.Contains(empty, present) {
			t.Errorf("empty config output lacks %q:\n%s", present, empty)
		}
	}
}

func TestScalarsMarshal(t *testing.T) {
	for _, tt := range []struct {
		mode config.FileMode
		want string
	}{{0o644, "0o644"}, {0o600, "0o600"}, {0o7777, "0o7777"}, {0o1, "0o1"}} {
		v, err := tt.mode.MarshalYAML()
		if err != nil {
			t.Fatal(err)
		}
		n, ok := v.(*yaml.Node)
		if !ok || n.Value != tt.want || n.Tag != "!!int" {
			t.Errorf("FileMode(%#o).MarshalYAML() = %#v, want !!int %s", tt.mode, v, tt.want)
		}
	}
	v, err := config.Base64("hello").MarshalYAML()
	if err != nil || v != "aGVsbG8=" {
		t.Errorf("Base64.MarshalYAML() = %v, %v", v, err)
	}
	var b config.Base64
	if err := yaml.Unmarshal([]byte("aGVs\n  bG8="), &b); err != nil || string(b) != "hello" {
		t.Errorf("Base64 unmarshal = %q, %v", b, err)
	}
	if err := yaml.Unmarshal([]byte("{a: b}"), &b); err == nil || !strings.Contains(err.Error(), "expected a base64 string, got a mapping") {
		t.Errorf("Base64 unmarshal of a mapping: %v", err)
	}
	var m config.FileMode
	if err := yaml.Unmarshal([]byte("0o640"), &m); err != nil || m != 0o640 {
		t.Errorf("FileMode unmarshal = %#o, %v", m, err)
	}
	if err := yaml.Unmarshal([]byte("~"), &m); err != nil {
		t.Errorf("FileMode unmarshal of null: %v", err)
	}
}

// trickyStrings are values that YAML could read back as something else if they were
// written carelessly.
var trickyStrings = []string{
	"", " ", "  leading", "trailing  ", "a: b", "- x", "# not a comment", "a #b", "~", "null", "Null", "true", "no", "yes", "on",
	"0o644", "0644", "0x10", "1e3", ".inf", "-.nan", "123", "-1", "1_000", "2001-12-14", "&anchor", "*alias", "!!str x", "!tag",
	"'", "\"", "\\", "%percent", "@at", "`tick", "{a: b}", "[a]", "? q", ":", "a:", "|", ">", "<<",
	"\n", "\n\n", "line\n", "two\nlines", "two\nlines\n", "trailing space \nx", "\tTab", "a\tb", "\r\n", "cr\rlf",
	"\x00nul", "\x7fdel", "\u0085nel", "\u2028ls", "\u2029ps", "\ufeffbom", "é", "日本", "emoji \U0001F600", "\xff\xfe",
	"---", "...", "--- x", "a\n---\nb", "a\n...\nb", "   \n  x", "x\n   ", strings.Repeat("long ", 300),
}

// TestRoundTripTrickyStrings: every string survives Marshal and Load, wherever it is.
func TestRoundTripTrickyStrings(t *testing.T) {
	for i, s := range trickyStrings {
		c := &config.MachineConfig{APIVersion: config.APIVersion, Kind: config.KindMachineConfig}
		c.Machine.Token = s
		c.Machine.Env = map[string]string{"V": s}
		if s != "" {
			c.Machine.Sysctls = map[string]string{s: "1"}
		}
		c.Machine.Files = []config.File{{Path: "/var/a", Content: s, Permissions: 0o600}}
		c.Machine.CertSANs = []string{s, "x"}
		c.Machine.CA.Crt = config.Base64(s)
		c.Cluster.InlineManifests = []config.InlineManifest{{Name: s, Contents: s}}
		c.Cluster.Name = s
		for _, withDocs := range []bool{false, true} {
			out := mustMarshal(t, c, withDocs)
			d, err := config.Load(out, "tricky.yaml")
			if err != nil {
				t.Errorf("string %d %q (withDocs %v): Load: %v\n%s", i, s, withDocs, err, out)
				continue
			}
			if got, want := normalized(d.Config), normalized(c); !reflect.DeepEqual(got, want) {
				t.Errorf("string %d %q (withDocs %v) changed in a round trip:\n got %+v\nwant %+v\n%s", i, s, withDocs, got, want, out)
			}
		}
	}
}

// TestRoundTripEveryFileMode: every permission value survives Marshal and Load: all of
// 0o000 to 0o777, and each with setuid, setgid and sticky bits in a second document.
func TestRoundTripEveryFileMode(t *testing.T) {
	for _, special := range []config.FileMode{0, 0o7000, 0o4000, 0o2000, 0o1000} {
		c := &config.MachineConfig{APIVersion: config.APIVersion, Kind: config.KindMachineConfig}
		for m := range config.FileMode(0o1000) {
			if special != 0 && m%0o111 != 0 {
				continue // with special bits, a sample of the rest is enough
			}
			c.Machine.Files = append(c.Machine.Files, config.File{Path: "/var/f", Permissions: special | m})
		}
		d := mustLoad(t, mustMarshal(t, c, false), "modes.yaml")
		for i, f := range d.Config.Machine.Files {
			if want := c.Machine.Files[i].Permissions; f.Permissions != want {
				t.Fatalf("mode %#o came back as %#o", want, f.Permissions)
			}
		}
	}
}

// TestRoundTripNumbers: integer fields keep their extreme values.
func TestRoundTripNumbers(t *testing.T) {
	c := &config.MachineConfig{APIVersion: config.APIVersion, Kind: config.KindMachineConfig}
	c.Machine.Network.Interfaces = []config.Interface{{
		Name: "eth0", MTU: -1 << 63,
		VLANs:  []config.VLAN{{VLANID: 1<<63 - 1}},
		Routes: []config.Route{{Metric: 1<<32 - 1}},
		Bond:   &config.Bond{MIIMon: 1<<32 - 1},
	}}
	d := mustLoad(t, mustMarshal(t, c, true), "numbers.yaml")
	if got, want := normalized(d.Config), normalized(c); !reflect.DeepEqual(got, want) {
		t.Errorf("numbers changed in a round trip:\n got %+v\nwant %+v", got, want)
	}
}
