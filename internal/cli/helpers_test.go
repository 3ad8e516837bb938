package cli_test

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/plinthos/plinth/internal/cli"
	"github.com/plinthos/plinth/pkg/config"
)

const (
	clusterName = "demo"
	endpoint    = "https://10.5.0.2:6443"
)

// isolate points HOME and PLINTHCONFIG at a fresh temporary directory, so that no command
// can read or write the real home directory. It returns the home directory.
func isolate(t *testing.T) string {
	t.Helper()
	home := t.TempDir()
	t.Setenv("HOME", home)
	t.Setenv("PLINTHCONFIG", filepath.Join(home, "env-plinthconfig"))
	return home
}

// run executes plinthctl with args and returns everything it printed.
func run(t *testing.T, args ...string) (string, error) {
	t.Helper()
	cmd := cli.NewRootCommand()
	var buf bytes.Buffer
	cmd.SetArgs(args)
	cmd.SetOut(&buf)
	cmd.SetErr(&buf)
	cmd.SetIn(strings.NewReader(""))
	err := cmd.Execute()
	return buf.String(), err
}

func mustRun(t *testing.T, args ...string) string {
	t.Helper()
	out, err := run(t, args...)
	if err != nil {
		t.Fatalf("plinthctl %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return out
}

// mustFail runs plinthctl, expects an error containing every one of wants and returns it.
func mustFail(t *testing.T, wants []string, args ...string) error {
	t.Helper()
	out, err := run(t, args...)
	if err == nil {
		t.Fatalf("plinthctl %s succeeded, want an error\n%s", strings.Join(args, " "), out)
	}
	for _, w := range wants {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("plinthctl %s: error %q does not contain %q", strings.Join(args, " "), err, w)
		}
	}
	return err
}

// genConfig runs `gen config demo https://10.5.0.2:6443 -o dir` with extra flags.
func genConfig(t *testing.T, dir string, extra ...string) string {
	t.Helper()
	return mustRun(t, append([]string{"gen", "config", clusterName, endpoint, "--output-dir", dir}, extra...)...)
}

func loadMC(t *testing.T, path string) *config.MachineConfig {
	t.Helper()
	doc, err := config.LoadFile(path)
	if err != nil {
		t.Fatalf("load %s: %v", path, err)
	}
	return doc.Config
}

func readFile(t *testing.T, path string) []byte {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

func writeFile(t *testing.T, path string, data []byte) {
	t.Helper()
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
}

// dirNames lists the names in dir, sorted; a missing directory has none.
func dirNames(t *testing.T, dir string) []string {
	t.Helper()
	des, err := os.ReadDir(dir)
	if os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, de := range des {
		names = append(names, de.Name())
	}
	slices.Sort(names)
	return names
}

func checkMode(t *testing.T, path string, want os.FileMode) {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if got := fi.Mode().Perm(); got != want {
		t.Errorf("%s has mode %v, want %v", path, got, want)
	}
}

func checkMissing(t *testing.T, path string) {
	t.Helper()
	if _, err := os.Stat(path); !os.IsNotExist(err) {
		t.Errorf("%s exists (stat: %v), want it not written", path, err)
	}
}

// requireOpenSSL skips the test when openssl is not installed.
func requireOpenSSL(t *testing.T) {
	t.Helper()
	if _, err := exec.LookPath("openssl"); err != nil {
		t.Skip("openssl not in PATH")
	}
}

// openssl runs openssl in dir and returns its combined output and error.
func openssl(t *testing.T, dir string, args ...string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "openssl", args...)
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	return string(out), err
}
