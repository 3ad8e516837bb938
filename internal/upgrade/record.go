// Package upgrade keeps the record of an OS upgrade on the node's STATE partition and
// decides, at each boot, what the boot means for it: the trial boot of a new version, a
// trial that came back on the old slot (rolled back, and why), or nothing to do.
//
// The record is written before the trial is armed and at each step after, so a boot that
// finds it knows how far the trial got even when the trial boot wrote nothing (a kernel
// panic before machined, an init that exits).
package upgrade

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/plinthos/plinth/internal/atomicfile"
)

// FileName is the record's file in the state directory.
const FileName = "upgrade.json"

// States of a Record.
const (
	// Armed: the new slot is written and its one-shot trial boot armed; the node has not
	// booted it yet (upgrade --stage leaves it so until the next reboot).
	Armed = "armed"
	// Trying: machined of the trial boot started and waits for the health gate.
	Trying = "trying"
	// GateFailed: the trial's health gate failed; the trial boot reboots into the old slot.
	GateFailed = "gate-failed"
	// Committed: the gate passed; the new slot is the default.
	Committed = "committed"
	// RolledBack: the trial came back on the old slot (Reason says why).
	RolledBack = "rolled-back"
	// Reverted: a rollback by hand made the other slot the default.
	Reverted = "reverted"
	// Superseded: a staged upgrade that a newer upgrade replaced before it booted.
	Superseded = "superseded"
)

// Record is the last upgrade (or rollback) of the node.
type Record struct {
	// From and To are the versions before and after; FromSlot and Slot their slots.
	From     string `json:"from"`
	FromSlot string `json:"fromSlot"`
	To       string `json:"to"`
	Slot     string `json:"slot"`
	State    string `json:"state"`
	// Reason says why the trial was rolled back.
	Reason string `json:"reason,omitempty"`
	// Actor is the id of the upgrade or rollback call.
	Actor string `json:"actor,omitempty"`
	// Updated is when State last changed.
	Updated time.Time `json:"updated"`
}

// Load reads the record in dir; ok is false when there is none.
func Load(dir string) (r Record, ok bool, err error) {
	data, err := os.ReadFile(filepath.Join(dir, FileName))
	if errors.Is(err, fs.ErrNotExist) {
		return r, false, nil
	}
	if err != nil {
		return r, false, fmt.Errorf("upgrade record: %w", err)
	}
	if err := json.Unmarshal(data, &r); err != nil {
		return r, false, fmt.Errorf("upgrade record %s: %w", filepath.Join(dir, FileName), err)
	}
	return r, true, nil
}

// Save writes r to dir atomically, stamping Updated.
func Save(dir string, r Record, now time.Time) error {
	r.Updated = now.UTC()
	data, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return fmt.Errorf("upgrade record: %w", err)
	}
	if err := atomicfile.Write(filepath.Join(dir, FileName), append(data, '\n'), 0o600); err != nil {
		return fmt.Errorf("upgrade record: %w", err)
	}
	return nil
}

// Verdict is what a boot means for the recorded upgrade.
type Verdict int

const (
	// Nothing: no upgrade in flight (none, committed, rolled back or reverted already, or
	// armed and waiting for the next reboot).
	Nothing Verdict = iota
	// Trial: this is the trial boot; run the health gate, then commit or reboot.
	Trial
	// CameBack: the trial ended and the machine booted the old slot: the upgrade is rolled
	// back; Reason says why as far as the record knows.
	CameBack
)

// Assess says what this boot, of slot booted, means for r; armed is the slot of a one-shot
// trial still pending in the boot loader ("" when none).
func Assess(r Record, booted, armed string) (Verdict, string) {
	switch r.State {
	case Armed:
		if booted == r.Slot {
			return Trial, ""
		}
		if armed == r.Slot {
			return Nothing, "" // staged; the trial is the next boot
		}
		return CameBack, fmt.Sprintf("the trial boot of %s did not reach machined: the kernel panicked, hung or its init failed (the machine rebooted into %s)", r.To, r.From)
	case Trying:
		if booted == r.Slot {
			// machined of the trial restarted within the same boot, or the machine booted
			// the new slot again without a commit: the gate still decides.
			return Trial, ""
		}
		return CameBack, fmt.Sprintf("the trial boot of %s started machined but stopped before its health gate passed (see `logs --previous`)", r.To)
	case GateFailed:
		if booted == r.Slot {
			return Trial, ""
		}
		return CameBack, r.Reason
	}
	return Nothing, ""
}
