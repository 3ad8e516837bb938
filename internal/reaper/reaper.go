// Package reaper collects the exit status of every child of machined when it is PID 1 (or
// a child subreaper), so that orphans do not linger as zombies, and it is the one way
// machined starts a child process (Command): a child started that way is registered
// before it can exit, and its Wait gets the exit status from the reaper instead of racing
// the reaper for it.
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
)

var (
	// mu orders starting a child against reaping: the reaper only waits for children with
	// mu held, and a child started through Command is forked and registered in children
	// under mu, so the reaper never collects one it does not know.
	mu sync.Mutex
	// children are the children started through Command whose status nobody took yet.
	children = map[int]*child{}
	// loops is the number of reaper loops running (Run).
	loops int
	// stopped is closed when the last running loop ends; nil while no loop runs.
	stopped chan struct{}
)

// child is the registration of a child started through Command.
type child struct {
	pid    int
	done   chan struct{} // closed once a reaper loop has collected the child
	status syscall.WaitStatus
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

// Run reaps every child of this process as it exits, until ctx is cancelled. The exit
// status of a child started with Command goes to its Wait; that of any other child (an
// orphan the kernel gave to this process) is discarded, with a debug line in log.
func Run(ctx context.Context, log *slog.Logger) {
	l := startLoop()
	defer l.stop()
	l.run(ctx, log)
}

// loop is a running reaper loop.
type loop struct {
	sigs chan os.Signal
}

// startLoop subscribes to SIGCHLD and counts the loop as running: from now on Wait of a
// child started with Command expects its status from a loop.
func startLoop() *loop {
	l := &loop{sigs: make(chan os.Signal, 1)}
	signal.Notify(l.sigs, syscall.SIGCHLD)
	mu.Lock()
	if loops == 0 {
		stopped = make(chan struct{})
	}
	loops++
	mu.Unlock()
	return l
}

// run reaps until ctx is cancelled. A SIGCHLD that arrives while it reaps stays in the
// channel's buffer, so an exit is never missed.
func (l *loop) run(ctx context.Context, log *slog.Logger) {
	for {
		reap(log)
		select {
		case <-ctx.Done():
			return
		case <-l.sigs:
		}
	}
}

// stop ends the subscription; when it was the last loop, the children still running are
// waited for by their own Wait again.
func (l *loop) stop() {
	signal.Stop(l.sigs)
	mu.Lock()
	loops--
	if loops == 0 {
		close(stopped)
		stopped = nil
	}
	mu.Unlock()
}

// reap collects every child that has exited, hands the status of a registered one to its
// waiter, and returns how many others (orphans) it collected.
func reap(log *slog.Logger) (orphans int) {
	mu.Lock()
	defer mu.Unlock()
	for {
		var ws syscall.WaitStatus
		pid, err := syscall.Wait4(-1, &ws, syscall.WNOHANG|unix.WALL, nil)
		if errors.Is(err, syscall.EINTR) {
			continue
		}
		if err != nil {
			if !errors.Is(err, syscall.ECHILD) { // ECHILD: no child at all
				log.Warn("reaper: wait", "error", err)
			}
			return orphans
		}
		if pid <= 0 {
			return orphans // children left, none exited
		}
		if c := children[pid]; c != nil {
			delete(children, pid)
			c.status = ws
			close(c.done)
			continue
		}
		orphans++
		log.Debug("reaped an orphan", "pid", pid, "status", describe(ws))
	}
}

// startChild runs start, which forks a child and returns its PID, and registers the
// child, both with mu held: the reaper cannot collect the child before it is registered.
func startChild(start func() (int, error)) (*child, error) {
	mu.Lock()
	defer mu.Unlock()
	pid, err := start()
	if err != nil {
		return nil, err
	}
	c := &child{pid: pid, done: make(chan struct{})}
	children[pid] = c
	return c, nil
}

// wait returns the exit status of c: from a reaper loop while one runs, else by waiting
// for p directly (as os/exec does).
func (c *child) wait(p *os.Process) (syscall.WaitStatus, error) {
	for {
		mu.Lock()
		loopStopped := stopped
		mu.Unlock()
		if loopStopped != nil {
			select {
			case <-c.done:
				return c.status, nil
			case <-loopStopped:
				continue // the last loop ended; wait directly
			}
		}
		state, err := p.Wait()
		if err == nil {
			c.forget()
			return state.Sys().(syscall.WaitStatus), nil
		}
		if errors.Is(err, syscall.ECHILD) {
			// A loop that started meanwhile may have collected it; it closes done in the
			// critical section in which it did.
			mu.Lock()
			collected := c.collected()
			mu.Unlock()
			if collected {
				return c.status, nil
			}
		}
		c.forget()
		return 0, err
	}
}

// forget removes the registration of a child waited for directly.
func (c *child) forget() {
	mu.Lock()
	defer mu.Unlock()
	if children[c.pid] == c {
		delete(children, c.pid)
	}
}

// kill sends SIGKILL to the child unless a reaper loop has collected it already (its PID
// may belong to another process then). It reports whether the signal was sent.
func (c *child) kill(p *os.Process) bool {
	mu.Lock()
	defer mu.Unlock()
	if c.collected() {
		return false
	}
	return p.Kill() == nil
}

// collected reports whether a reaper loop has collected the child.
func (c *child) collected() bool {
	select {
	case <-c.done:
		return true
	default:
		return false
	}
}
