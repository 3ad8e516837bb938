package machineapi

import (
	"slices"
	"testing"

	"github.com/plinthos/plinth/internal/sysinfo"
)

// TestProcessSubtree is the regression test of finding 10: in local mode the node's
// processes are machined's own tree, not every process of the host.
func TestProcessSubtree(t *testing.T) {
	procs := []sysinfo.Process{{PID: 1}, {PID: 50, PPID: 1}, {PID: 100, PPID: 1}, {PID: 101, PPID: 100}, {PID: 102, PPID: 101}, {PID: 7, PPID: 50}}
	var got []int32
	for _, p := range subtree(procs, 100) {
		got = append(got, p.PID)
	}
	if !slices.Equal(got, []int32{100, 101, 102}) {
		t.Errorf("subtree of 100 = %v", got)
	}
}
