package machineapi

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/plinthos/plinth/internal/clock"
	"github.com/plinthos/plinth/internal/configmgr"
	"github.com/plinthos/plinth/internal/etcdgw"
	"github.com/plinthos/plinth/pkg/api/machine"
	"github.com/plinthos/plinth/pkg/config"
)

// fakeEtcd is a three-member cluster seen from member 1.
type fakeEtcd struct {
	self, leader uint64
	members      []etcdgw.Member
	snapshot     []byte
	err          error // returned by every call when set
	removed      []uint64
	moved        []uint64
}

func newFakeEtcd() *fakeEtcd {
	return &fakeEtcd{self: 1, leader: 2, members: []etcdgw.Member{
		{ID: 1, Name: "cp-1", PeerURLs: []string{"https://10.5.0.2:2380"}},
		{ID: 2, Name: "cp-2"},
		{ID: 3, Name: "cp-3", IsLearner: true},
	}}
}

func (f *fakeEtcd) header() etcdgw.Header {
	return etcdgw.Header{ClusterID: 99, MemberID: f.self, Revision: 7}
}

func (f *fakeEtcd) MemberList(context.Context) (etcdgw.Header, []etcdgw.Member, error) {
	return f.header(), f.members, f.err
}

func (f *fakeEtcd) Status(context.Context) (etcdgw.Status, error) {
	return etcdgw.Status{Header: f.header(), Version: "3.7.3", DBSize: 4096, Leader: f.leader, RaftTerm: 2}, f.err
}

func (f *fakeEtcd) Snapshot(_ context.Context, w io.Writer) (int64, error) {
	if f.err != nil {
		return 0, f.err
	}
	n, err := w.Write(f.snapshot)
	return int64(n), err
}

func (f *fakeEtcd) RemoveMember(_ context.Context, id uint64) ([]etcdgw.Member, error) {
	if f.err != nil {
		return nil, f.err
	}
	f.removed = append(f.removed, id)
	var left []etcdgw.Member
	for _, m := range f.members {
		if m.ID != id {
			left = append(left, m)
		}
	}
	f.members = left
	return left, nil
}

func (f *fakeEtcd) MoveLeader(_ context.Context, id uint64) error {
	if f.err != nil {
		return f.err
	}
	f.moved = append(f.moved, id)
	f.leader = id
	return nil
}

// snapshotStream collects what EtcdSnapshot sends.
type snapshotStream struct {
	grpc.ServerStream
	chunks [][]byte
}

func (s *snapshotStream) Context() context.Context { return context.Background() }
func (s *snapshotStream) Send(m *machine.EtcdSnapshotResponse) error {
	s.chunks = append(s.chunks, m.Chunk)
	return nil
}

// configManager boots a configuration manager with c.
func configManager(t *testing.T, c *config.MachineConfig) *configmgr.Manager {
	t.Helper()
	dir := t.TempDir()
	seed := filepath.Join(dir, "seed.yaml")
	mustWrite(t, seed, string(marshalConfig(t, c)))
	m := configmgr.New(filepath.Join(dir, "state"), config.ModeDocker, clock.Real{}, slog.New(slog.DiscardHandler))
	if _, err := m.Boot(seed); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(m.Close)
	return m
}

func TestEtcdRefusedWithoutEtcd(t *testing.T) {
	ctx := context.Background()
	configs := generatedConfigs(t)
	for name, s := range map[string]*MachineServer{
		"no client": {Config: configManager(t, configs.ControlPlane)},
		"worker":    {Config: configManager(t, configs.Worker), Etcd: newFakeEtcd()},
	} {
		_, err := s.EtcdMembers(ctx, &machine.EtcdMembersRequest{})
		if status.Code(err) != codes.FailedPrecondition || !strings.Contains(err.Error(), "runs no etcd") {
			t.Errorf("%s: members: %v", name, err)
		}
		if err := s.EtcdSnapshot(&machine.EtcdSnapshotRequest{}, &snapshotStream{}); status.Code(err) != codes.FailedPrecondition {
			t.Errorf("%s: snapshot: %v", name, err)
		}
		if _, err := s.EtcdLeave(ctx, &machine.EtcdLeaveRequest{}); status.Code(err) != codes.FailedPrecondition {
			t.Errorf("%s: leave: %v", name, err)
		}
	}
}

