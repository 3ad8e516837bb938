package machineapi

import (
	"context"
	"errors"
	"io"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/plinthos/plinth/internal/events"
	"github.com/plinthos/plinth/pkg/api/machine"
)

// Upgrader upgrades and rolls back the node's OS (nil on a platform without A/B slots).
type Upgrader interface {
	// Upgrade writes the artifact read from r into the other slot and arms its trial boot;
	// unless stage, the node then reboots into it. An error means nothing was armed.
	Upgrade(ctx context.Context, actorID string, r io.Reader, stage bool) (UpgradeResult, error)
	// Rollback makes the other slot the default and reboots into it.
	Rollback(actorID string) (UpgradeResult, error)
}

// UpgradeResult says what an upgrade or rollback did.
type UpgradeResult struct {
	FromVersion, FromSlot string
	Version, Slot         string
	Rebooting             bool
}

// ErrNoSlots is what Upgrader methods return when the node has nothing to upgrade (booted
// from the install media).
var ErrNoSlots = errors.New("this node runs from its install media: install it first (there are no slots to upgrade)")

// Upgrade implements the Upgrade RPC: the stream's chunks are the artifact.
func (s *MachineServer) Upgrade(stream grpc.ClientStreamingServer[machine.UpgradeRequest, machine.UpgradeResponse]) error {
	if s.Upgrader == nil {
		return status.Errorf(codes.Unimplemented, "OS upgrades are not supported on the %s platform: only a machine installed to a disk (metal: VMs and bare metal) has A/B slots", s.Platform)
	}
	first, r, err := readChunks(stream.Recv, "upgrade artifact")
	if err != nil {
		return err
	}
	actor := events.NewActorID()
	res, err := s.Upgrader.Upgrade(stream.Context(), actor, r, first.GetStage())
	if err != nil {
		if st, ok := status.FromError(err); ok {
			return st.Err()
		}
		return status.Error(codes.FailedPrecondition, err.Error())
	}
	return stream.SendAndClose(&machine.UpgradeResponse{ActorId: actor, FromVersion: res.FromVersion, FromSlot: res.FromSlot,
		Version: res.Version, Slot: res.Slot, Rebooting: res.Rebooting})
}

// Rollback implements the Rollback RPC.
func (s *MachineServer) Rollback(context.Context, *machine.RollbackRequest) (*machine.RollbackResponse, error) {
	if s.Upgrader == nil {
		return nil, status.Errorf(codes.Unimplemented, "rollback is not supported on the %s platform: only a machine installed to a disk has A/B slots", s.Platform)
	}
	actor := events.NewActorID()
	res, err := s.Upgrader.Rollback(actor)
	if err != nil {
		return nil, status.Error(codes.FailedPrecondition, err.Error())
	}
	return &machine.RollbackResponse{ActorId: actor, Version: res.Version, Slot: res.Slot}, nil
}

// readChunks receives the first message of a client stream of chunks and returns it, with a
// reader of all the chunks from it on; a stream that ends before any message is an
// InvalidArgument error that says no what was sent.
func readChunks[M interface{ GetChunk() []byte }](recv func() (M, error), what string) (M, *chunkReader[M], error) {
	first, err := recv()
	if errors.Is(err, io.EOF) {
		return first, nil, status.Errorf(codes.InvalidArgument, "no %s was sent", what)
	}
	if err != nil {
		return first, nil, err
	}
	return first, &chunkReader[M]{next: recv, buf: first.GetChunk()}, nil
}

// chunkReader reads the chunks of a client stream (an upgrade artifact, an image archive) as
// one byte stream.
type chunkReader[M interface{ GetChunk() []byte }] struct {
	next func() (M, error)
	buf  []byte
	err  error
}

func (c *chunkReader[M]) Read(p []byte) (int, error) {
	for len(c.buf) == 0 {
		if c.err != nil {
			return 0, c.err
		}
		m, err := c.next()
		if err != nil {
			c.err = err // io.EOF when the client closed its side: the artifact's end
			continue
		}
		c.buf = m.GetChunk()
	}
	n := copy(p, c.buf)
	c.buf = c.buf[n:]
	return n, nil
}
