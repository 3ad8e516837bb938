package config_test

import (
	"bytes"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/plinthos/plinth/internal/docgen"
	"github.com/plinthos/plinth/pkg/config"
)

// TestDocsUpToDate fails when the doc comments of the configuration types changed
// without regenerating zz_docs.go and docs/reference/config.md.
func TestDocsUpToDate(t *testing.T) {
	types, err := docgen.Parse(".")
	if err != nil {
		t.Fatalf("docgen.Parse: %v", err)
	}
	src, err := docgen.GoSource("config", types)
	if err != nil {
		t.Fatalf("docgen.GoSource: %v", err)
	}
	for _, f := range []struct {
		path string
		want []byte
	}{
		{"zz_docs.go", src},
		{filepath.Join("..", "..", "docs", "reference", "config.md"), docgen.Markdown("MachineConfig", types)},
	} {
		got, err := os.ReadFile(f.path)
		if err != nil {
			t.Errorf("%v; run make generate", err)
			continue
		}
		if !bytes.Equal(got, f.want) {
			t.Errorf("%s is out of date with the doc comments in pkg/config; run make generate (first difference at line %d)",
				f.path, firstDiffLine(got, f.want))
		}
	}
}

func firstDiffLine(a, b []byte) int {
	la, lb := strings.Split(string(a), "\n"), strings.Split(string(b), "\n")
	for i := range min(len(la), len(lb)) {
		if la[i] != lb[i] {
			return i + 1
		}
	}
	return min(len(la), len(lb)) + 1
}

// TestEveryFieldDocumented: every YAML field of every configuration type reachable from
// MachineConfig has a doc comment, and the reference page lists it.
func TestEveryFieldDocumented(t *testing.T) {
	types, err := docgen.Parse(".")
	if err != nil {
		t.Fatalf("docgen.Parse: %v", err)
	}
	md := string(docgen.Markdown("MachineConfig", types))
	seen := map[reflect.Type]bool{}
	var walk func(reflect.Type)
	walk = func(rt reflect.Type) {
		for rt.Kind() == reflect.Pointer || rt.Kind() == reflect.Slice || rt.Kind() == reflect.Map {
			rt = rt.Elem()
		}
		if rt.Kind() != reflect.Struct || seen[rt] {
			return
		}
		seen[rt] = true
		doc, ok := types[rt.Name()]
		if !ok {
			t.Errorf("type %s is not documented", rt.Name())
			return
		}
		if !strings.Contains(md, "\n## "+rt.Name()+"\n") {
			t.Errorf("reference page has no section for %s", rt.Name())
		}
		var names []string
		for _, f := range doc.Fields {
			names = append(names, f.Name)
		}
		if want := config.YAMLFieldNames(rt); !slices.Equal(names, want) {
			t.Errorf("%s: documented fields %v, want %v", rt.Name(), names, want)
		}
		for i := range rt.NumField() {
			walk(rt.Field(i).Type)
		}
	}
	walk(reflect.TypeFor[config.MachineConfig]())
	if len(seen) < 20 {
		t.Errorf("walked only %d types", len(seen))
	}
}

func TestYAMLFieldNames(t *testing.T) {
	got := config.YAMLFieldNames(reflect.TypeFor[config.MachineConfig]())
	if want := []string{"apiVersion", "kind", "machine", "cluster"}; !slices.Equal(got, want) {
		t.Errorf("YAMLFieldNames(MachineConfig) = %v, want %v", got, want)
	}
	type sample struct {
		A       string `yaml:"a,omitempty"`
		B       string `yaml:"-"`
		C       string
		d       string `yaml:"d"`
		E       string `yaml:"e"`
		_       string `yaml:"blank"`
		Ignored string `json:"ignored"`
	}
	_ = sample{}.d
	if got, want := config.YAMLFieldNames(reflect.TypeFor[sample]()), []string{"a", "e"}; !slices.Equal(got, want) {
		t.Errorf("YAMLFieldNames(sample) = %v, want %v", got, want)
	}
}
