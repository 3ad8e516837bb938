package clientconfig_test

import (
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/plinthos/plinth/pkg/clientconfig"
)

func sample() *clientconfig.Config {
	return &clientconfig.Config{
		Context: "demo",
		Contexts: map[string]*clientconfig.Context{
			"demo": {
				Endpoints: []string{"10.5.0.2", "10.5.0.3:50001"},
				Nodes:     []string{"10.5.0.4"},
				CA:        []byte("-----BEGIN CERTIFICATE-----\nca\n-----END CERTIFICATE-----\n"),
				Crt:       []byte("crt-bytes"),
				Key:       []byte("key-bytes\x00\xff"),
			},
			"other": {Endpoints: []string{"lb.example.com"}, CA: []byte("ca2"), Crt: []byte("crt2"), Key: []byte("key2")},
		},
	}
}

func TestLoadMissingFileIsEmpty(t *testing.T) {
	c, err := clientconfig.Load(filepath.Join(t.TempDir(), "nope", "config"))
	if err != nil {
		t.Fatalf("Load of a missing file: %v", err)
	}
	if c.Context != "" || len(c.Contexts) != 0 || c.Contexts == nil {
		t.Errorf("Load of a missing file = %+v, want an empty config with a non-nil map", c)
	}
	if _, _, err := c.Current(); err == nil || !strings.Contains(err.Error(), "no current context") {
		t.Errorf("Current of an empty config: %v, want a no current context error", err)
	}
}

func TestLoadEmptyFileIsEmpty(t *testing.T) {
	path := filepath.Join(t.TempDir(), "config")
	if err := os.WriteFile(path, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := clientconfig.Load(path)
	if err != nil {
		t.Fatalf("Load of an empty file: %v", err)
	}
	if c.Contexts == nil || len(c.Contexts) != 0 {
		t.Errorf("Load of an empty file = %+v", c)
	}
}

func TestSaveLoadRoundTrip(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "sub", "dir", "config")
	want := sample()
	if err := want.Save(path); err != nil {
		t.Fatalf("Save: %v", err)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("saved file has mode %v, want 0600", fi.Mode().Perm())
	}
	got, err := clientconfig.Load(path)
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("round trip differs:\n got %+v\nwant %+v", got, want)
	}
	// Saving over an existing file keeps 0600 and leaves no temporary files.
	got.Context = "other"
	if err := got.Save(path); err != nil {
		t.Fatal(err)
	}
	des, err := os.ReadDir(filepath.Dir(path))
	if err != nil {
		t.Fatal(err)
	}
	if len(des) != 1 {
		t.Errorf("directory holds %d entries after two saves, want 1", len(des))
	}
	again, err := clientconfig.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	if again.Context != "other" {
		t.Errorf("context = %q after save, want other", again.Context)
	}
}

func TestEncodeDecode(t *testing.T) {
	data, err := sample().Encode()
	if err != nil {
		t.Fatal(err)
	}
	c, err := clientconfig.Decode(data)
	if err != nil {
		t.Fatalf("Decode: %v\n%s", err, data)
	}
	if !reflect.DeepEqual(c, sample()) {
		t.Errorf("Decode(Encode(c)) differs")
	}
	// Nodes are omitted when empty.
	if strings.Contains(string(data), "nodes: []") {
		t.Errorf("empty nodes are written:\n%s", data)
	}
}

func TestDecodeRejects(t *testing.T) {
	for _, tc := range []struct {
		name, data, wantErr string
	}{
		{"unknown top-level field", "context: \"\"\ncontexts: {}\ncurrent: demo\n", "current"},
		{"unknown context field", "contexts:\n  demo:\n    endpoints: [a]\n    endpoint: b\n", "endpoint"},
		{"dangling current context", "context: nope\ncontexts:\n  demo:\n    endpoints: [a]\n", `"nope"`},
		{"null context", "contexts:\n  demo: null\n", `"demo"`},
		{"bad base64", "contexts:\n  demo:\n    ca: '***'\n", "base64"},
		{"not a mapping", "- a\n- b\n", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := clientconfig.Decode([]byte(tc.data))
			if err == nil {
				t.Fatalf("Decode accepted it: %+v", c)
			}
			if !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("error %q does not contain %q", err, tc.wantErr)
			}
		})
	}
}

func TestLoadErrorNamesFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "config")
	if err := os.WriteFile(path, []byte("bogus: 1\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := clientconfig.Load(path); err == nil || !strings.Contains(err.Error(), path) {
		t.Errorf("Load of a bad file: %v, want an error naming %s", err, path)
	}
	// A directory in place of the file is an error, not an empty config.
	if _, err := clientconfig.Load(t.TempDir()); err == nil {
		t.Error("Load of a directory succeeded")
	}
}

func TestCurrent(t *testing.T) {
	c := sample()
	name, ctx, err := c.Current()
	if err != nil || name != "demo" || ctx != c.Contexts["demo"] {
		t.Errorf("Current() = %q, %p, %v; want demo", name, ctx, err)
	}

	c.Context = ""
	if _, _, err := c.Current(); err == nil || !strings.Contains(err.Error(), "no current context") {
		t.Errorf("Current with no context set: %v", err)
	}

	c.Context = "gone"
	_, _, err = c.Current()
	if err == nil || !strings.Contains(err.Error(), `"gone"`) || !strings.Contains(err.Error(), "not defined") {
		t.Errorf("Current with a dangling context: %v", err)
	}
}

