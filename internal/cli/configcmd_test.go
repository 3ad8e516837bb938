package cli_test

import (
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/plinthos/plinth/internal/configgen"
	"github.com/plinthos/plinth/pkg/clientconfig"
	"github.com/plinthos/plinth/pkg/role"
	"github.com/plinthos/plinth/pkg/secrets"
)

func loadCC(t *testing.T, path string) *clientconfig.Config {
	t.Helper()
	c, err := clientconfig.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// contextLines maps context names to the CURRENT column of `config contexts`.
func contextLines(t *testing.T, out string) map[string]string {
	t.Helper()
	lines := strings.Split(strings.TrimRight(out, "\n"), "\n")
	if len(lines) == 0 || !strings.HasPrefix(lines[0], "CURRENT") {
		t.Fatalf("config contexts has no header:\n%s", out)
	}
	got := map[string]string{}
	for _, l := range lines[1:] {
		fields := strings.Fields(l)
		switch {
		case len(fields) > 0 && fields[0] == "*":
			got[fields[1]] = "*"
		case len(fields) > 0:
			got[fields[0]] = ""
		}
	}
	return got
}

func TestConfigCommands(t *testing.T) {
	home := isolate(t)
	gen := t.TempDir()
	genConfig(t, gen)
	src := filepath.Join(gen, "plinthconfig")
	pc := filepath.Join(t.TempDir(), "dir", "plinthconfig")
	envPath := os.Getenv("PLINTHCONFIG")
	pcRun := func(args ...string) string {
		t.Helper()
		return mustRun(t, append([]string{"--plinthconfig", pc}, args...)...)
	}
	pcFail := func(wants []string, args ...string) error {
		t.Helper()
		return mustFail(t, wants, append([]string{"--plinthconfig", pc}, args...)...)
	}

	out := pcRun("config", "merge", src)
	if !strings.Contains(out, `added context "demo"`) || !strings.Contains(out, `current context is "demo"`) {
		t.Errorf("first merge printed:\n%s", out)
	}
	checkMode(t, pc, 0o600)
	out = pcRun("config", "merge", src)
	if !strings.Contains(out, `context "demo" already existed: added as "demo-1"`) || !strings.Contains(out, `current context is "demo-1"`) {
		t.Errorf("second merge printed:\n%s", out)
	}
	c := loadCC(t, pc)
	if !slices.Equal(c.Names(), []string{"demo", "demo-1"}) || c.Context != "demo-1" {
		t.Errorf("after two merges: %q, current %q", c.Names(), c.Context)
	}

	if got := contextLines(t, pcRun("config", "contexts")); len(got) != 2 || got["demo"] != "" || got["demo-1"] != "*" {
		t.Errorf("config contexts: %v, want demo and *demo-1", got)
	}

	if out := pcRun("config", "context", "demo"); !strings.Contains(out, `current context is now "demo"`) {
		t.Errorf("config context printed %q", out)
	}
	if got := contextLines(t, pcRun("config", "contexts")); got["demo"] != "*" || got["demo-1"] != "" {
		t.Errorf("config contexts after switching: %v", got)
	}
	pcFail([]string{`"nope"`, "demo, demo-1"}, "config", "context", "nope")
	if loadCC(t, pc).Context != "demo" {
		t.Error("a failed config context changed the current context")
	}

	pcRun("config", "endpoint", "1.2.3.4", "5.6.7.8")
	if got := loadCC(t, pc).Contexts["demo"].Endpoints; !slices.Equal(got, []string{"1.2.3.4", "5.6.7.8"}) {
		t.Errorf("endpoints = %q", got)
	}
	pcRun("config", "endpoints", "lb.example.com:50001")
	if got := loadCC(t, pc).Contexts["demo"].Endpoints; !slices.Equal(got, []string{"lb.example.com:50001"}) {
		t.Errorf("endpoints after the alias = %q", got)
	}
	pcRun("config", "endpoint", "1.2.3.4", "5.6.7.8")
	pcFail([]string{"requires at least 1 arg"}, "config", "endpoint")
	pcFail([]string{"not an address"}, "config", "endpoint", "1.2.3.4,5.6.7.8")
	pcFail([]string{"not an address"}, "config", "endpoint", "https://1.2.3.4/")

	pcRun("config", "node", "1.2.3.4")
	if got := loadCC(t, pc).Contexts["demo"].Nodes; !slices.Equal(got, []string{"1.2.3.4"}) {
		t.Errorf("nodes = %q", got)
	}
	if got := contextLines(t, pcRun("config", "contexts")); got["demo"] != "*" {
		t.Errorf("contexts: %v", got)
	}
	if out := pcRun("config", "contexts"); !regexp.MustCompile(`\*\s+demo\s+1\.2\.3\.4,5\.6\.7\.8\s+1\.2\.3\.4`).MatchString(out) {
		t.Errorf("config contexts does not show endpoints and nodes:\n%s", out)
	}
	out = pcRun("config", "info")
	for _, want := range []string{`Current context:\s+demo\n`, `Endpoints:\s+1\.2\.3\.4, 5\.6\.7\.8\n`, `Nodes:\s+1\.2\.3\.4\n`, `Roles:\s+os:admin\n`, `Certificate fingerprint:\s+SHA256:[0-9a-f]{64}\n`} {
		if !regexp.MustCompile(want).MatchString(out) {
			t.Errorf("config info does not match %q:\n%s", want, out)
		}
	}
	m := regexp.MustCompile(`Certificate expires:\s+(\S+) \(in ([0-9hms]+)\)`).FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("config info shows no expiry:\n%s", out)
	}
	expiry, err := time.Parse(time.RFC3339, m[1])
	if err != nil {
		t.Fatal(err)
	}
	if d := time.Until(expiry).Hours() / 24; d < 364 || d > 366 {
		t.Errorf("expiry %s is %.1f days away, want about a year", expiry, d)
	}

	pcRun("config", "node")
	if got := loadCC(t, pc).Contexts["demo"].Nodes; len(got) != 0 {
		t.Errorf("nodes after clearing = %q", got)
	}
	if !strings.Contains(pcRun("config", "info"), "(none)") {
		t.Error("config info does not show cleared nodes as (none)")
	}

	// --context selects another context without changing the current one.
	out = pcRun("--context", "demo-1", "config", "info")
	if !regexp.MustCompile(`Current context:\s+demo-1\n`).MatchString(out) || !regexp.MustCompile(`Endpoints:\s+10\.5\.0\.2\n`).MatchString(out) {
		t.Errorf("--context demo-1 config info:\n%s", out)
	}
	pcRun("--context", "demo-1", "config", "node", "9.9.9.9")
	c = loadCC(t, pc)
	if !slices.Equal(c.Contexts["demo-1"].Nodes, []string{"9.9.9.9"}) || len(c.Contexts["demo"].Nodes) != 0 || c.Context != "demo" {
		t.Errorf("--context demo-1 config node: demo-1 %q, demo %q, current %q", c.Contexts["demo-1"].Nodes, c.Contexts["demo"].Nodes, c.Context)
	}
	pcFail([]string{`"nope"`}, "--context", "nope", "config", "info")
	pcFail([]string{`"nope"`}, "--context", "nope", "config", "endpoint", "1.1.1.1")
	checkMode(t, pc, 0o600)

	// PLINTHCONFIG is used when --plinthconfig is absent.
	t.Setenv("PLINTHCONFIG", pc)
	if out := mustRun(t, "config", "info"); !regexp.MustCompile(`Current context:\s+demo\n`).MatchString(out) {
		t.Errorf("config info via PLINTHCONFIG:\n%s", out)
	}
	mustRun(t, "config", "context", "demo-1")
	if loadCC(t, pc).Context != "demo-1" {
		t.Error("config context via PLINTHCONFIG did not write the file")
	}
	// --plinthconfig wins over PLINTHCONFIG.
	other := filepath.Join(t.TempDir(), "other")
	mustRun(t, "--plinthconfig", other, "config", "merge", src)
	if loadCC(t, pc).Context != "demo-1" || len(loadCC(t, pc).Contexts) != 2 {
		t.Error("--plinthconfig did not take precedence over PLINTHCONFIG")
	}
	if len(loadCC(t, other).Contexts) != 1 {
		t.Error("merge with --plinthconfig did not write that file")
	}
	checkMissing(t, envPath)

	// Without either, ~/.plinth/config.
	t.Setenv("PLINTHCONFIG", "")
	mustRun(t, "config", "merge", src)
	def := filepath.Join(home, ".plinth", "config")
	if c := loadCC(t, def); c.Context != "demo" {
		t.Errorf("default plinthconfig: %+v", c)
	}
	checkMode(t, def, 0o600)
}

