package machineapi

import (
	"os"
	"path/filepath"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

func TestPodLogFile(t *testing.T) {
	dir := t.TempDir()
	mk := func(rel string) {
		p := filepath.Join(dir, rel)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte("2026-01-01T00:00:00Z stdout F hello\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	mk("kube-system_coredns-abc_uid1/coredns/0.log")
	mk("kube-system_coredns-abc_uid1/coredns/10.log")
	mk("kube-system_coredns-abc_uid1/coredns/2.log")
	mk("default_web_uid2/web/0.log")
	mk("default_two_uid3/a/0.log")
	mk("default_two_uid3/b/0.log")
	for _, tc := range []struct {
		name, want string
		code       codes.Code
	}{
		{"kube-system/coredns-abc/coredns", "kube-system_coredns-abc_uid1/coredns/10.log", codes.OK},
		{"coredns-abc/coredns", "kube-system_coredns-abc_uid1/coredns/10.log", codes.OK},
		{"web", "default_web_uid2/web/0.log", codes.OK},
		{"two", "", codes.InvalidArgument},
		{"two/b", "default_two_uid3/b/0.log", codes.OK},
		{"nope", "", codes.NotFound},
		{"web/nope", "", codes.NotFound},
		{"../etc", "", codes.InvalidArgument},
		{"w*", "", codes.InvalidArgument},
	} {
		got, err := podLogFile(dir, tc.name)
		if status.Code(err) != tc.code {
			t.Errorf("%s: error %v, want code %v", tc.name, err, tc.code)
			continue
		}
		if err == nil && got != filepath.Join(dir, tc.want) {
			t.Errorf("%s: %s, want %s", tc.name, got, tc.want)
		}
	}
	if got := criMessage("2026-01-01T00:00:00Z stderr F an error: here"); got != "an error: here" {
		t.Errorf("criMessage = %q", got)
	}
	if got := criMessage("plain line"); got != "plain line" {
		t.Errorf("criMessage = %q", got)
	}
}