func TestNames(t *testing.T) {
	c := &clientconfig.Config{Contexts: map[string]*clientconfig.Context{"b": {}, "a": {}, "c-1": {}, "c": {}}}
	if got, want := c.Names(), []string{"a", "b", "c", "c-1"}; !slices.Equal(got, want) {
		t.Errorf("Names() = %q, want %q", got, want)
	}
	if got := (&clientconfig.Config{}).Names(); len(got) != 0 {
		t.Errorf("Names() of an empty config = %q", got)
	}
}

func TestMerge(t *testing.T) {
	t.Run("into empty", func(t *testing.T) {
		c := &clientconfig.Config{}
		other := sample()
		renamed := c.Merge(other)
		if len(renamed) != 0 {
			t.Errorf("renamed = %v, want none", renamed)
		}
		if c.Context != "demo" {
			t.Errorf("current = %q, want demo", c.Context)
		}
		if !slices.Equal(c.Names(), []string{"demo", "other"}) {
			t.Errorf("names = %q", c.Names())
		}
	})

	t.Run("conflicts are renamed", func(t *testing.T) {
		c := sample()
		c.Context = "other"
		orig := c.Contexts["demo"]
		in := &clientconfig.Config{Context: "demo", Contexts: map[string]*clientconfig.Context{
			"demo":  {Endpoints: []string{"1.1.1.1"}},
			"fresh": {Endpoints: []string{"2.2.2.2"}},
		}}
		renamed := c.Merge(in)
		if want := map[string]string{"demo": "demo-1"}; !reflect.DeepEqual(renamed, want) {
			t.Errorf("renamed = %v, want %v", renamed, want)
		}
		if c.Contexts["demo"] != orig {
			t.Error("the existing demo context was replaced")
		}
		if got := c.Contexts["demo-1"]; got == nil || !slices.Equal(got.Endpoints, []string{"1.1.1.1"}) {
			t.Errorf("demo-1 = %+v", got)
		}
		if c.Contexts["fresh"] == nil {
			t.Error("fresh was not added")
		}
		if c.Context != "demo-1" {
			t.Errorf("current = %q, want the renamed demo-1", c.Context)
		}

		// Merging again picks the next free suffix.
		renamed = c.Merge(&clientconfig.Config{Context: "demo", Contexts: map[string]*clientconfig.Context{"demo": {}}})
		if renamed["demo"] != "demo-2" || c.Context != "demo-2" {
			t.Errorf("second merge: renamed %v, current %q; want demo-2", renamed, c.Context)
		}
	})

	t.Run("renamed name taken by another incoming context", func(t *testing.T) {
		c := &clientconfig.Config{Context: "a", Contexts: map[string]*clientconfig.Context{"a": {Nodes: []string{"orig"}}}}
		in := &clientconfig.Config{Context: "a-1", Contexts: map[string]*clientconfig.Context{
			"a":   {Nodes: []string{"in-a"}},
			"a-1": {Nodes: []string{"in-a-1"}},
		}}
		c.Merge(in)
		if len(c.Contexts) != 3 {
			t.Fatalf("after merge: %q, want 3 contexts (none lost)", c.Names())
		}
		byNode := map[string]string{}
		for name, ctx := range c.Contexts {
			byNode[ctx.Nodes[0]] = name
		}
		if byNode["orig"] != "a" {
			t.Errorf("the original context moved to %q", byNode["orig"])
		}
		if c.Context != byNode["in-a-1"] {
			t.Errorf("current = %q, want the name the incoming current context got (%q)", c.Context, byNode["in-a-1"])
		}
	})

	t.Run("no current in other keeps current", func(t *testing.T) {
		c := sample()
		c.Merge(&clientconfig.Config{Contexts: map[string]*clientconfig.Context{"x": {}}})
		if c.Context != "demo" {
			t.Errorf("current = %q, want demo kept", c.Context)
		}
	})
}

func TestDefaultPath(t *testing.T) {
	t.Setenv(clientconfig.EnvVar, "/some/where/plinthconfig")
	if p, err := clientconfig.DefaultPath(); err != nil || p != "/some/where/plinthconfig" {
		t.Errorf("DefaultPath() with %s set = %q, %v", clientconfig.EnvVar, p, err)
	}

	home := t.TempDir()
	t.Setenv(clientconfig.EnvVar, "")
	t.Setenv("HOME", home)
	p, err := clientconfig.DefaultPath()
	if err != nil {
		t.Fatal(err)
	}
	if want := filepath.Join(home, ".plinth", "config"); p != want {
		t.Errorf("DefaultPath() = %q, want %q", p, want)
	}
	if clientconfig.EnvVar != "PLINTHCONFIG" {
		t.Errorf("EnvVar = %q", clientconfig.EnvVar)
	}
}