func TestEtcdRPCs(t *testing.T) {
	ctx := context.Background()
	f := newFakeEtcd()
	leaver := &fakeLeaver{}
	s := &MachineServer{Config: configManager(t, generatedConfigs(t).ControlPlane), Etcd: f, Bootstrapper: leaver}

	members, err := s.EtcdMembers(ctx, &machine.EtcdMembersRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if len(members.Members) != 3 || members.MemberId != 1 || members.ClusterId != 99 || members.Members[0].PeerUrls[0] != "https://10.5.0.2:2380" || !members.Members[2].IsLearner {
		t.Errorf("members = %v", members)
	}

	st, err := s.EtcdStatus(ctx, &machine.EtcdStatusRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if st.Version != "3.7.3" || st.DbSize != 4096 || st.Leader != 2 || st.MemberId != 1 || st.Revision != 7 {
		t.Errorf("status = %v", st)
	}

	f.snapshot = bytes.Repeat([]byte{1, 2, 3}, logChunk)
	var stream snapshotStream
	if err := s.EtcdSnapshot(&machine.EtcdSnapshotRequest{}, &stream); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(bytes.Join(stream.chunks, nil), f.snapshot) || len(stream.chunks) != 3 {
		t.Errorf("%d chunks", len(stream.chunks))
	}

	// Not the leader: forfeiting does nothing.
	fl, err := s.EtcdForfeitLeadership(ctx, &machine.EtcdForfeitLeadershipRequest{})
	if err != nil || fl.Leader != 0 || len(f.moved) != 0 {
		t.Errorf("forfeit when not leading = %v, %v, moved %v", fl, err, f.moved)
	}
	// The leader hands over to a voting member, not the learner.
	f.leader = 1
	fl, err = s.EtcdForfeitLeadership(ctx, &machine.EtcdForfeitLeadershipRequest{})
	if err != nil || fl.Leader != 2 || len(f.moved) != 1 || f.moved[0] != 2 {
		t.Errorf("forfeit when leading = %v, %v, moved %v", fl, err, f.moved)
	}

	// Removing: not oneself, not an unknown member, not id 0.
	for id, want := range map[uint64]codes.Code{1: codes.FailedPrecondition, 42: codes.NotFound, 0: codes.InvalidArgument} {
		if _, err := s.EtcdRemoveMember(ctx, &machine.EtcdRemoveMemberRequest{MemberId: id}); status.Code(err) != want {
			t.Errorf("remove %d: %v, want %s", id, err, want)
		}
	}
	rm, err := s.EtcdRemoveMember(ctx, &machine.EtcdRemoveMemberRequest{MemberId: 3})
	if err != nil || len(rm.Members) != 2 || !strings.Contains(rm.Message, "cp-3") {
		t.Errorf("remove 3 = %v, %v", rm, err)
	}

	// Leaving as the leader: leadership moves first, then the own member goes.
	f.leader, f.moved = 1, nil
	if _, err := s.EtcdLeave(ctx, &machine.EtcdLeaveRequest{}); err != nil {
		t.Fatal(err)
	}
	if len(f.moved) != 1 || f.moved[0] != 2 || len(f.removed) != 2 || f.removed[1] != 1 {
		t.Errorf("leave: moved %v, removed %v", f.moved, f.removed)
	}
	if leaver.left != 1 {
		t.Errorf("the node was told of the leave %d times, want once", leaver.left)
	}
	// The last member cannot leave.
	f.self, f.members = 2, f.members[:1]
	if _, err := s.EtcdLeave(ctx, &machine.EtcdLeaveRequest{}); status.Code(err) != codes.FailedPrecondition {
		t.Errorf("the last member leaving: %v", err)
	}
}

func TestEtcdErrors(t *testing.T) {
	ctx := context.Background()
	f := newFakeEtcd()
	s := &MachineServer{Etcd: f}
	for err, want := range map[error]codes.Code{
		&etcdgw.Error{Code: int(codes.NotFound), Message: "member not found"}:       codes.NotFound,
		&net.OpError{Op: "dial", Net: "tcp", Err: errors.New("connection refused")}: codes.Unavailable,
		context.DeadlineExceeded:     codes.DeadlineExceeded,
		etcdgw.ErrIncompleteSnapshot: codes.Internal,
	} {
		f.err = err
		if _, got := s.EtcdStatus(ctx, &machine.EtcdStatusRequest{}); status.Code(got) != want {
			t.Errorf("%v: %v, want %s", err, got, want)
		}
		if got := s.EtcdSnapshot(&machine.EtcdSnapshotRequest{}, &snapshotStream{}); status.Code(got) != want {
			t.Errorf("snapshot %v: %v, want %s", err, got, want)
		}
	}
}

// TestResetGracefulLeavesEtcd: a graceful reset of a control plane removes its etcd
// member (after handing on leadership) before wiping; it is refused, and nothing is
// wiped, when the node holds the only member or its etcd does not answer; --graceful=false
// and nodes without a member wipe at once.
func TestResetGracefulLeavesEtcd(t *testing.T) {
	ctx := context.Background()
	configs := generatedConfigs(t)

	f := newFakeEtcd()
	f.leader = 1
	lc := &fakeLifecycle{}
	s := &MachineServer{Config: configManager(t, configs.ControlPlane), Etcd: f, Lifecycle: lc}
	if _, err := s.Reset(ctx, &machine.ResetRequest{Graceful: true, Reboot: true}); err != nil {
		t.Fatal(err)
	}
	if len(f.moved) != 1 || !slices.Equal(f.removed, []uint64{1}) {
		t.Errorf("graceful reset: moved %v, removed %v", f.moved, f.removed)
	}
	if calls := lc.Calls(); len(calls) != 1 || calls[0].Op != "reset" {
		t.Errorf("lifecycle calls %v", calls)
	}

	// The only member: refused, nothing removed, nothing wiped.
	f, lc = newFakeEtcd(), &fakeLifecycle{}
	f.members = f.members[:1]
	s = &MachineServer{Config: configManager(t, configs.ControlPlane), Etcd: f, Lifecycle: lc}
	_, err := s.Reset(ctx, &machine.ResetRequest{Graceful: true})
	if status.Code(err) != codes.FailedPrecondition || !strings.Contains(err.Error(), "only etcd member") || len(f.removed) != 0 || len(lc.Calls()) != 0 {
		t.Errorf("graceful reset of the only member: %v, removed %v, calls %v", err, f.removed, lc.Calls())
	}
	// Not graceful: wiped at once, etcd untouched.
	if _, err := s.Reset(ctx, &machine.ResetRequest{Graceful: false}); err != nil || len(f.removed) != 0 || len(lc.Calls()) != 1 {
		t.Errorf("reset --graceful=false: %v, removed %v, calls %v", err, f.removed, lc.Calls())
	}
	// A worker has no member to leave.
	lc = &fakeLifecycle{}
	s = &MachineServer{Config: configManager(t, configs.Worker), Etcd: newFakeEtcd(), Lifecycle: lc}
	if _, err := s.Reset(ctx, &machine.ResetRequest{Graceful: true}); err != nil || len(lc.Calls()) != 1 {
		t.Errorf("graceful reset of a worker: %v, calls %v", err, lc.Calls())
	}
}

// fakeLeaver counts the leaves it is told of.
type fakeLeaver struct{ left int }

func (*fakeLeaver) Bootstrap(context.Context) (string, error) { return "", nil }
func (l *fakeLeaver) EtcdLeft() error                         { l.left++; return nil }
