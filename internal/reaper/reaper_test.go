package reaper

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

var discard = slog.New(slog.DiscardHandler)

// subreaper makes the test process a child subreaper for the test: orphans of its
// descendants become its children, as they become machined's when it is PID 1.
func subreaper(t *testing.T) {
	t.Helper()
	if err := unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0); err != nil {
		t.Skipf("cannot become a child subreaper: %v", err)
	}
	t.Cleanup(func() { _ = unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 0, 0, 0, 0) })
	if !Needed() {
		t.Fatal("Needed() is false for a subreaper")
	}
}

// runLoop runs a reaper loop, as machined does when it is PID 1; it is running when
// runLoop returns, and stop (also called when the test ends) ends it and waits for that.
func runLoop(t *testing.T) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	l := startLoop()
	done := make(chan struct{})
	go func() {
		defer close(done)
		defer l.stop()
		l.run(ctx, discard)
	}()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			<-done
		})
	}
	t.Cleanup(stop)
	return stop
}

// awaitExit blocks until the child pid has exited (it is a zombie then, or collected),
// through a pidfd, which becomes readable when the process ends.
func awaitExit(t *testing.T, pid int) {
	t.Helper()
	fd, err := unix.PidfdOpen(pid, 0)
	if errors.Is(err, unix.ENOSYS) {
		t.Skip("no pidfd_open on this kernel")
	}
	if err != nil {
		t.Fatalf("pidfd_open %d: %v", pid, err)
	}
	defer unix.Close(fd)
	fds := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
	for {
		n, err := unix.Poll(fds, 10_000)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil {
			t.Fatalf("poll pidfd of %d: %v", pid, err)
		}
		if n == 0 {
			t.Fatalf("process %d did not exit within 10 s", pid)
		}
		return
	}
}

// registered returns how many children started through Command await their status.
func registered() int {
	mu.Lock()
	defer mu.Unlock()
	return len(children)
}

// TestReapCollectsOrphansOnly makes an orphan (a background process of a shell that
// exited, reparented to the test process) and a child started with Command, lets both
// exit, and checks that one reaping pass collects the orphan and hands the child's status
// to its Wait.
func TestReapCollectsOrphansOnly(t *testing.T) {
	subreaper(t)
	ctx := context.Background()

	// The orphan reads its input until the test closes it.
	pr, pw, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer pw.Close()
	sh := Command(ctx, "/bin/sh", "-c", "exec 3<&0; cat <&3 >/dev/null 3<&- & echo $!")
	sh.Stdin = pr
	out, err := sh.Output()
	pr.Close()
	if err != nil {
		t.Fatal(err)
	}
	orphan, err := strconv.Atoi(strings.TrimSpace(string(out)))
	if err != nil {
		t.Fatal(err)
	}
	fd, err := unix.PidfdOpen(orphan, 0)
	if err != nil {
		t.Skipf("pidfd_open: %v", err)
	}
	unix.Close(fd)

	child := Command(ctx, "/bin/sh", "-c", "exit 4")
	if err := child.Start(); err != nil {
		t.Fatal(err)
	}
	awaitExit(t, child.Pid())
	pw.Close()
	awaitExit(t, orphan)

	if n := reap(discard); n != 1 {
		t.Errorf("reap collected %d orphans, want 1", n)
	}
	if _, err := os.Stat("/proc/" + strconv.Itoa(orphan)); err == nil {
		t.Errorf("orphan %d still exists", orphan)
	}
	var exit *ExitError
	if err := child.Wait(); !errors.As(err, &exit) || exit.ExitCode() != 4 || child.ExitCode() != 4 {
		t.Errorf("Wait of the child the reaper collected = %v (exit code %d), want exit status 4", err, child.ExitCode())
	}
	if n := registered(); n != 0 {
		t.Errorf("%d children still registered", n)
	}
}

