package kernellock

import (
	"strings"
	"testing"
)

const sum = "4fdd0172a8c3f41a97e92465b2ac1867e1c10d82d7aeed3d26ee7a5d14df1754"

func TestRoundTrip(t *testing.T) {
	in := Lock{Meta: "linux-image-cloud-amd64", Package: "linux-image-6.1.0-57-cloud-amd64", Version: "6.1.192-3", SHA256: sum}
	b, err := in.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	out, err := Parse(strings.NewReader(string(b)))
	if err != nil {
		t.Fatal(err)
	}
	if out != in {
		t.Fatalf("round trip: got %+v, want %+v", out, in)
	}
	if got := out.ABI(); got != "6.1.0-57-cloud-amd64" {
		t.Fatalf("ABI = %q", got)
	}
}

func TestParseErrors(t *testing.T) {
	ok := "meta = m\npackage = linux-image-6.1.0-1-amd64\nversion = 1\nsha256 = " + sum + "\n"
	for name, in := range map[string]string{
		"missing sha":  "meta = m\npackage = linux-image-x\nversion = 1\n",
		"unknown key":  ok + "colour = red\n",
		"twice":        ok + "version = 2\n",
		"no equals":    ok + "version\n",
		"bad sha":      strings.Replace(ok, sum, "abc", 1),
		"bad package":  strings.Replace(ok, "linux-image-6.1.0-1-amd64", "kernel", 1),
		"space in val": strings.Replace(ok, "version = 1", "version = 1 2", 1),
	} {
		if _, err := Parse(strings.NewReader(in)); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
	if _, err := Parse(strings.NewReader("# comment\n\n" + ok)); err != nil {
		t.Errorf("comments: %v", err)
	}
}

func TestParsePin(t *testing.T) {
	l, err := ParsePin(strings.NewReader("package = systemd-boot-efi\nversion = 252.39-1~deb12u2\nsha256 = " + sum + "\n"))
	if err != nil {
		t.Fatal(err)
	}
	if l.Package != "systemd-boot-efi" || l.Meta != "" {
		t.Fatalf("got %+v", l)
	}
	if _, err := Parse(strings.NewReader("package = systemd-boot-efi\nversion = 1\nsha256 = " + sum + "\n")); err == nil {
		t.Fatal("Parse took a pin without meta and no kernel package")
	}
	if _, err := ParsePin(strings.NewReader("package = systemd-boot-efi\nsha256 = " + sum + "\n")); err == nil {
		t.Fatal("ParsePin took a pin without version")
	}
}
