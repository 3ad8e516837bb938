package service

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/plinthos/plinth/internal/reaper"
)

// DefaultGracePeriod is the GracePeriod of a ProcessRunner that sets none.
const DefaultGracePeriod = 10 * time.Second

// cgroupRoot is where relative ProcessRunner.Cgroup paths live.
const cgroupRoot = "/sys/fs/cgroup"

// outputDrainTimeout bounds the wait for the rest of a process's output once it has
// exited and its process group was killed (a descendant that left the group may hold the
// pipe open).
const outputDrainTimeout = 2 * time.Second

// MinimalEnv is the environment of a service that sets none: the search path only
// (reaper.MinimalEnv, the default of every child of machined).
func MinimalEnv() []string { return reaper.MinimalEnv() }

// ProcessRunner runs a service as a child process.
//
// The child runs in a process group of its own and gets SIGKILL when machined dies
// (Pdeathsig). Its stdout and stderr both go to the service log through one pipe, so
// their lines keep their order. On stop (cancellation of Run's context) the whole process
// group gets SIGTERM, then SIGKILL after GracePeriod. When the process exits, whatever is
// left of its process group is killed as well.
type ProcessRunner struct {
	// Path is the program; without a slash it is looked up in machined's PATH.
	Path string
	// Args are the arguments after the program name.
	Args []string
	// Env is the whole environment of the process; nil means MinimalEnv. Nothing of
	// machined's own environment is inherited.
	Env []string
	// Dir is the working directory; empty means machined's.
	Dir string
	// Cgroup, when set, is the cgroup to run the process in: an absolute directory in a
	// cgroup filesystem, or a path relative to /sys/fs/cgroup (with cgroup v1 or hybrid
	// mounts it is created in every mounted hierarchy). The directories are created when
	// missing. The process is in its cgroups from its first instruction: in a cgroup v2
	// hierarchy it is created there (clone3 with CLONE_INTO_CGROUP); for cgroup v1
	// hierarchies the thread of machined that forks it joins them for the moment of the
	// fork and goes back to its own cgroups right after. A cgroup that cannot be used is
	// skipped, and a line saying why goes to the log.
	Cgroup string
	// Credential, when set, runs the process as another user and group.
	Credential *syscall.Credential
	// GracePeriod is the time between SIGTERM and SIGKILL on stop (DefaultGracePeriod
	// when zero).
	GracePeriod time.Duration
}

// gracePeriod returns the effective GracePeriod.
func (r ProcessRunner) gracePeriod() time.Duration {
	if r.GracePeriod > 0 {
		return r.GracePeriod
	}
	return DefaultGracePeriod
}

// String returns "process" and the command line.
func (r ProcessRunner) String() string {
	return "process " + strings.Join(append([]string{r.Path}, r.Args...), " ")
}