// TestWaitAfterTheLoopStops: a child waited for through a loop that ends before the child
// does is waited for directly, with its real status.
func TestWaitAfterTheLoopStops(t *testing.T) {
	subreaper(t)
	stop := runLoop(t)
	pr, pw, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer pw.Close()
	cmd := Command(context.Background(), "/bin/sh", "-c", "read x; exit 5")
	cmd.Stdin = pr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	pr.Close()
	waited := make(chan error, 1)
	go func() { waited <- cmd.Wait() }()
	stop()
	pw.Close()
	var exit *ExitError
	if err := <-waited; !errors.As(err, &exit) || exit.ExitCode() != 5 {
		t.Fatalf("Wait = %v, want exit status 5", err)
	}
}

// TestWaitWhenTheLoopStartsLater: a child started while no loop runs gets its real
// status when a loop starts before it exits (the loop may collect it first).
func TestWaitWhenTheLoopStartsLater(t *testing.T) {
	subreaper(t)
	pr, pw, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer pw.Close()
	cmd := Command(context.Background(), "/bin/sh", "-c", "read x; exit 6")
	cmd.Stdin = pr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	pr.Close()
	waited := make(chan error, 1)
	go func() { waited <- cmd.Wait() }()
	runLoop(t)
	pw.Close()
	var exit *ExitError
	if err := <-waited; !errors.As(err, &exit) || exit.ExitCode() != 6 {
		t.Fatalf("Wait = %v, want exit status 6", err)
	}
	if n := registered(); n != 0 {
		t.Errorf("%d children still registered", n)
	}
}

// TestContextKills: a command whose context ends is killed, with or without a loop, and
// the error says both.
func TestContextKills(t *testing.T) {
	for _, loop := range []bool{false, true} {
		t.Run("loop="+strconv.FormatBool(loop), func(t *testing.T) {
			if loop {
				subreaper(t)
				runLoop(t)
			}
			ctx, cancel := context.WithCancel(context.Background())
			cmd := Command(ctx, "/bin/sleep", "100")
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			cancel()
			err := cmd.Wait()
			var exit *ExitError
			if !errors.Is(err, context.Canceled) || !errors.As(err, &exit) || exit.Status.Signal() != syscall.SIGKILL {
				t.Fatalf("Wait = %v, want context canceled and SIGKILL", err)
			}
			if !strings.Contains(err.Error(), "signal: killed") {
				t.Errorf("error %q does not say the signal", err)
			}
		})
	}
}

// TestCommandDefaults: the environment is MinimalEnv, both outputs keep their order in
// CombinedOutput, and a program that cannot start registers nothing.
func TestCommandDefaults(t *testing.T) {
	ctx := context.Background()
	out, err := Command(ctx, "env").Output()
	if err != nil {
		t.Fatal(err)
	}
	if got, want := strings.TrimSpace(string(out)), strings.Join(MinimalEnv(), "\n"); got != want {
		t.Errorf("environment %q, want %q", got, want)
	}
	out, err = Command(ctx, "/bin/sh", "-c", "echo a; echo b >&2; echo c").CombinedOutput()
	if err != nil || string(out) != "a\nb\nc\n" {
		t.Errorf("CombinedOutput = %q, %v", out, err)
	}
	if err := Command(ctx, "/nonexistent/prog").Run(); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("Run of a missing program = %v", err)
	}
	if err := Command(ctx, "no-such-program-here").Run(); err == nil {
		t.Error("Run of a program not in PATH succeeded")
	}
	if n := registered(); n != 0 {
		t.Errorf("%d children still registered", n)
	}
}

// TestWaitDelay: the output held open by a descendant ends WaitDelay after the exit.
func TestWaitDelay(t *testing.T) {
	cmd := Command(context.Background(), "/bin/sh", "-c", "sleep 100 & echo $!")
	cmd.WaitDelay = 100 * time.Millisecond
	out, err := cmd.Output()
	if pid, perr := strconv.Atoi(strings.TrimSpace(string(out))); perr == nil {
		_ = syscall.Kill(pid, syscall.SIGKILL)
	}
	if !errors.Is(err, exec.ErrWaitDelay) {
		t.Fatalf("Output = %q, %v; want the WaitDelay error", out, err)
	}
}
