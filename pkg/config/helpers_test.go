package config_test

import (
	"errors"
	"fmt"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/plinthos/plinth/internal/configgen"
	"github.com/plinthos/plinth/pkg/config"
	"github.com/plinthos/plinth/pkg/secrets"
)

// fixture is one generated cluster, shared by every test of the binary: generating keys
// takes a few milliseconds, so it is done once.
type fixture struct {
	bundle       *secrets.Bundle
	controlPlane *config.MachineConfig
	worker       *config.MachineConfig
}

var (
	fixtureOnce sync.Once
	fixtureVal  fixture
	fixtureErr  error
)

func generated(t testing.TB) fixture {
	t.Helper()
	fixtureOnce.Do(func() {
		b, err := secrets.Generate(time.Now())
		if err != nil {
			fixtureErr = err
			return
		}
		cs, err := configgen.Generate(b, configgen.Options{ClusterName: "demo", Endpoint: "https://10.5.0.2:6443"})
		if err != nil {
			fixtureErr = err
			return
		}
		fixtureVal = fixture{bundle: b, controlPlane: cs.ControlPlane, worker: cs.Worker}
	})
	if fixtureErr != nil {
		t.Fatalf("generate fixture: %v", fixtureErr)
	}
	return fixtureVal
}

// controlPlane returns a private deep copy of the generated control-plane config.
func controlPlane(t testing.TB) *config.MachineConfig {
	t.Helper()
	return deepCopy(generated(t).controlPlane)
}

// worker returns a private deep copy of the generated worker config.
func worker(t testing.TB) *config.MachineConfig {
	t.Helper()
	return deepCopy(generated(t).worker)
}

// deepCopy copies a value with reflection, so that tests can mutate a config without
// touching the shared fixture (configgen's worker shares slices with the control plane)
// and without relying on the encoder under test.
func deepCopy[T any](v *T) *T {
	out := reflect.New(reflect.TypeFor[T]())
	copyValue(out.Elem(), reflect.ValueOf(v).Elem())
	return out.Interface().(*T)
}

func copyValue(dst, src reflect.Value) {
	switch src.Kind() {
	case reflect.Pointer:
		if src.IsNil() {
			return
		}
		dst.Set(reflect.New(src.Type().Elem()))
		copyValue(dst.Elem(), src.Elem())
	case reflect.Struct:
		for i := range src.NumField() {
			copyValue(dst.Field(i), src.Field(i))
		}
	case reflect.Slice:
		if src.IsNil() {
			return
		}
		dst.Set(reflect.MakeSlice(src.Type(), src.Len(), src.Len()))
		for i := range src.Len() {
			copyValue(dst.Index(i), src.Index(i))
		}
	case reflect.Map:
		if src.IsNil() {
			return
		}
		dst.Set(reflect.MakeMapWithSize(src.Type(), src.Len()))
		for _, k := range src.MapKeys() {
			v := reflect.New(src.Type().Elem()).Elem()
			copyValue(v, src.MapIndex(k))
			dst.SetMapIndex(k, v)
		}
	default:
		dst.Set(src)
	}
}

// normalized returns a deep copy of c in which empty slices and maps are nil. The YAML
// form does not distinguish `sysctls: {}` from no sysctls (empty values are omitted
// when encoding), so a round trip compares configs in this form.
func normalized(c *config.MachineConfig) *config.MachineConfig {
	out := deepCopy(c)
	normalize(reflect.ValueOf(out).Elem())
	return out
}

func normalize(v reflect.Value) {
	switch v.Kind() {
	case reflect.Pointer:
		if !v.IsNil() {
			normalize(v.Elem())
		}
	case reflect.Struct:
		for i := range v.NumField() {
			normalize(v.Field(i))
		}
	case reflect.Slice:
		if v.Len() == 0 {
			v.SetZero()
			return
		}
		for i := range v.Len() {
			normalize(v.Index(i))
		}
	case reflect.Map:
		if v.Len() == 0 {
			v.SetZero()
			return
		}
		for _, k := range v.MapKeys() {
			e := reflect.New(v.Type().Elem()).Elem()
			e.Set(v.MapIndex(k))
			normalize(e)
			v.SetMapIndex(k, e)
		}
	}
}

// mustMarshal encodes a config or fails the test.
func mustMarshal(t testing.TB, c *config.MachineConfig, withDocs bool) []byte {
	t.Helper()
	out, err := config.Marshal(c, withDocs)
	if err != nil {
		t.Fatalf("Marshal: %v", err)
	}
	return out
}

// mustLoad decodes a config or fails the test.
func mustLoad(t testing.TB, data []byte, file string) *config.Document {
	t.Helper()
	d, err := config.Load(data, file)
	if err != nil {
		t.Fatalf("Load(%s): %v\n%s", file, err, numbered(data))
	}
	return d
}

// problemsOf asserts that err is a config.Problems and returns it.
func problemsOf(t testing.TB, err error) config.Problems {
	t.Helper()
	if err == nil {
		t.Fatal("got no error, want config.Problems")
	}
	var ps config.Problems
	if !errors.As(err, &ps) {
		t.Fatalf("error is %T (%v), want config.Problems", err, err)
	}
	if len(ps) == 0 {
		t.Fatal("error is an empty config.Problems")
	}
	return ps
}

// numbered prefixes each line of a YAML text with its line number, for failure messages.
func numbered(data []byte) string {
	var b strings.Builder
	for i, line := range strings.Split(string(data), "\n") {
		fmt.Fprintf(&b, "%3d| %s\n", i+1, line)
	}
	return b.String()
}

// lineOf returns the 1-based number of the first line of text equal to line (compared
// with surrounding spaces trimmed off both), or fails the test.
func lineOf(t testing.TB, text []byte, line string) int {
	t.Helper()
	for i, l := range strings.Split(string(text), "\n") {
		if strings.TrimSpace(l) == strings.TrimSpace(line) {
			return i + 1
		}
	}
	t.Fatalf("line %q not found in\n%s", line, numbered(text))
	return 0
}
