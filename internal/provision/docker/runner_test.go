package docker

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestCleanStderr(t *testing.T) {
	in := "docker: Error response from daemon: Range of CPUs is from 0.01 to 2.00.\n\nRun 'docker run --help' for more information\n"
	if got := cleanStderr(in); got != "docker: Error response from daemon: Range of CPUs is from 0.01 to 2.00." {
		t.Errorf("cleaned %q", got)
	}
	if got := cleanStderr("a\nSee 'docker run --help'.\nb"); got != "a\nb" {
		t.Errorf("cleaned %q", got)
	}
}

// TestExecRunner runs a stand-in docker script: arguments, standard input, stderr in
// errors, and combined output.
func TestExecRunner(t *testing.T) {
	script := filepath.Join(t.TempDir(), "docker")
	body := "#!/bin/sh\necho \"args:$*\"\necho \"stdin:$(cat)\"\necho 'to stderr' >&2\n[ \"$1\" = fail ] && exit 3\nexit 0\n"
	if err := os.WriteFile(script, []byte(body), 0o755); err != nil {
		t.Fatal(err)
	}
	r := ExecRunner{Binary: script}
	out, err := r.Run(context.Background(), Command{Args: []string{"network", "ls"}, Stdin: []byte("secret")})
	if err != nil || string(out) != "args:network ls\nstdin:secret\n" {
		t.Errorf("Run = %q, %v", out, err)
	}
	out, err = r.Run(context.Background(), Command{Args: []string{"logs"}, Combined: true})
	if err != nil || !strings.Contains(string(out), "to stderr") {
		t.Errorf("combined = %q, %v", out, err)
	}
	_, err = r.Run(context.Background(), Command{Args: []string{"fail", "x"}})
	var ce *CommandError
	if !errors.As(err, &ce) || ce.Op != "fail" || ce.Stderr != "to stderr" || err.Error() != "docker fail: to stderr" {
		t.Errorf("failure = %#v (%v)", err, err)
	}
	if !isNoSuch(&CommandError{Stderr: "Error: No such container: x"}) || !isNoSuch(&CommandError{Stderr: "network x not found"}) || isNoSuch(errors.New("no such")) {
		t.Error("isNoSuch")
	}
	if opName([]string{"volume", "rm", "x"}) != "volume rm" || opName([]string{"run", "-d"}) != "run" {
		t.Error("opName")
	}
}
