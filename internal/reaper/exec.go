package reaper

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"syscall"
	"time"
)

// MinimalEnv is the environment of a child that sets none: the search path only. A child
// never inherits machined's environment, so nothing put there (by a provisioner, a
// hypervisor or a developer's shell) reaches apid, containerd, kubelet or a helper command.
func MinimalEnv() []string {
	return []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"}
}

// Cmd is a child process of machined; every child is started through it. While a reaper
// loop (Run) runs, Start registers the child with the reaper before it can exit and Wait
// gets the exit status from the reaper, which otherwise would collect the child as an
// orphan and leave os/exec's Wait with ECHILD. While none runs (machined is not PID 1:
// local mode, tests), Wait waits for the child itself, as os/exec does.
//
// The fields are those of os/exec.Cmd that machined uses, with one difference: a nil Env
// means MinimalEnv, not machined's environment. A Cmd is started once.
type Cmd struct {
	// Path is the program; without a slash it is looked up in machined's PATH.
	Path string
	// Args are the command line, the program name first; empty means {Path}.
	Args []string
	// Env is the whole environment; nil means MinimalEnv.
	Env []string
	// Dir is the working directory; empty means machined's.
	Dir string
	// Stdin is the standard input; nil means the null device. A reader that is not an
	// *os.File is copied to the process by a goroutine that Wait waits for: it ends when
	// the reader is exhausted or the process closes its input (by exiting).
	Stdin io.Reader
	// Stdout and Stderr are where the output goes; nil means the null device. A writer
	// that is not an *os.File gets the output through a pipe and a goroutine that Wait
	// waits for. When both are the same writer, their order is kept.
	Stdout, Stderr io.Writer
	// SysProcAttr holds the Linux attributes of the process.
	SysProcAttr *syscall.SysProcAttr
	// WaitDelay bounds the wait for the end of the output (and input) once the process has
	// exited: a descendant may hold the pipes open. Zero means no bound. When it expires,
	// Wait closes the pipes and, if the process succeeded, returns exec.ErrWaitDelay.
	WaitDelay time.Duration

	ctx             context.Context
	started, waited bool
	process         *os.Process
	child           *child
	pid             int
	status          syscall.WaitStatus
	haveStatus      bool
	closeAfterStart []*os.File // the child's ends of the pipes
	closeAfterWait  []*os.File // this process's ends of the pipes
	copies          []func() error
	copyErrs        chan error
	exited          chan struct{} // closed by Wait: the ctx watcher ends
	killed          chan bool     // the ctx watcher's verdict: it killed the process
}

// Command returns the Cmd to run the program name with the arguments arg. When ctx is done
// before the process exits, the process is killed (SIGKILL) and Wait's error says so.
func Command(ctx context.Context, name string, arg ...string) *Cmd {
	if ctx == nil {
		panic("reaper.Command: nil Context")
	}
	return &Cmd{Path: name, Args: append([]string{name}, arg...), ctx: ctx}
}

// Pid is the process ID of the started process (0 before Start).
func (c *Cmd) Pid() int { return c.pid }

// ExitCode is the exit code of the process once Wait has returned, or -1 when the
// process has not been waited for or was ended by a signal.
func (c *Cmd) ExitCode() int {
	if !c.haveStatus || !c.status.Exited() {
		return -1
	}
	return c.status.ExitStatus()
}

// Run starts the process and waits for it.
func (c *Cmd) Run() error {
	if err := c.Start(); err != nil {
		return err
	}
	return c.Wait()
}

// Output runs the process and returns its standard output.
func (c *Cmd) Output() ([]byte, error) {
	if c.Stdout != nil {
		return nil, errors.New("reaper: Stdout already set")
	}
	var out bytes.Buffer
	c.Stdout = &out
	err := c.Run()
	return out.Bytes(), err
}

// CombinedOutput runs the process and returns its standard output and error, in the
// order it wrote them.
func (c *Cmd) CombinedOutput() ([]byte, error) {
	if c.Stdout != nil || c.Stderr != nil {
		return nil, errors.New("reaper: Stdout or Stderr already set")
	}
	var out bytes.Buffer
	c.Stdout, c.Stderr = &out, &out
	err := c.Run()
	return out.Bytes(), err
}

// Start starts the process. Wait must be called once it has started, to release what
// the process holds (and, while no reaper loop runs, to collect it).
func (c *Cmd) Start() error {
	if c.started {
		return errors.New("reaper: already started")
	}
	c.started = true
	if c.ctx != nil {
		if err := c.ctx.Err(); err != nil {
			return err
		}
	}
	args := c.Args
	if len(args) == 0 {
		args = []string{c.Path}
	}
	ec := exec.Command(c.Path, args[1:]...) // looks the program up as os/exec does
	ec.Args = args
	ec.Env = c.Env
	if ec.Env == nil {
		ec.Env = MinimalEnv()
	}
	ec.Dir = c.Dir
	ec.SysProcAttr = c.SysProcAttr
	// Only files go to os/exec, so that it starts no goroutine that only its Wait would
	// end: the copies are this Cmd's.
	var err error
	if ec.Stdin, err = c.readerFile(c.Stdin); err == nil {
		if ec.Stdout, err = c.writerFile(c.Stdout); err == nil {
			if c.Stderr != nil && sameWriter(c.Stderr, c.Stdout) {
				ec.Stderr = ec.Stdout
			} else {
				ec.Stderr, err = c.writerFile(c.Stderr)
			}
		}
	}
	if err == nil {
		c.child, err = startChild(func() (int, error) {
			if err := ec.Start(); err != nil {
				return 0, err
			}
			return ec.Process.Pid, nil
		})
	}
	closeFiles(c.closeAfterStart)
	if err != nil {
		closeFiles(c.closeAfterWait)
		return err
	}
	c.process, c.pid = ec.Process, ec.Process.Pid
	c.copyErrs = make(chan error, len(c.copies))
	for _, copyFn := range c.copies {
		go func() { c.copyErrs <- copyFn() }()
	}
	if c.ctx != nil && c.ctx.Done() != nil {
		c.exited, c.killed = make(chan struct{}), make(chan bool, 1)
		go func() {
			select {
			case <-c.ctx.Done():
				c.killed <- c.child.kill(c.process)
			case <-c.exited:
				c.killed <- false
			}
		}()
	}
	return nil
}

