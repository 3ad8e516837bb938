package reaper

import (
	"context"
	"errors"
	"fmt"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
)

// runFunc runs one command with the given input and returns its output and exit code.
type runFunc func(ctx context.Context, stdin, name string, args ...string) (out string, code int, err error)

// viaCommand runs a command through this package's exec path.
func viaCommand(ctx context.Context, stdin, name string, args ...string) (string, int, error) {
	cmd := Command(ctx, name, args...)
	if stdin != "" {
		cmd.Stdin = strings.NewReader(stdin)
	}
	out, err := cmd.Output()
	return string(out), cmd.ExitCode(), err
}

// viaPlainExec runs a command with os/exec, as kubectl, ctr and the image import did.
func viaPlainExec(ctx context.Context, stdin, name string, args ...string) (string, int, error) {
	cmd := exec.CommandContext(ctx, name, args...)
	if stdin != "" {
		cmd.Stdin = strings.NewReader(stdin)
	}
	out, err := cmd.Output()
	return string(out), cmd.ProcessState.ExitCode(), err // ExitCode of a nil state is -1
}

// stress runs many short commands concurrently with run, under a reaper loop, and
// returns what went wrong: a command that exits 0 must return nil, one that exits 3 an
// error with exit code 3, and cat must give back its input.
func stress(t *testing.T, run runFunc) (failures []string) {
	t.Helper()
	subreaper(t)
	runLoop(t)
	const commands, workers = 300, 8
	var (
		wg  sync.WaitGroup
		mux sync.Mutex
	)
	next := make(chan int)
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				if msg := stressOne(run, i); msg != "" {
					mux.Lock()
					failures = append(failures, msg)
					mux.Unlock()
				}
			}
		}()
	}
	for i := range commands {
		next <- i
	}
	close(next)
	wg.Wait()
	return failures
}

func stressOne(run runFunc, i int) string {
	ctx := context.Background()
	switch i % 3 {
	case 0:
		out, code, err := run(ctx, "", "/bin/true")
		if err != nil || code != 0 || out != "" {
			return fmt.Sprintf("true: %q, exit code %d, %v", out, code, err)
		}
	case 1:
		out, code, err := run(ctx, "", "/bin/sh", "-c", "exit 3")
		var exit interface{ ExitCode() int }
		if !errors.As(err, &exit) || exit.ExitCode() != 3 || code != 3 || out != "" {
			return fmt.Sprintf("exit 3: %q, exit code %d, %v", out, code, err)
		}
	case 2:
		in := fmt.Sprintf("line %d\n", i)
		out, code, err := run(ctx, in, "/bin/cat")
		if err != nil || code != 0 || out != in {
			return fmt.Sprintf("cat: %q, exit code %d, %v", out, code, err)
		}
	}
	return ""
}

// TestCommandsUnderTheReaper runs many short commands through Command while a reaper
// loop collects every child of the test process (as machined does as PID 1): each one
// reports its own exit status, none loses it to the reaper.
func TestCommandsUnderTheReaper(t *testing.T) {
	failures := stress(t, viaCommand)
	for i, f := range failures {
		if i == 10 {
			t.Errorf("... %d failures in all", len(failures))
			break
		}
		t.Error(f)
	}
	if n := registered(); n != 0 {
		t.Errorf("%d children still registered", n)
	}
}

// TestPlainExecLosesToTheReaper is the defect TestCommandsUnderTheReaper guards against:
// the same commands started with os/exec under the same reaper loop; the loop collects
// some of them first and their Wait fails with ECHILD. It shows that the stress test can
// see the race; it is skipped when the race did not happen in this run.
func TestPlainExecLosesToTheReaper(t *testing.T) {
	failures := stress(t, viaPlainExec)
	if len(failures) == 0 {
		t.Skip("the reaper won no race against os/exec this time")
	}
	echild := 0
	for _, f := range failures {
		if strings.Contains(f, syscall.ECHILD.Error()) {
			echild++
		}
	}
	t.Logf("%d of 300 commands failed under the reaper with os/exec, %d with ECHILD; first: %s", len(failures), echild, failures[0])
	if echild == 0 {
		t.Errorf("the failures are not ECHILD: %q", failures)
	}
}
