package benchutil

import (
	"strings"
	"testing"
	"time"
)

func TestMemByComponent(t *testing.T) {
	out := `PID  PPID  STATE  THREADS  CPU-TIME  RSS      PSS      COMMAND
1    0     S      9        1.20s     30.0Mi   20.5Mi   /usr/bin/machined
2    0     S      1        0.00s     0B       -        -
120  1     S      7        0.50s     16.0Mi   8.0Mi    /usr/bin/machined apid --config x
121  1     S      3        0.10s     1.0Gi    512.0Ki  /usr/local/bin/something else
`
	got := MemByComponent(out)
	if m := got["machined"]; m.RSS != 30 || m.PSS != 20.5 {
		t.Errorf("machined: %+v", m)
	}
	if m := got["apid"]; m.RSS != 16 || m.PSS != 8 {
		t.Errorf("apid: %+v", m)
	}
	if m := got["other"]; m.RSS != 1024 || m.PSS != 0.5 {
		t.Errorf("other: %+v", m)
	}
	if len(got) != 3 {
		t.Errorf("kernel threads counted: %v", got)
	}
}

func TestMedian(t *testing.T) {
	if m := Median([]time.Duration{3, 1, 2}); m != 2 {
		t.Errorf("median of 3,1,2 = %v", m)
	}
	if m := Median[time.Duration](nil); m != 0 {
		t.Errorf("median of none = %v", m)
	}
}

func TestSummaryAndAim(t *testing.T) {
	got := Summary([]time.Duration{31 * time.Second, 28100 * time.Millisecond, 29300 * time.Millisecond})
	if got != "29.3 s (28.1-31.0 s over 3 runs)" {
		t.Errorf("Summary %q", got)
	}
	if a := Aim("x", "1", "under 2", false); !strings.HasSuffix(a, "aim: under 2 (NOT met)") {
		t.Errorf("Aim %q", a)
	}
}

func TestCPUByComponent(t *testing.T) {
	before := `PID  PPID  STATE  THREADS  CPU-TIME  RSS      PSS      COMMAND
1    0     S      9        1.20s     30.0Mi   20.5Mi   /usr/bin/machined
58   1     S      12       10.00s    90.0Mi   58.0Mi   /usr/bin/kubelet --config=/var/lib/kubelet/config.yaml
70   60    S      8        5.00s     9.0Mi    4.0Mi    /usr/bin/containerd-shim-runc-v2 -namespace k8s.io -id a
90   60    S      8        3.00s     9.0Mi    4.0Mi    /usr/bin/containerd-shim-runc-v2 -namespace k8s.io -id gone
`
	after := `PID  PPID  STATE  THREADS  CPU-TIME  RSS      PSS      COMMAND
1    0     S      9        1.50s     30.0Mi   20.5Mi   /usr/bin/machined
58   1     S      12       10.60s    90.0Mi   58.0Mi   /usr/bin/kubelet --config=/var/lib/kubelet/config.yaml
70   60    S      8        5.30s     9.0Mi    4.0Mi    /usr/bin/containerd-shim-runc-v2 -namespace k8s.io -id a
80   60    S      8        0.30s     9.0Mi    4.0Mi    /usr/bin/containerd-shim-runc-v2 -namespace k8s.io -id b
`
	got := CPUByComponent(before, after, 30*time.Second)
	want := map[string]float64{"machined": 1, "kubelet": 2, "containerd shims": 2}
	if len(got) != len(want) {
		t.Fatalf("got %v, want %v", got, want)
	}
	for k, v := range want {
		if d := got[k] - v; d > 1e-9 || d < -1e-9 {
			t.Errorf("%s: %.3f %%, want %.3f", k, got[k], v)
		}
	}
}

func TestSummaryFloat(t *testing.T) {
	if s := SummaryFloat([]float64{8.3, 7.8, 8.1, 8.0}, " %", "windows"); s != "8.1 % (7.8-8.3 % over 4 windows)" {
		t.Errorf("SummaryFloat = %q", s)
	}
	if s := SummaryFloat(nil, " %", "windows"); s != "no windows" {
		t.Errorf("SummaryFloat of none = %q", s)
	}
}
