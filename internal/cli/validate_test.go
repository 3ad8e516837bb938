package cli_test

import (
	"bytes"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
)

func TestValidateGeneratedConfigs(t *testing.T) {
	isolate(t)
	dir := t.TempDir()
	genConfig(t, dir)
	cp, w := filepath.Join(dir, "controlplane.yaml"), filepath.Join(dir, "worker.yaml")

	for _, tc := range []struct{ file, mode string }{
		{cp, "metal"}, {cp, "docker"}, {cp, "cloud"},
		{w, "docker"}, {w, "metal"}, {w, "cloud"},
	} {
		out := mustRun(t, "validate", "--config", tc.file, "--mode", tc.mode)
		if want := fmt.Sprintf("%s is valid for %s mode", tc.file, tc.mode); !strings.Contains(out, want) {
			t.Errorf("validate %s --mode %s printed %q, want %q", tc.file, tc.mode, out, want)
		}
	}
	// Short flags, and metal is the default mode.
	if out := mustRun(t, "validate", "-c", w, "-m", "docker"); !strings.Contains(out, "valid for docker mode") {
		t.Errorf("validate -c -m printed %q", out)
	}
	if out := mustRun(t, "validate", "-c", cp); !strings.Contains(out, "valid for metal mode") {
		t.Errorf("validate without --mode printed %q", out)
	}
	// Without docs too.
	nodocs := t.TempDir()
	genConfig(t, nodocs, "--with-docs=false")
	mustRun(t, "validate", "-c", filepath.Join(nodocs, "controlplane.yaml"), "-m", "metal")
	mustRun(t, "validate", "-c", filepath.Join(nodocs, "worker.yaml"), "-m", "metal")
}

func TestValidateReportsMisspelledField(t *testing.T) {
	isolate(t)
	dir := t.TempDir()
	for _, docs := range []string{"--with-docs=true", "--with-docs=false"} {
		out := filepath.Join(dir, docs)
		genConfig(t, out, docs)
		data := readFile(t, filepath.Join(out, "controlplane.yaml"))
		i := bytes.Index(data, []byte("\n  install:\n"))
		if i < 0 {
			t.Fatalf("no install field in controlplane.yaml:\n%s", data)
		}
		line := bytes.Count(data[:i+1], []byte("\n")) + 1
		bad := bytes.Replace(data, []byte("\n  install:\n"), []byte("\n  instal:\n"), 1)
		badPath := filepath.Join(out, "misspelled.yaml")
		writeFile(t, badPath, bad)

		err := mustFail(t, []string{badPath, fmt.Sprintf("%s:%d:", badPath, line), `did you mean "install"`, "machine.instal"},
			"validate", "--config", badPath, "--mode", "metal")
		if strings.Count(err.Error(), "\n") > 0 {
			t.Errorf("%s: one misspelling gives several problems:\n%v", docs, err)
		}
		// Every mode reports it.
		mustFail(t, []string{`did you mean "install"`}, "validate", "-c", badPath, "-m", "docker")
	}
}

func TestValidateReportsInvalidValues(t *testing.T) {
	isolate(t)
	dir := t.TempDir()
	genConfig(t, dir, "--with-docs=false")
	data := readFile(t, filepath.Join(dir, "worker.yaml"))

	// An install disk is required on metal only.
	noDisk := bytes.Replace(data, []byte("    disk: /dev/sda\n"), []byte(""), 1)
	if bytes.Equal(noDisk, data) {
		t.Fatal("no install disk found to remove")
	}
	path := filepath.Join(dir, "nodisk.yaml")
	writeFile(t, path, noDisk)
	mustFail(t, []string{path, "metal", "machine.install.disk"}, "validate", "-c", path, "-m", "metal")
	mustRun(t, "validate", "-c", path, "-m", "docker")

	// A bad value is located at its line.
	i := bytes.Index(data, []byte("\n  token: "))
	line := bytes.Count(data[:i+1], []byte("\n")) + 1
	badTok := append(bytes.Clone(data[:i]), []byte("\n  token: NOT-A-TOKEN")...)
	badTok = append(badTok, data[bytes.IndexByte(data[i+1:], '\n')+i+1:]...)
	path = filepath.Join(dir, "badtoken.yaml")
	writeFile(t, path, badTok)
	mustFail(t, []string{fmt.Sprintf("%s:%d:", path, line), "machine.token"}, "validate", "-c", path, "-m", "docker")
}

func TestValidateErrors(t *testing.T) {
	isolate(t)
	dir := t.TempDir()
	genConfig(t, dir, "--output-types", "worker")
	w := filepath.Join(dir, "worker.yaml")
	mustFail(t, []string{`unknown mode "vm"`}, "validate", "-c", w, "-m", "vm")
	mustFail(t, []string{"config"}, "validate")
	mustFail(t, []string{"missing.yaml"}, "validate", "-c", filepath.Join(dir, "missing.yaml"))
	notYAML := filepath.Join(dir, "broken.yaml")
	writeFile(t, notYAML, []byte("machine: [\n"))
	mustFail(t, []string{"broken.yaml", "invalid YAML"}, "validate", "-c", notYAML)
	secretsFile := filepath.Join(dir, "secrets.yaml")
	mustRun(t, "gen", "secrets", "-o", secretsFile)
	mustFail(t, []string{"SecretsBundle"}, "validate", "-c", secretsFile)
}