// Run starts the process and waits for it to exit, stopping it when ctx is cancelled. The
// error reports a failure to start, the exit status or the signal that ended the process.
func (r ProcessRunner) Run(ctx context.Context, logs io.Writer) error {
	if logs == nil {
		logs = io.Discard
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	grace := r.gracePeriod()
	pr, pw, err := os.Pipe()
	if err != nil {
		return fmt.Errorf("%s: output pipe: %w", r.Path, err)
	}
	defer pr.Close()

	// Pdeathsig fires when the thread that forked the child ends, not when machined does
	// (go.dev/issue/27505). Keeping this goroutine on its thread until the child is gone
	// makes sure no other goroutine gets that thread and has it discarded by the runtime
	// (as LockOSThread without UnlockOSThread does), which would kill the child.
	runtime.LockOSThread()
	unlock := true
	defer func() {
		if unlock {
			runtime.UnlockOSThread()
		}
	}()

	cg := r.placeCgroup(logs)
	defer cg.close()
	// The child goes through the reaper's exec path: when machined is PID 1, the reaper
	// hands its exit status to cmd.Wait below instead of collecting it as an orphan.
	cmd := r.command(pw, cg.fd)
	restored, err := cg.start(cmd, logs)
	if err != nil && cg.fd >= 0 {
		fmt.Fprintf(logs, "[plinth] cgroup %s: starting inside it failed: %v; running without it\n", cg.v2, err)
		cg.close()
		cmd = r.command(pw, -1)
		var ok bool
		ok, err = cg.start(cmd, logs)
		restored = restored && ok
	}
	// A thread that could not leave the service's cgroups is discarded when this
	// goroutine ends, after the child.
	unlock = restored
	pw.Close()
	if err != nil {
		return fmt.Errorf("start %s: %w", r.Path, err)
	}
	pid := cmd.Pid()

	copyDone := make(chan struct{})
	go func() {
		defer close(copyDone)
		_, _ = io.Copy(logs, pr)
	}()
	waitDone := make(chan error, 1)
	go func() { waitDone <- cmd.Wait() }()

	killed := false
	select {
	case err = <-waitDone:
	case <-ctx.Done():
		_ = syscall.Kill(-pid, syscall.SIGTERM)
		t := time.NewTimer(grace)
		select {
		case err = <-waitDone:
		case <-t.C:
			killed = true
			_ = syscall.Kill(-pid, syscall.SIGKILL)
			err = <-waitDone
		}
		t.Stop()
	}
	// What the process left running in its group goes with it.
	_ = syscall.Kill(-pid, syscall.SIGKILL)

	t := time.NewTimer(outputDrainTimeout)
	select {
	case <-copyDone:
	case <-t.C:
		pr.Close() // unblocks the copy
		<-copyDone
	}
	t.Stop()

	switch {
	case err == nil:
		return nil
	case killed:
		return fmt.Errorf("%s: did not exit within %s of SIGTERM, sent SIGKILL: %w", r.Path, grace, err)
	default:
		return fmt.Errorf("%s: %w", r.Path, err)
	}
}

// command returns the child to start; ProcessRunner handles the stop itself (process
// group signals), so the command has no context that kills it.
func (r ProcessRunner) command(out *os.File, cgroupFD int) *reaper.Cmd {
	cmd := reaper.Command(context.Background(), r.Path, r.Args...)
	cmd.Env = r.Env // nil: MinimalEnv
	cmd.Dir = r.Dir
	cmd.Stdout = out
	cmd.Stderr = out
	cmd.SysProcAttr = &syscall.SysProcAttr{
		Setpgid:    true,
		Pdeathsig:  syscall.SIGKILL,
		Credential: r.Credential,
	}
	if cgroupFD >= 0 {
		cmd.SysProcAttr.UseCgroupFD = true
		cmd.SysProcAttr.CgroupFD = cgroupFD
	}
	return cmd
}

// cgroupPlacement is where a process goes: at most one cgroup v2 directory, entered at
// clone time through fd, and any number of cgroup v1 directories, entered by the forking
// thread.
type cgroupPlacement struct {
	fd int // -1 when none
	v2 string
	v1 []string
}

func (c *cgroupPlacement) close() {
	if c.fd >= 0 {
		_ = unix.Close(c.fd)
		c.fd = -1
	}
}

// start starts cmd, joining the cgroup v1 directories for the fork (the v2 one is in
// cmd.SysProcAttr). The calling goroutine must be locked to its thread: the child is
// forked by that thread and inherits its cgroups. restored reports whether the thread is
// back in its own cgroups.
func (c *cgroupPlacement) start(cmd *reaper.Cmd, logs io.Writer) (restored bool, err error) {
	if len(c.v1) == 0 {
		return true, cmd.Start()
	}
	restore := joinV1(c.v1, logs)
	err = cmd.Start()
	return restore(), err
}

// joinV1 moves the calling (locked) thread into the cgroup v1 directories dirs and returns
// the function that moves it back, reporting whether that succeeded.
func joinV1(dirs []string, logs io.Writer) (restore func() bool) {
	tid := strconv.Itoa(unix.Gettid())
	own, err := threadCgroupsV1()
	if err != nil {
		fmt.Fprintf(logs, "[plinth] cgroup: finding machined's own cgroups: %v; running without cgroup v1 placement\n", err)
		return func() bool { return true }
	}
	var back []string
	for _, dir := range dirs {
		mount := ""
		for m := range own {
			if (dir == m || strings.HasPrefix(dir, m+"/")) && len(m) > len(mount) {
				mount = m
			}
		}
		if mount == "" {
			fmt.Fprintf(logs, "[plinth] cgroup %s: no cgroup v1 hierarchy of machined holds it; running without it\n", dir)
			continue
		}
		if err := writeExisting(filepath.Join(dir, "tasks"), tid); err != nil {
			fmt.Fprintf(logs, "[plinth] cgroup %s: %v; running without it\n", dir, err)
			continue
		}
		back = append(back, own[mount])
	}
	return func() bool {
		ok := true
		for _, dir := range back {
			if err := writeExisting(filepath.Join(dir, "tasks"), tid); err != nil {
				fmt.Fprintf(logs, "[plinth] cgroup: moving machined's thread back to %s: %v\n", dir, err)
				ok = false
			}
		}
		return ok
	}
}

// threadCgroupsV1 returns, for every mounted cgroup v1 hierarchy, its mount point and the
// directory of the calling thread's cgroup in it.
func threadCgroupsV1() (map[string]string, error) {
	mountinfo, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return nil, err
	}
	cgroups, err := os.ReadFile(fmt.Sprintf("/proc/self/task/%d/cgroup", unix.Gettid()))
	if err != nil {
		return nil, err
	}
	type membership struct{ controllers, path string }
	var member []membership
	for _, line := range strings.Split(string(cgroups), "\n") {
		parts := strings.SplitN(line, ":", 3)
		if len(parts) == 3 && parts[0] != "0" && parts[1] != "" {
			member = append(member, membership{parts[1], parts[2]})
		}
	}
	out := make(map[string]string)
	for _, line := range strings.Split(string(mountinfo), "\n") {
		// id parent major:minor root mountpoint options [optional...] - fstype source superoptions
		fields := strings.Fields(line)
		sep := slices.Index(fields, "-")
		if sep < 5 || sep+3 >= len(fields) || fields[sep+1] != "cgroup" {
			continue
		}
		root, mount := fields[3], fields[4]
		opts := strings.Split(fields[sep+3], ",")
		for _, m := range member {
			if !allIn(strings.Split(m.controllers, ","), opts) {
				continue
			}
			rel := m.path
			if root != "/" {
				var ok bool
				if rel, ok = strings.CutPrefix(m.path, root); !ok || (rel != "" && rel[0] != '/') {
					continue // the thread's cgroup is not visible in this mount
				}
			}
			out[mount] = filepath.Join(mount, rel)
		}
	}
	return out, nil
}

