package machineapi

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/plinthos/plinth/internal/etcdgw"
	"github.com/plinthos/plinth/pkg/api/machine"
	"github.com/plinthos/plinth/pkg/config"
)

// EtcdClient talks to this node's etcd member; *etcdgw.Client implements it.
type EtcdClient interface {
	MemberList(ctx context.Context) (etcdgw.Header, []etcdgw.Member, error)
	Status(ctx context.Context) (etcdgw.Status, error)
	Snapshot(ctx context.Context, w io.Writer) (int64, error)
	RemoveMember(ctx context.Context, id uint64) ([]etcdgw.Member, error)
	MoveLeader(ctx context.Context, targetID uint64) error
}

var errNoEtcd = status.Error(codes.FailedPrecondition, "this node runs no etcd: etcd runs on the control-plane nodes of a Kubernetes cluster")

// etcd returns the etcd client when this node runs etcd: a control plane with a client.
func (s *MachineServer) etcd() (EtcdClient, error) {
	if s.Etcd == nil {
		return nil, errNoEtcd
	}
	if s.Config != nil {
		if cfg, _ := s.Config.Current(); cfg == nil || cfg.Machine.Type != config.TypeControlPlane {
			return nil, errNoEtcd
		}
	}
	return s.Etcd, nil
}

// etcdError turns an error of the etcd client into a status: etcd's own code, Unavailable
// when etcd does not answer, Internal otherwise.
func etcdError(err error) error {
	if err == nil {
		return nil
	}
	if _, ok := status.FromError(err); ok {
		return err
	}
	var e *etcdgw.Error
	if errors.As(err, &e) {
		return status.Error(codes.Code(e.Code), e.Error())
	}
	if errors.Is(err, context.Canceled) {
		return status.Error(codes.Canceled, err.Error())
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return status.Error(codes.DeadlineExceeded, err.Error())
	}
	var ne net.Error
	var oe *net.OpError
	if errors.As(err, &oe) || errors.As(err, &ne) {
		return status.Errorf(codes.Unavailable, "etcd does not answer on this node (%v); it starts after bootstrap or once the node joined, see plinthctl logs kubelet", err)
	}
	return status.Error(codes.Internal, err.Error())
}

// MemberID formats an etcd member id the way etcdctl does (hexadecimal).
func MemberID(id uint64) string { return strconv.FormatUint(id, 16) }

func membersToProto(ms []etcdgw.Member) []*machine.EtcdMember {
	out := make([]*machine.EtcdMember, 0, len(ms))
	for _, m := range ms {
		out = append(out, &machine.EtcdMember{Id: m.ID, Name: m.Name, PeerUrls: m.PeerURLs, ClientUrls: m.ClientURLs, IsLearner: m.IsLearner})
	}
	return out
}

// EtcdMembers implements the EtcdMembers RPC.
func (s *MachineServer) EtcdMembers(ctx context.Context, _ *machine.EtcdMembersRequest) (*machine.EtcdMembersResponse, error) {
	c, err := s.etcd()
	if err != nil {
		return nil, err
	}
	h, ms, err := c.MemberList(ctx)
	if err != nil {
		return nil, etcdError(err)
	}
	return &machine.EtcdMembersResponse{Members: membersToProto(ms), MemberId: h.MemberID, ClusterId: h.ClusterID}, nil
}

// EtcdStatus implements the EtcdStatus RPC.
func (s *MachineServer) EtcdStatus(ctx context.Context, _ *machine.EtcdStatusRequest) (*machine.EtcdStatusResponse, error) {
	c, err := s.etcd()
	if err != nil {
		return nil, err
	}
	st, err := c.Status(ctx)
	if err != nil {
		return nil, etcdError(err)
	}
	return &machine.EtcdStatusResponse{MemberId: st.Header.MemberID, ClusterId: st.Header.ClusterID, Version: st.Version,
		StorageVersion: st.StorageVersion, DbSize: st.DBSize, DbSizeInUse: st.DBSizeInUse, Leader: st.Leader,
		RaftIndex: st.RaftIndex, RaftTerm: st.RaftTerm, RaftAppliedIndex: st.RaftAppliedIndex, Revision: st.Header.Revision,
		IsLearner: st.IsLearner, Errors: st.Errors}, nil
}

// EtcdSnapshot implements the EtcdSnapshot RPC: etcd's snapshot, passed on in chunks.
func (s *MachineServer) EtcdSnapshot(_ *machine.EtcdSnapshotRequest, stream grpc.ServerStreamingServer[machine.EtcdSnapshotResponse]) error {
	c, err := s.etcd()
	if err != nil {
		return err
	}
	w := chunkWriter{send: func(b []byte) error { return stream.Send(&machine.EtcdSnapshotResponse{Chunk: b}) }}
	if _, err := c.Snapshot(stream.Context(), w); err != nil {
		return etcdError(err)
	}
	return nil
}