// Wait waits for the process to exit and for its input and output to be copied. The
// error is nil when the process exited with status 0; an *ExitError when it exited
// otherwise or was ended by a signal (wrapped with the context's error when the context
// ended it).
func (c *Cmd) Wait() error {
	if c.process == nil {
		return errors.New("reaper: not started")
	}
	if c.waited {
		return errors.New("reaper: Wait already called")
	}
	c.waited = true
	status, werr := c.child.wait(c.process)
	killed := false
	if c.exited != nil {
		close(c.exited)
		killed = <-c.killed
	}
	_ = c.process.Release() // the pidfd, when the reaper collected the process
	ioErr := c.awaitCopies()
	if werr != nil {
		return fmt.Errorf("wait for %s: %w", c.Path, werr)
	}
	c.status, c.haveStatus = status, true
	if !status.Exited() || status.ExitStatus() != 0 {
		exit := &ExitError{Status: status}
		if killed {
			return fmt.Errorf("%w: %w", c.ctx.Err(), exit)
		}
		return exit
	}
	return ioErr
}

// readerFile returns the file to give the child as standard input for r.
func (c *Cmd) readerFile(r io.Reader) (*os.File, error) {
	switch r := r.(type) {
	case nil:
		return nil, nil // os/exec opens the null device
	case *os.File:
		return r, nil
	}
	pr, pw, err := os.Pipe()
	if err != nil {
		return nil, fmt.Errorf("input pipe: %w", err)
	}
	c.closeAfterStart = append(c.closeAfterStart, pr)
	c.closeAfterWait = append(c.closeAfterWait, pw)
	c.copies = append(c.copies, func() error {
		_, err := io.Copy(pw, r)
		if errors.Is(err, syscall.EPIPE) {
			err = nil // the process exited without reading everything
		}
		if cerr := pw.Close(); err == nil && !errors.Is(cerr, os.ErrClosed) {
			err = cerr
		}
		return err
	})
	return pr, nil
}

// writerFile returns the file to give the child as an output going to w.
func (c *Cmd) writerFile(w io.Writer) (*os.File, error) {
	switch w := w.(type) {
	case nil:
		return nil, nil // os/exec opens the null device
	case *os.File:
		return w, nil
	}
	pr, pw, err := os.Pipe()
	if err != nil {
		return nil, fmt.Errorf("output pipe: %w", err)
	}
	c.closeAfterStart = append(c.closeAfterStart, pw)
	c.closeAfterWait = append(c.closeAfterWait, pr)
	c.copies = append(c.copies, func() error {
		_, err := io.Copy(w, pr)
		return err
	})
	return pw, nil
}

// awaitCopies waits for the copy goroutines, closing the pipes when WaitDelay expires.
func (c *Cmd) awaitCopies() error {
	var expire <-chan time.Time
	if c.WaitDelay > 0 {
		t := time.NewTimer(c.WaitDelay)
		defer t.Stop()
		expire = t.C
	}
	var first error
	expired := false
	for n := len(c.copies); n > 0; {
		select {
		case err := <-c.copyErrs:
			n--
			if first == nil {
				first = err
			}
		case <-expire:
			expired, expire = true, nil
			closeFiles(c.closeAfterWait) // the copies end with an error
		}
	}
	closeFiles(c.closeAfterWait)
	if expired {
		return exec.ErrWaitDelay
	}
	return first
}

func closeFiles(files []*os.File) {
	for _, f := range files {
		_ = f.Close()
	}
}

// sameWriter reports whether a and b are the same writer (false when they cannot be
// compared).
func sameWriter(a, b io.Writer) (same bool) {
	defer func() { _ = recover() }()
	return a == b
}

// ExitError is the error of a process that did not exit with status 0.
type ExitError struct {
	Status syscall.WaitStatus
}

// ExitCode is the exit code, or -1 when a signal ended the process.
func (e *ExitError) ExitCode() int {
	if !e.Status.Exited() {
		return -1
	}
	return e.Status.ExitStatus()
}

// Error says "exit status N" or "signal: NAME", as os/exec does.
func (e *ExitError) Error() string { return describe(e.Status) }

// describe says how a process ended.
func describe(ws syscall.WaitStatus) string {
	switch {
	case ws.Exited():
		return "exit status " + strconv.Itoa(ws.ExitStatus())
	case ws.Signaled():
		s := "signal: " + ws.Signal().String()
		if ws.CoreDump() {
			s += " (core dumped)"
		}
		return s
	}
	return fmt.Sprintf("wait status %#x", uint32(ws))
}
