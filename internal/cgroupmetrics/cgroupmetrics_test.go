package cgroupmetrics

import (
	"os"
	"testing"
)

func TestParse(t *testing.T) {
	for _, tc := range []struct {
		file   string
		memory uint64
		cpu    float64
	}{
		// Captured from `ctr tasks metrics --format json` on a cgroup v1 node.
		{"testdata/v1.json", 966656, 0.037177358},
		{"testdata/v2.json", 16777216 - 2097152, 2.5},
	} {
		data, err := os.ReadFile(tc.file)
		if err != nil {
			t.Fatal(err)
		}
		mem, cpu, err := Parse(data)
		if err != nil {
			t.Fatalf("%s: %v", tc.file, err)
		}
		if mem != tc.memory || cpu != tc.cpu {
			t.Errorf("%s: memory %d, cpu %v; want %d, %v", tc.file, mem, cpu, tc.memory, tc.cpu)
		}
	}
}

func TestParseRefusesWhatIsNotMetrics(t *testing.T) {
	for _, in := range []string{``, `[]`, `{}`, `{"cpu": {"usage_usec": 1}}`, `{"memory": "x"}`, `{"memory": null}`} {
		if _, _, err := Parse([]byte(in)); err == nil {
			t.Errorf("Parse(%q): no error", in)
		}
	}
}

func TestWorkingSetNeverWraps(t *testing.T) {
	if got := workingSet(10, 20); got != 0 {
		t.Errorf("workingSet(10, 20) = %d", got)
	}
}