// EtcdRemoveMember implements the EtcdRemoveMember RPC. A node's own member is removed
// with EtcdLeave instead.
func (s *MachineServer) EtcdRemoveMember(ctx context.Context, req *machine.EtcdRemoveMemberRequest) (*machine.EtcdRemoveMemberResponse, error) {
	c, err := s.etcd()
	if err != nil {
		return nil, err
	}
	if req.GetMemberId() == 0 {
		return nil, status.Error(codes.InvalidArgument, "no member id given; list them with `plinthctl etcd members`")
	}
	h, ms, err := c.MemberList(ctx)
	if err != nil {
		return nil, etcdError(err)
	}
	if req.GetMemberId() == h.MemberID {
		return nil, status.Errorf(codes.FailedPrecondition, "member %s is this node's own: use `plinthctl etcd leave` on it, or remove it through another control-plane node", MemberID(h.MemberID))
	}
	name, found := "", false
	for _, m := range ms {
		if m.ID == req.GetMemberId() {
			name, found = m.Name, true
		}
	}
	if !found {
		return nil, status.Errorf(codes.NotFound, "no etcd member %s; list them with `plinthctl etcd members`", MemberID(req.GetMemberId()))
	}
	left, err := c.RemoveMember(ctx, req.GetMemberId())
	if err != nil {
		return nil, etcdError(err)
	}
	msg := "removed etcd member " + MemberID(req.GetMemberId())
	if name != "" {
		msg += " (" + name + ")"
	}
	return &machine.EtcdRemoveMemberResponse{Message: fmt.Sprintf("%s; %d members left", msg, len(left)), Members: membersToProto(left)}, nil
}

func hasMember(ms []etcdgw.Member, id uint64) bool {
	for _, m := range ms {
		if m.ID == id {
			return true
		}
	}
	return false
}

// forfeit hands leadership to another voting member when this member leads; it returns
// the new leader, or 0 when this member did not lead.
func forfeit(ctx context.Context, c EtcdClient) (uint64, error) {
	st, err := c.Status(ctx)
	if err != nil {
		return 0, err
	}
	self := st.Header.MemberID
	if st.Leader != self {
		return 0, nil
	}
	_, ms, err := c.MemberList(ctx)
	if err != nil {
		return 0, err
	}
	for _, m := range ms {
		if m.ID == self || m.IsLearner {
			continue
		}
		if err := c.MoveLeader(ctx, m.ID); err != nil {
			return 0, err
		}
		return m.ID, nil
	}
	return 0, status.Error(codes.FailedPrecondition, "this is the only voting etcd member: there is no one to hand leadership to")
}

// EtcdForfeitLeadership implements the EtcdForfeitLeadership RPC.
func (s *MachineServer) EtcdForfeitLeadership(ctx context.Context, _ *machine.EtcdForfeitLeadershipRequest) (*machine.EtcdForfeitLeadershipResponse, error) {
	c, err := s.etcd()
	if err != nil {
		return nil, err
	}
	leader, err := forfeit(ctx, c)
	if err != nil {
		return nil, etcdError(err)
	}
	if leader == 0 {
		return &machine.EtcdForfeitLeadershipResponse{Message: "this node's etcd member is not the leader; nothing to do"}, nil
	}
	return &machine.EtcdForfeitLeadershipResponse{Message: "etcd leadership moved to member " + MemberID(leader), Leader: leader}, nil
}

// EtcdLeave implements the EtcdLeave RPC: hand leadership on, then remove this node's own
// member. The node's etcd stops serving; reset or shut the node down afterwards.
func (s *MachineServer) EtcdLeave(ctx context.Context, _ *machine.EtcdLeaveRequest) (*machine.EtcdLeaveResponse, error) {
	c, err := s.etcd()
	if err != nil {
		return nil, err
	}
	h, ms, err := c.MemberList(ctx)
	if err != nil {
		return nil, etcdError(err)
	}
	self := h.MemberID
	if !hasMember(ms, self) {
		return nil, status.Errorf(codes.FailedPrecondition, "this node's member %s is not in the cluster any more", MemberID(self))
	}
	if len(ms) == 1 {
		return nil, status.Error(codes.FailedPrecondition, "this node holds the only etcd member: leaving would destroy the cluster (take a snapshot and reset the node instead)")
	}
	if _, err := forfeit(ctx, c); err != nil {
		return nil, etcdError(err)
	}
	left, err := c.RemoveMember(ctx, self)
	if err != nil {
		return nil, etcdError(err)
	}
	if l, ok := s.Bootstrapper.(Leaver); ok {
		if err := l.EtcdLeft(); err != nil {
			return nil, status.Errorf(codes.Internal, "member %s left the etcd cluster, but recording it on this node failed (its etcd may try to join again; reset the node): %v", MemberID(self), err)
		}
	}
	return &machine.EtcdLeaveResponse{Message: fmt.Sprintf("member %s left the etcd cluster (%d members left); this node's etcd stops and stays down: reset or shut the node down", MemberID(self), len(left))}, nil
}

// leaveBeforeReset is the graceful part of a reset: a control plane's etcd member leaves
// the cluster (leadership handed on first), so that the cluster does not keep a member that
// will never come back and count it in its quorum. Nodes without an etcd member have
// nothing to leave.
func (s *MachineServer) leaveBeforeReset(ctx context.Context) error {
	c, err := s.etcd()
	if errors.Is(err, errNoEtcd) {
		return nil
	}
	if err != nil {
		return err
	}
	h, ms, err := c.MemberList(ctx)
	if err != nil {
		return status.Errorf(codes.FailedPrecondition, "reset --graceful: this control plane's etcd does not answer (%v), so its member cannot leave the cluster; if it never joined one, or to wipe it anyway, reset with --graceful=false", err)
	}
	if !hasMember(ms, h.MemberID) {
		return nil // removed already
	}
	if len(ms) == 1 {
		return status.Error(codes.FailedPrecondition, "reset --graceful: this node holds the only etcd member: leaving would destroy the cluster; take a snapshot (plinthctl etcd snapshot) and reset with --graceful=false")
	}
	if _, err := forfeit(ctx, c); err != nil {
		return etcdError(err)
	}
	if _, err := c.RemoveMember(ctx, h.MemberID); err != nil {
		return etcdError(err)
	}
	return nil
}