func TestConfigCommandsOnMissingConfig(t *testing.T) {
	isolate(t)
	missing := filepath.Join(t.TempDir(), "nothing", "plinthconfig")
	for _, args := range [][]string{
		{"config", "info"},
		{"config", "endpoint", "1.2.3.4"},
		{"config", "node", "1.2.3.4"},
		{"config", "node"},
	} {
		mustFail(t, []string{"no current context", missing, "config merge"}, append([]string{"--plinthconfig", missing}, args...)...)
	}
	mustFail(t, []string{`"demo"`, missing}, "--plinthconfig", missing, "config", "context", "demo")
	out := mustRun(t, "--plinthconfig", missing, "config", "contexts")
	if strings.Count(out, "\n") != 1 {
		t.Errorf("config contexts of a missing config prints more than the header:\n%s", out)
	}
	if len(contextLines(t, out)) != 0 {
		t.Errorf("config contexts of a missing config lists contexts:\n%s", out)
	}
	checkMissing(t, missing)
	checkMissing(t, filepath.Dir(missing))

	// Also through PLINTHCONFIG.
	t.Setenv("PLINTHCONFIG", missing)
	mustFail(t, []string{"no current context"}, "config", "info")
	checkMissing(t, missing)
}

func TestConfigMergeErrors(t *testing.T) {
	isolate(t)
	dir := t.TempDir()
	genConfig(t, dir)
	pc := filepath.Join(t.TempDir(), "plinthconfig")
	mustFail(t, []string{"no contexts to merge"}, "--plinthconfig", pc, "config", "merge", filepath.Join(dir, "missing"))
	mustFail(t, []string{"controlplane.yaml"}, "--plinthconfig", pc, "config", "merge", filepath.Join(dir, "controlplane.yaml"))
	checkMissing(t, pc)
	mustFail(t, []string{"accepts 1 arg"}, "--plinthconfig", pc, "config", "merge")

	// A broken plinthconfig is reported, not overwritten.
	writeFile(t, pc, []byte("contexts: [\n"))
	mustFail(t, []string{pc}, "--plinthconfig", pc, "config", "merge", filepath.Join(dir, "plinthconfig"))
	mustFail(t, []string{pc}, "--plinthconfig", pc, "config", "info")
	if string(readFile(t, pc)) != "contexts: [\n" {
		t.Error("a broken plinthconfig was overwritten")
	}
}

func TestConfigInfoExpiredAndBrokenCertificates(t *testing.T) {
	isolate(t)
	b, err := secrets.Generate(time.Now())
	if err != nil {
		t.Fatal(err)
	}
	expired, err := configgen.NewContext(b.CAs.OS, []string{"10.5.0.2"}, []string{role.Reader}, time.Hour, time.Now().Add(-48*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	broken := *expired
	broken.Crt = []byte("not a certificate")
	pc := filepath.Join(t.TempDir(), "plinthconfig")
	cfg := &clientconfig.Config{Context: "old", Contexts: map[string]*clientconfig.Context{"old": expired, "broken": &broken}}
	if err := cfg.Save(pc); err != nil {
		t.Fatal(err)
	}
	out := mustRun(t, "--plinthconfig", pc, "config", "info")
	if !strings.Contains(out, "EXPIRED") || !regexp.MustCompile(`Roles:\s+os:reader\n`).MatchString(out) {
		t.Errorf("config info of an expired certificate:\n%s", out)
	}
	mustFail(t, []string{`"broken"`, "client certificate"}, "--plinthconfig", pc, "--context", "broken", "config", "info")
}
