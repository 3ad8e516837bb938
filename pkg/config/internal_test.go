package config

// Tests of unexported helpers. Everything else is tested from package config_test.

import (
	"reflect"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

func TestEditDistance(t *testing.T) {
	for _, tt := range []struct {
		a, b string
		want int
	}{
		{"", "", 0},
		{"", "abc", 3},
		{"abc", "", 3},
		{"network", "network", 0},
		{"netwrk", "network", 1},
		{"nmae", "name", 1}, // a transposition costs one
		{"kitten", "sitting", 3},
	} {
		if got := editDistance(tt.a, tt.b); got != tt.want {
			t.Errorf("editDistance(%q, %q) = %d, want %d", tt.a, tt.b, got, tt.want)
		}
		if got := editDistance(tt.b, tt.a); got != tt.want {
			t.Errorf("editDistance(%q, %q) = %d, want %d (symmetry)", tt.b, tt.a, got, tt.want)
		}
	}
}

func TestSuggest(t *testing.T) {
	machine := yamlFields(reflect.TypeFor[MachineSpec]())
	cluster := yamlFields(reflect.TypeFor[ClusterSpec]())
	for _, tt := range []struct {
		name   string
		fields map[string]reflect.StructField
		want   string
	}{
		{"netwrk", machine, "network"},
		{"Network", machine, "network"},
		{"certsans", machine, "certSANs"}, // case-insensitive match wins
		{"CERTSANS", machine, "certSANs"},
		{"tyep", machine, "type"},
		{"instal", machine, "install"},
		{"controlplane", cluster, "controlPlane"},
		{"aggregatorCa", cluster, "aggregatorCA"},
		{"zzzzzzzzzz", machine, ""},
	} {
		if got := suggest(tt.name, tt.fields); got != tt.want {
			t.Errorf("suggest(%q) = %q, want %q", tt.name, got, tt.want)
		}
	}
	if got := suggest("a", map[string]reflect.StructField{}); got != "" {
		t.Errorf("suggest with no fields = %q", got)
	}
	// Ties are broken by name, so the suggestion is stable.
	tie := map[string]reflect.StructField{"ab": {}, "aa": {}, "ac": {}}
	for range 20 {
		if got := suggest("ax", tie); got != "aa" {
			t.Fatalf("suggest(ax) = %q, want aa", got)
		}
	}
}

// TestSuggestTransposition: swapping two letters is the commonest typo; it should
// suggest the intended field rather than another one at the same Levenshtein distance.
func TestSuggestTransposition(t *testing.T) {
	if got := suggest("tpye", yamlFields(reflect.TypeFor[MachineSpec]())); got != "type" {
		t.Errorf("suggest(tpye) = %q, want type", got)
	}
}

func TestWrapComment(t *testing.T) {
	long := strings.Repeat("word ", 60)
	got := wrapComment(long)
	for _, line := range strings.Split(got, "\n") {
		if len(line) > 90 {
			t.Errorf("line of %d characters: %q", len(line), line)
		}
		if line != strings.TrimSpace(line) || line == "" {
			t.Errorf("line %q has extra spaces or is empty", line)
		}
	}
	if strings.Join(strings.Fields(got), " ") != strings.TrimSpace(long) {
		t.Errorf("wrapping lost or changed words")
	}
	if got := wrapComment("  short   text\n"); got != "short text" {
		t.Errorf("wrapComment(short) = %q", got)
	}
	if got := wrapComment(""); got != "" {
		t.Errorf("wrapComment(\"\") = %q", got)
	}
	// A word longer than a line stays whole on its own line.
	word := strings.Repeat("x", 120)
	if got := wrapComment("a " + word + " b"); got != "a\n"+word+"\nb" {
		t.Errorf("wrapComment(long word) = %q", got)
	}
	// Every documented field's comment wraps within the limit.
	for key, doc := range fieldDocs {
		for _, line := range strings.Split(wrapComment(doc), "\n") {
			if len(line) > 90 && strings.Contains(line, " ") {
				t.Errorf("%s: wrapped line of %d characters", key, len(line))
			}
		}
	}
}

func TestParentPath(t *testing.T) {
	for _, tt := range []struct{ in, want string }{
		{"machine.network.interfaces[2].mtu", "machine.network.interfaces[2]"},
		{"machine.network.interfaces[2]", "machine.network.interfaces"},
		{"machine.network", "machine"},
		{"machine", ""},
		{"", ""},
	} {
		if got := parentPath(tt.in); got != tt.want {
			t.Errorf("parentPath(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
	// A quoted map key with dots climbs to an enclosing field eventually.
	p := `machine.sysctls["net.ipv4.ip_forward"]`
	for range 10 {
		if p == "machine.sysctls" || p == "" {
			break
		}
		p = parentPath(p)
	}
	if p != "machine.sysctls" {
		t.Errorf("climbing from a quoted key ended at %q", p)
	}
}

func TestMapPath(t *testing.T) {
	for _, tt := range []struct{ path, key, want string }{
		{"machine.env", "HTTPS_PROXY", "machine.env.HTTPS_PROXY"},
		{"machine.kubelet.extraArgs", "--max-pods", "machine.kubelet.extraArgs.--max-pods"},
		{"machine.sysctls", "net.ipv4.ip_forward", `machine.sysctls["net.ipv4.ip_forward"]`},
		{"machine.registries.mirrors", "*", `machine.registries.mirrors["*"]`},
		{"machine.env", "", `machine.env[""]`},
		{"machine.env", `a"b`, `machine.env["a\"b"]`},
		{"", "top", "top"},
	} {
		if got := mapPath(tt.path, tt.key); got != tt.want {
			t.Errorf("mapPath(%q, %q) = %q, want %q", tt.path, tt.key, got, tt.want)
		}
	}
	if got := joinPath("", "machine"); got != "machine" {
		t.Errorf("joinPath = %q", got)
	}
}

func TestKindName(t *testing.T) {
	for _, tt := range []struct {
		n    yaml.Node
		want string
	}{
		{yaml.Node{Kind: yaml.MappingNode}, "a mapping"},
		{yaml.Node{Kind: yaml.SequenceNode}, "a list"},
		{yaml.Node{Kind: yaml.ScalarNode, Tag: "!!null", Value: "~"}, "null"},
		{yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: "x"}, `"x"`},
		{yaml.Node{Kind: yaml.AliasNode}, "an alias"},
		{yaml.Node{Kind: yaml.DocumentNode}, "a document"},
	} {
		if got := kindName(&tt.n); got != tt.want {
			t.Errorf("kindName(%v) = %q, want %q", tt.n.Kind, got, tt.want)
		}
	}
}

func TestProblemsSorted(t *testing.T) {
	ps := Problems{
		{Line: 9, Field: "b"},
		{Line: 0, Field: "z"},
		{Line: 3, Field: "b", Msg: "first"},
		{Line: 3, Field: "a"},
		{Line: 3, Field: "b", Msg: "second"},
	}
	got := ps.sorted()
	want := Problems{
		{Line: 0, Field: "z"},
		{Line: 3, Field: "a"},
		{Line: 3, Field: "b", Msg: "first"},
		{Line: 3, Field: "b", Msg: "second"},
		{Line: 9, Field: "b"},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("sorted = %v, want %v", got, want)
	}
	if err := (Problems{}).errOrNil(); err != nil {
		t.Errorf("errOrNil(empty) = %v", err)
	}
	if err := (Problems{{Line: 2}, {Line: 1}}).errOrNil(); err == nil || err.(Problems)[0].Line != 1 {
		t.Errorf("errOrNil = %v, want sorted problems", err)
	}
}

func TestSyntaxProblem(t *testing.T) {
	var n yaml.Node
	err := yaml.Unmarshal([]byte("a: b\nc: d: e\n"), &n)
	if err == nil {
		t.Fatal("no syntax error")
	}
	p := syntaxProblem("f.yaml", err)
	if p.File != "f.yaml" || p.Line != 2 || p.Msg != "invalid YAML: mapping values are not allowed in this context" {
		t.Errorf("syntaxProblem = %#v", p)
	}
	// Without a line in the message, the message is kept whole.
	p = syntaxProblem("f.yaml", yamlError("yaml: something odd"))
	if p.Line != 0 || p.Msg != "invalid YAML: something odd" {
		t.Errorf("syntaxProblem(no line) = %#v", p)
	}
}

type yamlError string

func (e yamlError) Error() string { return string(e) }

func TestLocate(t *testing.T) {
	d := &Document{File: "x.yaml", positions: map[string]position{
		"":                              {1, 1},
		"machine":                       {4, 3},
		"machine.network.interfaces":    {8, 7},
		"machine.network.interfaces[1]": {10, 9},
		`machine.sysctls["a.b"]`:        {20, 5},
	}}
	ps := d.locate(Problems{
		{Field: "machine.network.interfaces[1].vlans[0].vlanId"},
		{Field: "machine.network.interfaces[3].mtu"},
		{Field: "machine.install.disk"},
		{Field: `machine.sysctls["a.b"]`},
		{Field: "cluster.name"},
		{Field: ""},
	})
	want := []position{{10, 9}, {8, 7}, {4, 3}, {20, 5}, {1, 1}, {1, 1}}
	for i, p := range ps {
		if p.File != "x.yaml" || (position{p.Line, p.Column}) != want[i] {
			t.Errorf("%s located at %s:%d:%d, want %v", p.Field, p.File, p.Line, p.Column, want[i])
		}
	}
	// Without any recorded position, problems keep line 0.
	empty := &Document{File: "y.yaml", positions: map[string]position{}}
	if ps := empty.locate(Problems{{Field: "a.b"}}); ps[0].Line != 0 || ps[0].File != "y.yaml" {
		t.Errorf("locate without positions = %#v", ps[0])
	}
}

// TestYAMLFieldsMatchDocs: every field the decoder knows has a doc comment (so
// Marshal(withDocs) annotates every field), and every doc belongs to a field.
func TestYAMLFieldsMatchDocs(t *testing.T) {
	seen := map[string]bool{}
	var walk func(reflect.Type)
	walk = func(rt reflect.Type) {
		for rt.Kind() == reflect.Pointer || rt.Kind() == reflect.Slice || rt.Kind() == reflect.Map {
			rt = rt.Elem()
		}
		if rt.Kind() != reflect.Struct || seen[rt.Name()] {
			return
		}
		seen[rt.Name()] = true
		if typeDocs[rt.Name()] == "" {
			t.Errorf("type %s has no doc", rt.Name())
		}
		for name, f := range yamlFields(rt) {
			key := rt.Name() + "." + name
			seen[key] = true
			if fieldDocs[key] == "" {
				t.Errorf("field %s has no doc", key)
			}
			walk(f.Type)
		}
	}
	walk(reflect.TypeFor[MachineConfig]())
	for key := range fieldDocs {
		if !seen[key] {
			t.Errorf("fieldDocs has %s, which is no field", key)
		}
	}
}
