package upgrade

import (
	"strings"
	"testing"
	"time"
)

func TestAssess(t *testing.T) {
	rec := func(state, reason string) Record {
		return Record{From: "v1", FromSlot: "A", To: "v2", Slot: "B", State: state, Reason: reason}
	}
	for _, c := range []struct {
		name          string
		r             Record
		booted, armed string
		want          Verdict
		reason        string
	}{
		{"staged, not rebooted yet", rec(Armed, ""), "A", "B", Nothing, ""},
		{"trial boot", rec(Armed, ""), "B", "", Trial, ""},
		{"panic before machined", rec(Armed, ""), "A", "", CameBack, "did not reach machined"},
		{"machined restarted in the trial", rec(Trying, ""), "B", "", Trial, ""},
		{"machined stopped in the trial", rec(Trying, ""), "A", "", CameBack, "before its health gate passed"},
		{"gate failed", rec(GateFailed, "service apid is not healthy"), "A", "", CameBack, "service apid is not healthy"},
		{"committed", rec(Committed, ""), "B", "", Nothing, ""},
		{"rolled back already", rec(RolledBack, "x"), "A", "", Nothing, ""},
		{"reverted by hand", rec(Reverted, ""), "A", "", Nothing, ""},
		{"superseded before it booted", rec(Superseded, ""), "A", "", Nothing, ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			v, reason := Assess(c.r, c.booted, c.armed)
			if v != c.want || !strings.Contains(reason, c.reason) {
				t.Errorf("Assess = %v %q, want %v %q", v, reason, c.want, c.reason)
			}
		})
	}
}

func TestLoadSave(t *testing.T) {
	dir := t.TempDir()
	if _, ok, err := Load(dir); ok || err != nil {
		t.Fatalf("empty dir: %v %v", ok, err)
	}
	now := time.Date(2026, 12, 2, 10, 0, 0, 0, time.UTC)
	if err := Save(dir, Record{From: "v1", To: "v2", State: Armed}, now); err != nil {
		t.Fatal(err)
	}
	r, ok, err := Load(dir)
	if err != nil || !ok || r.To != "v2" || !r.Updated.Equal(now) {
		t.Fatalf("Load = %+v %v %v", r, ok, err)
	}
}
