package cli

import (
	"bytes"
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/plinthos/plinth/pkg/api/machine"
)

func TestParseMemberID(t *testing.T) {
	for in, want := range map[string]uint64{"8e9e05c52164694d": 0x8e9e05c52164694d, "0x10": 16, "FF": 255} {
		if got, err := parseMemberID(in); err != nil || got != want {
			t.Errorf("parseMemberID(%q) = %x, %v", in, got, err)
		}
	}
	for _, in := range []string{"", "0", "node-1", "1ffffffffffffffff"} {
		if _, err := parseMemberID(in); err == nil {
			t.Errorf("parseMemberID(%q) succeeded", in)
		}
	}
	if memberID(0x8e9e05c52164694d) != "8e9e05c52164694d" {
		t.Error("memberID does not format as hexadecimal")
	}
}

func TestPrintMembers(t *testing.T) {
	var buf bytes.Buffer
	printMembers(&buf, []*machine.EtcdMember{
		{Id: 0xab, Name: "cp-1", PeerUrls: []string{"https://10.5.0.2:2380"}, ClientUrls: []string{"https://10.5.0.2:2379"}},
		{Id: 0xcd, IsLearner: true},
	}, 0xab)
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != 3 || !strings.HasPrefix(lines[1], "ab*") || !strings.Contains(lines[1], "https://10.5.0.2:2380") ||
		!strings.HasPrefix(lines[2], "cd ") || !strings.HasSuffix(lines[2], "true") {
		t.Errorf("members table:\n%s", buf.String())
	}
}

// snapshotClient answers EtcdSnapshot with chunks, then err (io.EOF for a clean end).
type snapshotClient struct {
	machine.MachineServiceClient
	chunks [][]byte
	err    error
}

func (c *snapshotClient) EtcdSnapshot(context.Context, *machine.EtcdSnapshotRequest, ...grpc.CallOption) (grpc.ServerStreamingClient[machine.EtcdSnapshotResponse], error) {
	return &snapshotStream{chunks: c.chunks, err: c.err}, nil
}

type snapshotStream struct {
	grpc.ClientStream
	chunks [][]byte
	err    error
}

func (s *snapshotStream) Recv() (*machine.EtcdSnapshotResponse, error) {
	if len(s.chunks) == 0 {
		return nil, s.err
	}
	c := s.chunks[0]
	s.chunks = s.chunks[1:]
	return &machine.EtcdSnapshotResponse{Chunk: c}, nil
}

func TestSaveSnapshot(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "etcd.db")
	n, err := saveSnapshot(context.Background(), &snapshotClient{chunks: [][]byte{[]byte("abc"), []byte("defg")}, err: io.EOF}, path)
	if err != nil || n != 7 {
		t.Fatalf("saveSnapshot = %d, %v", n, err)
	}
	if data, _ := os.ReadFile(path); string(data) != "abcdefg" {
		t.Errorf("file holds %q", data)
	}
	if fi, _ := os.Stat(path); fi.Mode().Perm() != 0o600 {
		t.Errorf("mode %v", fi.Mode().Perm())
	}

	// A stream that breaks off leaves the earlier file as it was, and no temporary file.
	_, err = saveSnapshot(context.Background(), &snapshotClient{chunks: [][]byte{[]byte("xyz")}, err: status.Error(codes.Unavailable, "gone")}, path)
	if err == nil || !strings.Contains(err.Error(), "gone") {
		t.Errorf("broken stream: %v", err)
	}
	if data, _ := os.ReadFile(path); string(data) != "abcdefg" {
		t.Errorf("a failed snapshot replaced the file: %q", data)
	}
	// An empty snapshot is refused.
	if _, err := saveSnapshot(context.Background(), &snapshotClient{err: io.EOF}, path); err == nil {
		t.Error("an empty snapshot was saved")
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 1 {
		t.Errorf("directory holds %d entries, want only etcd.db", len(entries))
	}
}

func TestEtcdCommandsRefuseBadArguments(t *testing.T) {
	t.Setenv("HOME", t.TempDir())
	t.Setenv("PLINTHCONFIG", filepath.Join(t.TempDir(), "none"))
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"-n", "10.5.0.2,10.5.0.3", "etcd", "snapshot", "x.db"}, "from one node"},
		{[]string{"-n", "10.5.0.2,10.5.0.3", "etcd", "remove-member", "ab"}, "through one node"},
		{[]string{"etcd", "remove-member", "node-2"}, "not an etcd member id"},
		{[]string{"etcd", "snapshot"}, "accepts 1 arg"},
	} {
		cmd := NewRootCommand()
		cmd.SetArgs(tc.args)
		cmd.SetOut(io.Discard)
		cmd.SetErr(io.Discard)
		if err := cmd.Execute(); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: %v, want %q", tc.args, err, tc.want)
		}
	}
}
