package backoff

import (
	"testing"
	"time"
)

func TestDoublingUpToMax(t *testing.T) {
	d := New(time.Second, 10*time.Second)
	want := []time.Duration{1, 2, 4, 8, 10, 10}
	for i, w := range want {
		if got := d.Next(); got != w*time.Second {
			t.Fatalf("wait %d = %s, want %s", i+1, got, w*time.Second)
		}
	}
	d.Reset()
	if got := d.Next(); got != time.Second {
		t.Fatalf("after Reset, wait = %s, want 1s", got)
	}
	if d.Max() != 10*time.Second {
		t.Fatalf("Max = %s, want 10s", d.Max())
	}
}

func TestMaxBelowInitial(t *testing.T) {
	d := New(5*time.Second, time.Second)
	for i := 0; i < 3; i++ {
		if got := d.Next(); got != 5*time.Second {
			t.Fatalf("wait %d = %s, want 5s (a max below the initial wait is the initial wait)", i+1, got)
		}
	}
}
