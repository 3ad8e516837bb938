package docker

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os/exec"
	"strings"
)

// Command is one invocation of the docker CLI.
type Command struct {
	// Args follow "docker".
	Args []string
	// Stdin, when set, is the command's standard input (the archive of `docker cp -`).
	Stdin []byte
	// Combined returns stdout and stderr together (for `docker logs`).
	Combined bool
}

// Runner runs docker CLI commands. A failed command returns a *CommandError.
type Runner interface {
	Run(ctx context.Context, cmd Command) ([]byte, error)
}

// CommandError is a docker command that failed.
type CommandError struct {
	// Op is the docker subcommand, such as "network create".
	Op string
	// Stderr is what the command printed on stderr, trimmed.
	Stderr string
	// Err is the process error.
	Err error
}

func (e *CommandError) Error() string {
	if e.Stderr != "" {
		return fmt.Sprintf("docker %s: %s", e.Op, e.Stderr)
	}
	return fmt.Sprintf("docker %s: %v", e.Op, e.Err)
}

func (e *CommandError) Unwrap() error { return e.Err }

// isNoSuch reports a command that failed because its object does not exist.
func isNoSuch(err error) bool {
	var ce *CommandError
	if !errors.As(err, &ce) {
		return false
	}
	s := strings.ToLower(ce.Stderr)
	return strings.Contains(s, "no such") || strings.Contains(s, "not found")
}

// opName is the subcommand of args for messages: one word, or two for object commands
// (network create, volume rm, ...).
func opName(args []string) string {
	if len(args) == 0 {
		return ""
	}
	switch args[0] {
	case "network", "volume", "image", "container":
		if len(args) > 1 {
			return args[0] + " " + args[1]
		}
	}
	return args[0]
}

// ExecRunner runs the docker binary.
type ExecRunner struct {
	// Binary is the docker CLI; empty means "docker" from PATH.
	Binary string
}

// Run implements Runner.
func (r ExecRunner) Run(ctx context.Context, c Command) ([]byte, error) {
	bin := r.Binary
	if bin == "" {
		bin = "docker"
	}
	cmd := exec.CommandContext(ctx, bin, c.Args...)
	if c.Stdin != nil {
		cmd.Stdin = bytes.NewReader(c.Stdin)
	}
	var stdout, stderr bytes.Buffer
	cmd.Stdout = &stdout
	cmd.Stderr = &stderr
	if c.Combined {
		cmd.Stderr = &stdout
	}
	if err := cmd.Run(); err != nil {
		if ctx.Err() != nil {
			err = ctx.Err()
		}
		return stdout.Bytes(), &CommandError{Op: opName(c.Args), Stderr: cleanStderr(stderr.String()), Err: err}
	}
	return stdout.Bytes(), nil
}

// cleanStderr drops the CLI's pointers to its own help from an error output.
func cleanStderr(s string) string {
	var kept []string
	for _, l := range strings.Split(s, "\n") {
		t := strings.TrimSpace(l)
		if t == "" || (strings.HasPrefix(t, "Run 'docker ") || strings.HasPrefix(t, "See 'docker ")) && strings.HasSuffix(t, "--help' for more information") ||
			strings.HasPrefix(t, "See 'docker ") && strings.HasSuffix(t, "--help'.") {
			continue
		}
		kept = append(kept, t)
	}
	return strings.Join(kept, "\n")
}
