// Package reaper collects the exit status of orphaned processes when machined is PID 1 (or
// a child subreaper), so that they do not linger as zombies. It never reaps a child that
// another part of machined started and waits for itself: those register with Track.
package reaper

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"os/signal"
	"sync"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/plinthos/plinth/internal/sysinfo"
)

var (
	mu      sync.Mutex
	tracked = map[int]bool{}
)

// Lock must be held from just before starting a child that the caller will wait for until
// Track has recorded it, so that the reaper cannot collect it in between. It returns the
// unlock function.
func Lock() func() {
	mu.Lock()
	return mu.Unlock
}

// TrackLocked records a child its starter will wait for; call it with Lock held.
func TrackLocked(pid int) { tracked[pid] = true }

// Untrack forgets a child once its starter has waited for it.
func Untrack(pid int) {
	mu.Lock()
	defer mu.Unlock()
	delete(tracked, pid)
}

// Needed reports whether this process must reap orphans: it is PID 1 or a child subreaper.
func Needed() bool {
	if os.Getpid() == 1 {
		return true
	}
	var flag int32
	err := unix.Prctl(unix.PR_GET_CHILD_SUBREAPER, uintptr(unsafe.Pointer(&flag)), 0, 0, 0)
	return err == nil && flag != 0
}

// Run reaps orphaned zombies whenever a child exits, until ctx is cancelled.
func Run(ctx context.Context, procRoot string, log *slog.Logger) {
	ch := make(chan os.Signal, 16)
	signal.Notify(ch, syscall.SIGCHLD)
	defer signal.Stop(ch)
	for {
		ReapOnce(procRoot, log)
		select {
		case <-ctx.Done():
			return
		case <-ch:
		}
	}
}

// ReapOnce collects every zombie child of this process that nobody tracks, and returns how
// many it collected.
func ReapOnce(procRoot string, log *slog.Logger) int {
	procs, err := sysinfo.Processes(procRoot)
	if err != nil {
		log.Warn("reaper: cannot list processes", "error", err)
		return 0
	}
	self := int32(os.Getpid())
	mu.Lock()
	defer mu.Unlock()
	n := 0
	for _, p := range procs {
		if p.PPID != self || p.State != "Z" || tracked[int(p.PID)] {
			continue
		}
		var ws syscall.WaitStatus
		pid, err := syscall.Wait4(int(p.PID), &ws, syscall.WNOHANG, nil)
		if err != nil && !errors.Is(err, syscall.ECHILD) {
			log.Warn("reaper: wait", "pid", p.PID, "error", err)
			continue
		}
		if pid > 0 {
			n++
			log.Debug("reaped an orphan", "pid", pid, "command", p.Command, "status", ws.ExitStatus())
		}
	}
	return n
}
