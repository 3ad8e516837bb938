package service

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/plinthos/plinth/internal/clock"
	"github.com/plinthos/plinth/internal/logstore"
	"github.com/plinthos/plinth/internal/reaper"
)

// memLog returns a memory-only log.
func memLog(t *testing.T) *logstore.Log {
	t.Helper()
	s, err := logstore.Open("", logstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s.Log("test")
}

// waitLine waits for a line with prefix in l and returns it.
func waitLine(t *testing.T, l *logstore.Log, prefix string) string {
	t.Helper()
	var found string
	waitFor(t, fmt.Sprintf("log line %q", prefix), func() bool {
		for _, line := range l.Tail(-1) {
			if strings.HasPrefix(line, prefix) {
				found = line
				return true
			}
		}
		return false
	})
	return found
}

// runAsync runs r in the background; the returned function cancels it and returns Run's
// result and how long the stop took.
func runAsync(t *testing.T, r ProcessRunner, l *logstore.Log) (stop func() (time.Duration, error)) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	ch := make(chan error, 1)
	go func() { ch <- r.Run(ctx, l) }()
	t.Cleanup(cancel)
	return func() (time.Duration, error) {
		start := time.Now()
		cancel()
		select {
		case err := <-ch:
			return time.Since(start), err
		case <-time.After(10 * time.Second):
			t.Fatal("Run did not return after cancel")
		}
		return 0, nil
	}
}

// gone reports whether pid has exited (or is a zombie waiting for a reaper that is not us).
func gone(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return true
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	return i < 0 || strings.HasPrefix(s[i+1:], " Z") || strings.HasPrefix(s[i+1:], " X")
}

func TestProcessOutputAndSIGTERM(t *testing.T) {
	l := memLog(t)
	r := ProcessRunner{Path: "/bin/sh", Args: []string{"-c", "echo hi; echo err >&2; sleep 100"}}
	if got := r.String(); got != "process /bin/sh -c echo hi; echo err >&2; sleep 100" {
		t.Fatalf("String = %q", got)
	}
	stop := runAsync(t, r, l)
	waitLine(t, l, "err")
	if got := l.Tail(-1); got[0] != "hi" {
		t.Fatalf("log %q", got)
	}
	took, err := stop()
	var exit *reaper.ExitError
	if !errors.As(err, &exit) || !strings.Contains(err.Error(), "signal: terminated") {
		t.Fatalf("Run = %v", err)
	}
	if took > 5*time.Second {
		t.Fatalf("SIGTERM stop took %s", took)
	}
}

func TestProcessTrappingTERMIsKilled(t *testing.T) {
	l := memLog(t)
	r := ProcessRunner{Path: "/bin/sh", Args: []string{"-c", `trap "" TERM; echo ready; sleep 100`}, GracePeriod: 200 * time.Millisecond}
	stop := runAsync(t, r, l)
	waitLine(t, l, "ready")
	took, err := stop()
	if err == nil || !strings.Contains(err.Error(), "did not exit within 200ms of SIGTERM, sent SIGKILL") || !strings.Contains(err.Error(), "signal: killed") {
		t.Fatalf("Run = %v", err)
	}
	if took < 200*time.Millisecond {
		t.Fatalf("killed after %s, before the grace period", took)
	}
}

func TestProcessExitCode(t *testing.T) {
	l := memLog(t)
	err := ProcessRunner{Path: "/bin/sh", Args: []string{"-c", "echo bye; exit 3"}}.Run(context.Background(), l)
	var exit *reaper.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != 3 || !strings.Contains(err.Error(), "exit status 3") {
		t.Fatalf("Run = %v", err)
	}
	if got := l.Tail(-1); len(got) != 1 || got[0] != "bye" {
		t.Fatalf("log %q", got)
	}
	if err := (ProcessRunner{Path: "/bin/true"}).Run(context.Background(), nil); err != nil {
		t.Fatalf("true: %v", err)
	}
	err = ProcessRunner{Path: "/nonexistent/prog"}.Run(context.Background(), l)
	if err == nil || !strings.Contains(err.Error(), "start /nonexistent/prog") {
		t.Fatalf("Run of a missing program = %v", err)
	}
}

func TestProcessEnvAndDir(t *testing.T) {
	l := memLog(t)
	dir := t.TempDir()
	err := ProcessRunner{Path: "/bin/sh", Args: []string{"-c", `echo "$FOO $(pwd)"`}, Env: []string{"FOO=bar"}, Dir: dir}.Run(context.Background(), l)
	if err != nil {
		t.Fatal(err)
	}
	if got := l.Tail(-1); len(got) != 1 || got[0] != "bar "+dir {
		t.Fatalf("log %q", got)
	}
}

