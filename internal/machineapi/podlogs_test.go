package machineapi

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/plinthos/plinth/internal/fileapi"
	"github.com/plinthos/plinth/pkg/api/machine"
)

func TestPodLogFile(t *testing.T) {
	root := t.TempDir()
	dir := filepath.Join(root, "var", "log", "pods")
	files := fileapi.FS{Root: root, Allowed: []string{"/var/log"}}
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
		got, err := podLogFile(context.Background(), files, false, tc.name)
		if status.Code(err) != tc.code {
			t.Errorf("%s: error %v, want code %v", tc.name, err, tc.code)
			continue
		}
		if err == nil && got != "/var/log/pods/"+tc.want {
			t.Errorf("%s: %s, want /var/log/pods/%s", tc.name, got, tc.want)
		}
	}
	// Without /var/log among the allowed trees a reader is refused, an admin is not.
	files.Allowed = []string{"/etc/hostname"}
	if _, err := podLogFile(context.Background(), files, false, "web"); status.Code(err) != codes.PermissionDenied {
		t.Errorf("reader without /var/log: %v", err)
	}
	if _, err := podLogFile(context.Background(), files, true, "web"); err != nil {
		t.Errorf("admin without /var/log: %v", err)
	}
	if got := criMessage("2026-01-01T00:00:00Z stderr F an error: here"); got != "an error: here" {
		t.Errorf("criMessage = %q", got)
	}
	if got := criMessage("plain line"); got != "plain line" {
		t.Errorf("criMessage = %q", got)
	}
}

// TestKubernetesLogsThroughALink: a log file in /var/log/pods that is a link out of
// /var/log (as anyone who can write there can make one) does not give a reader what it
// leads to; a link inside /var/log and a plain log file are read.
func TestKubernetesLogsThroughALink(t *testing.T) {
	e := newEnv(t)
	pods := filepath.Join(e.filesRoot, "var", "log", "pods")
	mustMkdir(t, filepath.Join(pods, "default_web_uid1", "web"))
	mustWrite(t, filepath.Join(pods, "default_web_uid1", "web", "0.log"), "2026-01-01T00:00:00Z stdout F hello\n")
	mustMkdir(t, filepath.Join(pods, "default_evil_uid2", "c"))
	mustWrite(t, filepath.Join(e.filesRoot, "secret", "log"), "2026-01-01T00:00:00Z stdout F s3cr3t\n")
	if err := os.Symlink("../../../../../secret/log", filepath.Join(pods, "default_evil_uid2", "c", "0.log")); err != nil {
		t.Fatal(err)
	}
	mustMkdir(t, filepath.Join(pods, "default_alias_uid3", "c"))
	if err := os.Symlink("/var/log/pods/default_web_uid1/web/0.log", filepath.Join(pods, "default_alias_uid3", "c", "0.log")); err != nil {
		t.Fatal(err)
	}
	logs := func(ctx context.Context, name string) (string, error) {
		stream, err := e.machine.Logs(ctx, &machine.LogsRequest{Service: name, Kubernetes: true, TailLines: -1})
		if err != nil {
			return "", err
		}
		msgs, err := recvAll(stream.Recv)
		return string(dataOf(msgs)), err
	}
	for _, name := range []string{"default/web/web", "alias/c"} {
		if got, err := logs(e.reader(), name); err != nil || got != "hello\n" {
			t.Errorf("reader logs of %s = %q, %v", name, got, err)
		}
	}
	got, err := logs(e.reader(), "evil/c")
	wantCode(t, err, codes.PermissionDenied, "restricted: needs os:admin")
	if strings.Contains(got, "s3cr3t") {
		t.Errorf("a reader got the secret through a pod log link: %q", got)
	}
	if got, err := logs(e.admin(), "evil/c"); err != nil || got != "s3cr3t\n" {
		t.Errorf("admin logs through the link = %q, %v", got, err)
	}
}
