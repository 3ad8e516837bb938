package reaper

import (
	"log/slog"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// TestReapsOrphansButNotTrackedChildren makes the test process a child subreaper, creates an
// orphan (a grandchild whose parent exits) and a tracked child, and checks that only the
// orphan is reaped.
func TestReapsOrphansButNotTrackedChildren(t *testing.T) {
	if err := unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0); err != nil {
		t.Skipf("cannot become a child subreaper: %v", err)
	}
	defer func() { _ = unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 0, 0, 0, 0) }()
	if !Needed() {
		t.Fatal("Needed() is false for a subreaper")
	}
	log := slog.New(slog.DiscardHandler)

	// A tracked child that exits at once: its starter waits for it.
	unlock := Lock()
	tracked := exec.Command("/bin/true")
	if err := tracked.Start(); err != nil {
		unlock()
		t.Fatal(err)
	}
	TrackLocked(tracked.Process.Pid)
	unlock()

	// An orphan: sh starts a short sleep in the background and exits; the sleep is
	// reparented to this process and becomes a zombie when it ends.
	out, err := exec.Command("/bin/sh", "-c", "sleep 0.2 & echo $!").Output()
	if err != nil {
		t.Fatal(err)
	}
	orphan, err := strconv.Atoi(strings.TrimSpace(string(out)))
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	reaped := 0
	for reaped == 0 && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
		reaped += ReapOnce("/proc", log)
	}
	if reaped == 0 {
		t.Fatalf("orphan %d was not reaped", orphan)
	}
	if _, err := os.Stat("/proc/" + strconv.Itoa(orphan)); err == nil {
		t.Errorf("orphan %d still exists", orphan)
	}
	// The tracked child is left for its starter.
	if err := tracked.Wait(); err != nil {
		t.Errorf("the tracked child was reaped by the reaper: %v", err)
	}
	Untrack(tracked.Process.Pid)
}