func TestProcessGroupKilledOnStop(t *testing.T) {
	l := memLog(t)
	r := ProcessRunner{Path: "/bin/sh", Args: []string{"-c", "sleep 100 & echo child $!; wait"}}
	stop := runAsync(t, r, l)
	pid, err := strconv.Atoi(strings.TrimPrefix(waitLine(t, l, "child "), "child "))
	if err != nil {
		t.Fatal(err)
	}
	if gone(pid) {
		t.Fatal("grandchild not running")
	}
	if _, err := stop(); err == nil {
		t.Fatal("no error after stop")
	}
	waitFor(t, "grandchild to die", func() bool { return gone(pid) })
}

func TestProcessGroupKilledAfterExit(t *testing.T) {
	l := memLog(t)
	// The shell exits at once and leaves a sleep behind that holds the output pipe.
	start := time.Now()
	err := ProcessRunner{Path: "/bin/sh", Args: []string{"-c", "sleep 100 & echo child $!"}}.Run(context.Background(), l)
	if err != nil {
		t.Fatal(err)
	}
	if took := time.Since(start); took > 5*time.Second {
		t.Fatalf("Run took %s", took)
	}
	pid, err := strconv.Atoi(strings.TrimPrefix(waitLine(t, l, "child "), "child "))
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, "left-behind grandchild to die", func() bool { return gone(pid) })
}

func TestProcessCgroupNotUsable(t *testing.T) {
	l := memLog(t)
	dir := filepath.Join(t.TempDir(), "not-a-cgroup")
	err := ProcessRunner{Path: "/bin/sh", Args: []string{"-c", "echo ran"}, Cgroup: dir}.Run(context.Background(), l)
	if err != nil {
		t.Fatal(err)
	}
	got := strings.Join(l.Tail(-1), "\n")
	if !strings.Contains(got, "[plinth] cgroup "+dir+": not in a cgroup filesystem; running without it") || !strings.Contains(got, "ran") {
		t.Fatalf("log %q", got)
	}
	if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("created %s outside cgroupfs", dir)
	}
}

func TestProcessCgroup(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root")
	}
	l := memLog(t)
	rel := fmt.Sprintf("plinth-test-%d", os.Getpid())
	t.Cleanup(func() {
		// Remove what was created, in every hierarchy.
		paths, _ := filepath.Glob(filepath.Join(cgroupRoot, "*", rel))
		paths = append(paths, filepath.Join(cgroupRoot, rel))
		for _, p := range paths {
			_ = syscall.Rmdir(p)
		}
	})
	err := ProcessRunner{Path: "/bin/sh", Args: []string{"-c", "cat /proc/self/cgroup"}, Cgroup: rel}.Run(context.Background(), l)
	if err != nil {
		t.Fatal(err)
	}
	lines := l.Tail(-1)
	for _, line := range lines {
		if strings.HasPrefix(line, "[plinth] cgroup") {
			t.Skipf("cgroups not usable here: %s", line)
		}
	}
	// In every hierarchy (v1 ones and the v2 one) from its first instruction.
	for _, line := range lines {
		if !strings.HasSuffix(line, ":/"+rel) {
			t.Fatalf("process not in cgroup %s: %q", rel, lines)
		}
	}
	// No thread of the test process stayed there.
	tasks, _ := filepath.Glob("/proc/self/task/*/cgroup")
	for _, task := range tasks {
		b, _ := os.ReadFile(task)
		if strings.Contains(string(b), rel) {
			t.Fatalf("%s: %s", task, b)
		}
	}
}

func TestProcessCredential(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root")
	}
	l := memLog(t)
	r := ProcessRunner{Path: "/bin/sh", Args: []string{"-c", "id -u; id -g"}, Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
	if err := r.Run(context.Background(), l); err != nil {
		t.Fatal(err)
	}
	if got := l.Tail(-1); len(got) != 2 || got[0] != "65534" || got[1] != "65534" {
		t.Fatalf("log %q", got)
	}
}

