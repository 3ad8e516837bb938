package cli_test

import (
	"strings"
	"testing"

	"github.com/spf13/cobra"

	"github.com/plinthos/plinth/internal/cli"
)

// commandPaths lists the argument paths of every command of the tree, help and
// completion included, with whether the command is a leaf that must carry an example.
func commandPaths(t *testing.T) map[string]bool {
	t.Helper()
	root := cli.NewRootCommand()
	root.InitDefaultHelpCmd()
	root.InitDefaultCompletionCmd()
	paths := map[string]bool{}
	var walk func(c *cobra.Command, path []string, builtin bool)
	walk = func(c *cobra.Command, path []string, builtin bool) {
		paths[strings.Join(path, " ")] = !c.HasSubCommands() && !builtin
		for _, sub := range c.Commands() {
			walk(sub, append(append([]string(nil), path...), sub.Name()), builtin || sub.Name() == "help" || sub.Name() == "completion")
		}
	}
	walk(root, nil, false)
	return paths
}

func TestEveryCommandHasHelp(t *testing.T) {
	isolate(t)
	paths := commandPaths(t)
	for _, want := range []string{"gen config", "gen secrets", "gen ca", "gen key", "gen csr", "gen crt", "validate",
		"machineconfig patch", "config contexts", "config context", "config endpoint", "config node", "config merge", "config info",
		"completion bash", "help"} {
		if _, ok := paths[want]; !ok {
			t.Errorf("command %q is missing from the tree", want)
		}
	}
	if len(paths) < 20 {
		t.Errorf("the command tree has only %d commands", len(paths))
	}
	for path := range paths {
		args := append(strings.Fields(path), "--help")
		out := mustRun(t, args...)
		if path != "" && !strings.HasPrefix(path, "help") && !strings.HasPrefix(path, "completion") {
			// `plinthctl help PATH` prints the same help.
			if viaHelp := mustRun(t, append([]string{"help"}, strings.Fields(path)...)...); viaHelp != out {
				t.Errorf("plinthctl help %s differs from plinthctl %s --help", path, path)
			}
		}
		if strings.TrimSpace(out) == "" {
			t.Errorf("plinthctl %s --help prints nothing", path)
			continue
		}
		if !strings.Contains(out, "Usage:") {
			t.Errorf("plinthctl %s --help has no usage:\n%s", path, out)
		}
	}
}

func TestEveryLeafCommandHasAnExample(t *testing.T) {
	root := cli.NewRootCommand()
	var walk func(c *cobra.Command)
	walk = func(c *cobra.Command) {
		if c.Short == "" {
			t.Errorf("%q has no short description", c.CommandPath())
		}
		if !c.HasSubCommands() && c.Name() != "help" && c.Name() != "completion" && strings.TrimSpace(c.Example) == "" {
			t.Errorf("%q has no example", c.CommandPath())
		}
		for _, sub := range c.Commands() {
			walk(sub)
		}
	}
	walk(root)

	// The same over the tree as executed, with the built-in commands present.
	for path, leaf := range commandPaths(t) {
		if !leaf {
			continue
		}
		cmd, _, err := root.Find(strings.Fields(path))
		if err != nil {
			t.Errorf("find %q: %v", path, err)
			continue
		}
		if strings.TrimSpace(cmd.Example) == "" {
			t.Errorf("plinthctl %s has no example", path)
		}
	}
}

func TestCompletion(t *testing.T) {
	isolate(t)
	for _, shell := range []string{"bash", "zsh", "fish", "powershell"} {
		out := mustRun(t, "completion", shell)
		if len(out) < 100 || !strings.Contains(out, "plinthctl") {
			t.Errorf("completion %s printed %d bytes:\n%.200s", shell, len(out), out)
		}
	}
	if out := mustRun(t, "completion", "bash"); !strings.Contains(out, "bash completion") {
		t.Errorf("completion bash does not look like a bash completion script:\n%.300s", out)
	}
}

func TestRootHelpAndErrors(t *testing.T) {
	isolate(t)
	out := mustRun(t, "--help")
	for _, want := range []string{"gen", "validate", "machineconfig", "config", "--plinthconfig", "--context"} {
		if !strings.Contains(out, want) {
			t.Errorf("plinthctl --help does not mention %q", want)
		}
	}
	mustFail(t, []string{`unknown command "frobnicate"`}, "frobnicate")
	mustFail(t, []string{"unknown flag"}, "gen", "config", "--nope")
}
