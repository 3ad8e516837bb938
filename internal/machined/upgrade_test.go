package machined

import (
	"context"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/plinthos/plinth/internal/service"
)

func TestGate(t *testing.T) {
	yes, no := true, false
	healthy := func() []service.Status {
		return []service.Status{{ID: "apid", State: service.Running, Healthy: &yes}, {ID: "once", State: service.Finished}}
	}
	if err := gate(context.Background(), healthy, nil, 5*time.Second, 50*time.Millisecond); err != nil {
		t.Errorf("healthy services: %v", err)
	}
	sick := func() []service.Status {
		return []service.Status{{ID: "apid", State: service.Running, Healthy: &no}, {ID: "trustd", State: service.Waiting}}
	}
	err := gate(context.Background(), sick, nil, 200*time.Millisecond, 50*time.Millisecond)
	if err == nil || !strings.Contains(err.Error(), "apid is unhealthy") || !strings.Contains(err.Error(), "trustd is Waiting") {
		t.Errorf("unhealthy services: %v", err)
	}
	// What the extra check finds holds the gate too.
	noLeader := func(context.Context) string { return "etcd has no leader" }
	if err := gate(context.Background(), healthy, noLeader, 200*time.Millisecond, 50*time.Millisecond); err == nil || !strings.Contains(err.Error(), "etcd has no leader") {
		t.Errorf("extra check: %v", err)
	}
	// A service that flaps restarts the settling time: healthy once, then not, never passes.
	var calls atomic.Int32
	flapping := func() []service.Status {
		if calls.Add(1)%2 == 0 {
			return sick()
		}
		return healthy()
	}
	if err := gate(context.Background(), flapping, nil, 300*time.Millisecond, 100*time.Millisecond); err == nil {
		t.Error("flapping services passed the gate")
	}
}
