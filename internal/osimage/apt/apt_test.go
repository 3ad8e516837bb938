package apt

import "testing"

const show = `Package: linux-image-cloud-amd64
Version: 6.1.192-3
Depends: linux-image-6.1.0-57-cloud-amd64 (= 6.1.192-3)
Description: Linux for x86-64 cloud (meta-package)
 This package depends on the latest Linux kernel
 and modules for use on cloud platforms.
SHA256: fcd79a9aee28374b8d1f1b1c0bf3ab0d920ed1a3eca887c9e6cc57bb7bee6e5c

Package: linux-image-cloud-amd64
Version: 6.1.176-1
Depends: linux-image-6.1.0-50-cloud-amd64 (= 6.1.176-1)

`

func TestParseStanzas(t *testing.T) {
	s := ParseStanzas([]byte(show))
	if len(s) != 2 {
		t.Fatalf("got %d stanzas", len(s))
	}
	if s[0]["Version"] != "6.1.192-3" || s[1]["Version"] != "6.1.176-1" {
		t.Fatalf("versions: %q %q", s[0]["Version"], s[1]["Version"])
	}
	if s[0]["SHA256"] != "fcd79a9aee28374b8d1f1b1c0bf3ab0d920ed1a3eca887c9e6cc57bb7bee6e5c" {
		t.Fatalf("sha256 after a continuation: %q", s[0]["SHA256"])
	}
	if want := "Linux for x86-64 cloud (meta-package)\nThis package depends on the latest Linux kernel\nand modules for use on cloud platforms."; s[0]["Description"] != want {
		t.Fatalf("description: %q", s[0]["Description"])
	}
}

func TestExactDepends(t *testing.T) {
	d := ExactDepends("kmod, linux-image-6.1.0-57-cloud-amd64 (= 6.1.192-3), initramfs-tools (>= 0.120) | linux-initramfs-tool")
	if len(d) != 1 || d["linux-image-6.1.0-57-cloud-amd64"] != "6.1.192-3" {
		t.Fatalf("got %v", d)
	}
}

func TestParseCandidate(t *testing.T) {
	v, ok := ParseCandidate([]byte("linux-image-cloud-amd64:\n  Installed: (none)\n  Candidate: 6.1.192-3\n  Version table:\n"))
	if !ok || v != "6.1.192-3" {
		t.Fatalf("got %q %v", v, ok)
	}
	if _, ok := ParseCandidate([]byte("x:\n  Installed: (none)\n  Candidate: (none)\n")); ok {
		t.Fatal("(none) is not a candidate")
	}
}

func TestDebFileName(t *testing.T) {
	if got := DebFileName("p", "1:2.0-1", "amd64"); got != "p_1%3a2.0-1_amd64.deb" {
		t.Fatal(got)
	}
}