func allIn(want, have []string) bool {
	for _, w := range want {
		if !slices.Contains(have, w) {
			return false
		}
	}
	return true
}

func writeExisting(path, content string) error {
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	_, err = f.WriteString(content)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// cgroupVersion returns 1 or 2 for a directory in a cgroup filesystem, 0 otherwise.
func cgroupVersion(dir string) int {
	var st unix.Statfs_t
	if err := unix.Statfs(dir, &st); err != nil {
		return 0
	}
	switch st.Type {
	case unix.CGROUP2_SUPER_MAGIC:
		return 2
	case unix.CGROUP_SUPER_MAGIC:
		return 1
	}
	return 0
}

// placeCgroup prepares the cgroup directories of r.Cgroup, writing a line to logs for
// every one that cannot be used.
func (r ProcessRunner) placeCgroup(logs io.Writer) *cgroupPlacement {
	c := &cgroupPlacement{fd: -1}
	if r.Cgroup == "" {
		return c
	}
	skip := func(dir string, err error) {
		fmt.Fprintf(logs, "[plinth] cgroup %s: %v; running without it\n", dir, err)
	}
	var dirs []string
	if filepath.IsAbs(r.Cgroup) {
		dirs = []string{filepath.Clean(r.Cgroup)}
	} else {
		rel := filepath.Clean(r.Cgroup)
		if rel == "." || rel == ".." || strings.HasPrefix(rel, "../") {
			skip(r.Cgroup, errors.New("not below "+cgroupRoot))
			return c
		}
		if cgroupVersion(cgroupRoot) == 2 {
			dirs = []string{filepath.Join(cgroupRoot, rel)}
		} else {
			// cgroup v1 or hybrid: one hierarchy per directory (symbolic links such as
			// cpu -> cpu,cpuacct name a hierarchy twice and are skipped).
			entries, err := os.ReadDir(cgroupRoot)
			if err != nil {
				skip(r.Cgroup, err)
				return c
			}
			for _, e := range entries {
				if e.IsDir() && cgroupVersion(filepath.Join(cgroupRoot, e.Name())) != 0 {
					dirs = append(dirs, filepath.Join(cgroupRoot, e.Name(), rel))
				}
			}
			if len(dirs) == 0 {
				skip(r.Cgroup, errors.New("no cgroup hierarchy mounted under "+cgroupRoot))
				return c
			}
		}
	}
	for _, dir := range dirs {
		// The nearest existing ancestor must be in a cgroup filesystem, so that nothing is
		// created elsewhere.
		existing := dir
		for {
			if _, err := os.Stat(existing); err == nil || existing == "/" {
				break
			}
			existing = filepath.Dir(existing)
		}
		version := cgroupVersion(existing)
		if version == 0 {
			skip(dir, errors.New("not in a cgroup filesystem"))
			continue
		}
		if err := os.MkdirAll(dir, 0o755); err != nil {
			skip(dir, err)
			continue
		}
		if version == 1 {
			if err := initCpuset(dir); err != nil {
				skip(dir, err)
				continue
			}
			c.v1 = append(c.v1, dir)
			continue
		}
		if c.fd >= 0 {
			skip(dir, errors.New("a second cgroup v2 directory"))
			continue
		}
		fd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
		if err != nil {
			skip(dir, err)
			continue
		}
		c.fd, c.v2 = fd, dir
	}
	return c
}

// initCpuset gives a new cgroup v1 cpuset directory (and its new ancestors) the CPUs and
// memory nodes of its parent: a cpuset without them accepts no task. Directories of
// other controllers are left alone.
func initCpuset(dir string) error {
	for _, file := range []string{"cpuset.cpus", "cpuset.mems"} {
		if err := inheritValue(dir, file); err != nil {
			return err
		}
	}
	return nil
}

func inheritValue(dir, file string) error {
	b, err := os.ReadFile(filepath.Join(dir, file))
	if errors.Is(err, os.ErrNotExist) {
		return nil // not a cpuset hierarchy
	}
	if err != nil {
		return err
	}
	if strings.TrimSpace(string(b)) != "" {
		return nil
	}
	parent := filepath.Dir(dir)
	if parent == dir {
		return fmt.Errorf("%s is empty up to the root", file)
	}
	if err := inheritValue(parent, file); err != nil {
		return err
	}
	v, err := os.ReadFile(filepath.Join(parent, file))
	if err != nil {
		return err
	}
	return writeExisting(filepath.Join(dir, file), strings.TrimSpace(string(v)))
}
