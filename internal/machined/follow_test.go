package machined

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/plinthos/plinth/internal/clock"
	"github.com/plinthos/plinth/internal/resource"
)

type testSpec struct {
	Args       []string
	Generation string
}

// runs records each run of a followed service: the spec it got, and when it was stopped.
type runs struct {
	started chan testSpec
	stopped chan testSpec
}

func (r *runs) run(ctx context.Context, s testSpec) error {
	r.started <- s
	<-ctx.Done()
	r.stopped <- s
	return nil
}

func recv[T any](t *testing.T, ch <-chan T, what string) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(10 * time.Second):
		t.Fatalf("no %s", what)
		panic("unreachable")
	}
}

// TestFollowerRestartsOnNewSpec is the regression test of kubelet (and containerd)
// reading their spec once: a no-reboot apply changed kubelet's arguments and the running
// kubelet kept the old ones. The followed service runs again with the new spec when the
// key changes, and not when only something else changes.
func TestFollowerRestartsOnNewSpec(t *testing.T) {
	store := resource.NewStore(clock.Real{})
	r := &runs{started: make(chan testSpec, 4), stopped: make(chan testSpec, 4)}
	f := follower[testSpec]{
		name: "kubelet",
		watch: func(ctx context.Context) (<-chan resource.Event, error) {
			return store.WatchID(ctx, "k8s", "KubeletSpecs", "default")
		},
		key: func(s testSpec) string { return s.Generation },
		run: r.run,
	}
	ctx, cancel := context.WithCancel(context.Background())
	var logs bytes.Buffer
	done := make(chan error, 1)
	go func() { done <- f.Run(ctx, &logs) }()

	res := resource.New("k8s", "KubeletSpecs", "default", testSpec{Args: []string{"--a"}, Generation: "g1"})
	if err := store.Create(res); err != nil {
		t.Fatal(err)
	}
	if got := recv(t, r.started, "first start"); got.Generation != "g1" {
		t.Fatalf("started with %+v", got)
	}
	// Same key: no restart. A new key: the old run stops, a new one starts with it.
	*res.TypedSpec() = testSpec{Args: []string{"--a"}, Generation: "g1"}
	if err := store.Update(res); err != nil {
		t.Fatal(err)
	}
	*res.TypedSpec() = testSpec{Args: []string{"--a", "--node-labels=pool=blue"}, Generation: "g2"}
	if err := store.Update(res); err != nil {
		t.Fatal(err)
	}
	if got := recv(t, r.stopped, "stop of the first run"); got.Generation != "g1" {
		t.Fatalf("stopped %+v", got)
	}
	if got := recv(t, r.started, "second start"); got.Generation != "g2" || len(got.Args) != 2 {
		t.Fatalf("restarted with %+v", got)
	}
	select {
	case s := <-r.started:
		t.Fatalf("an extra start with %+v", s)
	default:
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	recv(t, r.stopped, "stop at the end")
	if !strings.Contains(logs.String(), "kubelet's configuration changed (g2): restarting kubelet") {
		t.Errorf("logs:\n%s", logs.String())
	}
}
