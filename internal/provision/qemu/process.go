package qemu

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// procDir is where processes are looked up; tests change it.
var procDir = "/proc"

// Pacing of a VM's stop.
var (
	stopGrace = 10 * time.Second // after SIGTERM, before SIGKILL
	stopPoll  = 100 * time.Millisecond
)

// isEmulator says whether pid is a running emulator whose command line holds marker (the
// path of the VM's disk): a process id recorded earlier may have been reused since.
func isEmulator(pid int, marker string) bool {
	if pid <= 0 {
		return false
	}
	dir := filepath.Join(procDir, strconv.Itoa(pid))
	cmdline, err := os.ReadFile(filepath.Join(dir, "cmdline"))
	if err != nil || !bytes.Contains(cmdline, []byte(marker)) {
		return false
	}
	// A zombie has ended, whatever its command line said.
	stat, err := os.ReadFile(filepath.Join(dir, "stat"))
	if err != nil {
		return false
	}
	if i := bytes.LastIndexByte(stat, ')'); i >= 0 && i+2 < len(stat) && stat[i+2] == 'Z' {
		return false
	}
	return true
}

// readPIDFile reads the process id the emulator wrote.
func readPIDFile(path string) (int, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return 0, err
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(data)))
	if err != nil || pid <= 0 {
		return 0, fmt.Errorf("%s holds no process id: %q", path, data)
	}
	return pid, nil
}

// stopEmulator ends the emulator pid (when it is the one of marker's VM): SIGTERM, which
// QEMU takes as "quit now" (the guest is not asked: the VM is being thrown away), then
// SIGKILL after stopGrace. It returns once the process is gone; false when it was not
// running.
func stopEmulator(ctx context.Context, pid int, marker string) (bool, error) {
	if !isEmulator(pid, marker) {
		return false, nil
	}
	if err := syscall.Kill(pid, syscall.SIGTERM); err != nil && !errors.Is(err, syscall.ESRCH) {
		return true, fmt.Errorf("stop the emulator %d: %w", pid, err)
	}
	deadline := time.Now().Add(stopGrace)
	killed := false
	for isEmulator(pid, marker) {
		if !killed && time.Now().After(deadline) {
			if err := syscall.Kill(pid, syscall.SIGKILL); err != nil && !errors.Is(err, syscall.ESRCH) {
				return true, fmt.Errorf("kill the emulator %d: %w", pid, err)
			}
			killed, deadline = true, time.Now().Add(stopGrace)
		} else if killed && time.Now().After(deadline) {
			return true, fmt.Errorf("the emulator %d is still there %s after SIGKILL", pid, stopGrace)
		}
		t := time.NewTimer(stopPoll)
		select {
		case <-ctx.Done():
			t.Stop()
			return true, fmt.Errorf("stop the emulator %d: %w", pid, ctx.Err())
		case <-t.C:
		}
	}
	return true, nil
}
