package resource

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"time"
)

type inner struct {
	Name  string
	Ports []int
}

type testSpec struct {
	Name    string
	Count   int
	Enabled bool
	Tags    []string
	Attrs   map[string]string
	When    time.Time
	Nested  struct{ Items []inner }
	Ptr     *inner
	Any     any
	Fixed   [2][]string
	ByName  map[string]*inner
	private []string
}

func sampleSpec() testSpec {
	s := testSpec{
		Name:    "eth0",
		Count:   3,
		Enabled: true,
		Tags:    []string{"a", "b"},
		Attrs:   map[string]string{"k": "v"},
		When:    time.Date(2026, 1, 2, 3, 4, 5, 6, time.FixedZone("X", 3600)),
		Ptr:     &inner{Name: "p", Ports: []int{1}},
		Any:     []string{"x"},
		Fixed:   [2][]string{{"f"}, {"g"}},
		ByName:  map[string]*inner{"n": {Name: "n", Ports: []int{2}}},
		private: []string{"shared"},
	}
	s.Nested.Items = []inner{{Name: "i", Ports: []int{80, 443}}}
	return s
}

func TestTypedDeepCopy(t *testing.T) {
	orig := New("network", "Links", "eth0", sampleSpec())
	orig.Metadata().Labels = map[string]string{"l": "1"}
	cp := orig.DeepCopy().(*Typed[testSpec])
	if !reflect.DeepEqual(orig, cp) {
		t.Fatalf("copy differs:\n%+v\n%+v", orig, cp)
	}
	if !cp.TypedSpec().When.Equal(orig.TypedSpec().When) || cp.TypedSpec().When.Location() != orig.TypedSpec().When.Location() {
		t.Error("time not preserved")
	}

	s := cp.TypedSpec()
	s.Tags[0] = "changed"
	s.Attrs["k"] = "changed"
	s.Nested.Items[0].Ports[0] = 1
	s.Ptr.Ports[0] = 99
	s.Any.([]string)[0] = "changed"
	s.Fixed[0][0] = "changed"
	s.ByName["n"].Ports[0] = 99
	cp.Metadata().Labels["l"] = "changed"

	if !reflect.DeepEqual(orig.TypedSpec(), func() *testSpec { x := sampleSpec(); return &x }()) {
		t.Errorf("mutating the copy changed the original: %+v", orig.TypedSpec())
	}
	if orig.Metadata().Labels["l"] != "1" {
		t.Error("mutating the copy's labels changed the original")
	}
}

func TestTypedDeepCopyNilsStayNil(t *testing.T) {
	r := New("ns", "T", "id", testSpec{})
	cp := r.DeepCopy().(*Typed[testSpec])
	if s := cp.TypedSpec(); s.Tags != nil || s.Attrs != nil || s.Ptr != nil || s.Any != nil {
		t.Errorf("nil fields became non-nil: %+v", s)
	}
	if cp.Metadata().Labels != nil {
		t.Error("nil labels became non-nil")
	}
}

func TestTypedScalarSpec(t *testing.T) {
	r := New("ns", "T", "id", "hello")
	if got := *r.DeepCopy().(*Typed[string]).TypedSpec(); got != "hello" {
		t.Errorf("got %q", got)
	}
	if got := *r.Spec().(*string); got != "hello" {
		t.Errorf("Spec() = %q", got)
	}
}

func TestTypedMarshal(t *testing.T) {
	type spec struct {
		Address string `json:"address" yaml:"address"`
	}
	r := New("network", "Addresses", "eth0/10.0.0.1", spec{Address: "10.0.0.1/24"})
	b, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	var got map[string]map[string]any
	if err := json.Unmarshal(b, &got); err != nil {
		t.Fatal(err)
	}
	if got["metadata"]["id"] != "eth0/10.0.0.1" || got["metadata"]["phase"] != "running" || got["spec"]["address"] != "10.0.0.1/24" {
		t.Errorf("unexpected JSON %s", b)
	}
	if strings.Contains(string(b), "owner") {
		t.Errorf("empty owner should be omitted: %s", b)
	}
	y, err := r.MarshalYAML()
	if err != nil || y.(envelope).Metadata.ID != "eth0/10.0.0.1" {
		t.Errorf("MarshalYAML = %+v, %v", y, err)
	}
}