func TestSupervisorWithProcess(t *testing.T) {
	store, err := logstore.Open(t.TempDir(), logstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	sup := New(clock.Real{}, store, nil, nil)
	ctx, cancel := context.WithCancel(context.Background())
	runDone := make(chan error, 1)
	go func() { runDone <- sup.Run(ctx) }()
	defer func() {
		cancel()
		if err := <-runDone; err != nil {
			t.Error(err)
		}
	}()

	if err := sup.Add(Service{ID: "sleeper", Runner: ProcessRunner{Path: "/bin/sh", Args: []string{"-c", "echo hi; sleep 100"}}}); err != nil {
		t.Fatal(err)
	}
	if err := sup.Add(Service{ID: "failing", Restart: RestartOnce, Runner: ProcessRunner{Path: "/bin/sh", Args: []string{"-c", "exit 7"}}}); err != nil {
		t.Fatal(err)
	}
	if err := sup.Add(Service{ID: "stubborn", Runner: ProcessRunner{Path: "/bin/sh", Args: []string{"-c", `trap "" TERM; echo ready; sleep 100`}, GracePeriod: 100 * time.Millisecond}}); err != nil {
		t.Fatal(err)
	}
	sup.mu.Lock()
	timeouts := []time.Duration{sup.svcs["sleeper"].svc.StopTimeout, sup.svcs["stubborn"].svc.StopTimeout}
	sup.mu.Unlock()
	if timeouts[0] != DefaultGracePeriod+stopTimeoutMargin || timeouts[1] != DefaultStopTimeout {
		t.Fatalf("default stop timeouts %v", timeouts)
	}
	if err := sup.StartAll(); err != nil {
		t.Fatal(err)
	}
	waitLine(t, store.Log("stubborn"), "ready")
	if err := sup.Stop(context.Background(), "stubborn"); err != nil {
		t.Fatal(err)
	}
	if st, _ := sup.Status("stubborn"); st.State != Finished || !strings.Contains(st.Message, "sent SIGKILL") {
		t.Fatalf("stubborn %s %q", st.State, st.Message)
	}
	waitLine(t, store.Log("sleeper"), "hi")
	waitFor(t, "failing to fail", func() bool {
		st, _ := sup.Status("failing")
		return st.State == Failed && strings.Contains(st.Message, "exit status 7")
	})
	if err := sup.Stop(context.Background(), "sleeper"); err != nil {
		t.Fatal(err)
	}
	st, _ := sup.Status("sleeper")
	if st.State != Finished || !strings.Contains(st.Message, "signal: terminated") {
		t.Fatalf("sleeper %s %q", st.State, st.Message)
	}
}

func TestProcessOutputHeldByEscapedDescendant(t *testing.T) {
	if _, err := exec.LookPath("setsid"); err != nil {
		t.Skip("no setsid")
	}
	l := memLog(t)
	// The descendant leaves the process group (and escapes its SIGKILL) but keeps the
	// output pipe open: Run must not wait for it beyond outputDrainTimeout.
	start := time.Now()
	err := ProcessRunner{Path: "/bin/sh", Args: []string{"-c", "setsid sleep 30 & sleep 0.2; echo escaped $!"}}.Run(context.Background(), l)
	if err != nil {
		t.Fatal(err)
	}
	took := time.Since(start)
	pid, perr := strconv.Atoi(strings.TrimPrefix(waitLine(t, l, "escaped "), "escaped "))
	if perr == nil {
		_ = syscall.Kill(pid, syscall.SIGKILL)
	}
	if took > outputDrainTimeout+3*time.Second {
		t.Fatalf("Run took %s", took)
	}
}

// TestProcessDoesNotInheritEnvironment is the regression test of machined's environment
// (which held the whole machine configuration, keys included) reaching every service: a
// service that sets no environment gets MinimalEnv and nothing of machined's.
func TestProcessDoesNotInheritEnvironment(t *testing.T) {
	t.Setenv("PLINTH_TEST_SECRET", "hunter2")
	l := memLog(t)
	err := ProcessRunner{Path: "/usr/bin/env"}.Run(context.Background(), l)
	if err != nil {
		t.Fatal(err)
	}
	got := l.Tail(-1)
	if !slices.Equal(got, MinimalEnv()) {
		t.Errorf("the service's environment is %q, want %q", got, MinimalEnv())
	}
}

// TestProcessUnderTheReaper runs many short services at once while the reaper collects
// every child of the test process (made a child subreaper, as machined is PID 1): each
// Run reports its own process's exit status, none loses it to the reaper.
func TestProcessUnderTheReaper(t *testing.T) {
	if err := unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0); err != nil {
		t.Skipf("cannot become a child subreaper: %v", err)
	}
	defer func() { _ = unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 0, 0, 0, 0) }()
	ctx, cancel := context.WithCancel(context.Background())
	reaped := make(chan struct{})
	go func() {
		defer close(reaped)
		reaper.Run(ctx, slog.New(slog.DiscardHandler))
	}()
	defer func() {
		cancel()
		<-reaped
	}()

	const runs = 60
	errs := make(chan error, runs)
	for i := range runs {
		go func() {
			if i%2 == 0 {
				if err := (ProcessRunner{Path: "/bin/true"}).Run(context.Background(), nil); err != nil {
					errs <- fmt.Errorf("true: %w", err)
					return
				}
				errs <- nil
				return
			}
			err := ProcessRunner{Path: "/bin/sh", Args: []string{"-c", "exit 3"}}.Run(context.Background(), nil)
			var exit *reaper.ExitError
			if !errors.As(err, &exit) || exit.ExitCode() != 3 {
				errs <- fmt.Errorf("exit 3: Run = %v", err)
				return
			}
			errs <- nil
		}()
	}
	for range runs {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
}
