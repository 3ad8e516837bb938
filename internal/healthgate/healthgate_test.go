package healthgate

import (
	"context"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

func TestWait(t *testing.T) {
	ok := func(context.Context) []string { return nil }
	if err := Wait(context.Background(), 5*time.Second, 50*time.Millisecond, ok); err != nil {
		t.Errorf("healthy: %v", err)
	}
	sick := func(context.Context) []string { return []string{"apid is unhealthy", "trustd is Waiting"} }
	if err := Wait(context.Background(), 200*time.Millisecond, 50*time.Millisecond, sick); err == nil || !strings.Contains(err.Error(), "apid is unhealthy, trustd is Waiting") {
		t.Errorf("sick: %v", err)
	}
	// Flapping restarts the settling time and never passes.
	var n atomic.Int32
	flapping := func(ctx context.Context) []string {
		if n.Add(1)%2 == 0 {
			return sick(ctx)
		}
		return nil
	}
	if err := Wait(context.Background(), 300*time.Millisecond, 100*time.Millisecond, flapping); err == nil {
		t.Error("flapping passed")
	}
}

func TestServiceAndEtcd(t *testing.T) {
	for _, c := range []struct{ state, health, want string }{
		{"Running", "healthy", ""}, {"Running", "", ""}, {"Finished", "", ""}, {"Skipped", "", ""},
		{"Running", "unhealthy", "x is unhealthy"}, {"Waiting", "", "x is Waiting"}, {"Failed", "unhealthy", "x is Failed"},
	} {
		if got := Service("x", c.state, c.health); got != c.want {
			t.Errorf("Service(%s, %q) = %q, want %q", c.state, c.health, got, c.want)
		}
	}
	if Etcd(1, false, nil) != "" || Etcd(0, false, nil) != "etcd has no leader" || !strings.Contains(Etcd(1, true, nil), "learner") ||
		Etcd(1, false, []string{"NOSPACE"}) != "etcd: NOSPACE" {
		t.Error("Etcd")
	}
}
