package machineapi

import (
	"bytes"
	"context"
	"errors"
	"io"
	"testing"

	"google.golang.org/grpc/codes"

	"github.com/plinthos/plinth/pkg/api/machine"
)

// fakeUpgrader records what it was sent.
type fakeUpgrader struct {
	got    []byte
	stage  bool
	fail   error
	rolled bool
}

func (f *fakeUpgrader) Upgrade(_ context.Context, _ string, r io.Reader, stage bool) (UpgradeResult, error) {
	b, err := io.ReadAll(r)
	if err != nil {
		return UpgradeResult{}, err
	}
	f.got, f.stage = b, stage
	if f.fail != nil {
		return UpgradeResult{}, f.fail
	}
	return UpgradeResult{FromVersion: "v1", FromSlot: "A", Version: "v2", Slot: "B", Rebooting: !stage}, nil
}

func (f *fakeUpgrader) Rollback(string) (UpgradeResult, error) {
	f.rolled = true
	return UpgradeResult{Version: "v1", Slot: "A", Rebooting: true}, nil
}

func sendUpgrade(t *testing.T, e *env, stage bool, chunks ...[]byte) (*machine.UpgradeResponse, error) {
	t.Helper()
	stream, err := e.machine.Upgrade(e.admin())
	if err != nil {
		t.Fatal(err)
	}
	for i, c := range chunks {
		if err := stream.Send(&machine.UpgradeRequest{Chunk: c, Stage: stage && i == 0}); err != nil {
			break // the status comes with CloseAndRecv
		}
	}
	return stream.CloseAndRecv()
}

func TestUpgradeStreamsTheArtifact(t *testing.T) {
	f := &fakeUpgrader{}
	e := newEnvWith(t, envOptions{upgrader: f})
	chunks := [][]byte{[]byte("first "), {}, []byte("second "), bytes.Repeat([]byte("x"), 3<<20)}
	resp, err := sendUpgrade(t, e, true, chunks...)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(f.got, bytes.Join(chunks, nil)) || !f.stage {
		t.Errorf("upgrader got %d bytes (stage %v), want %d", len(f.got), f.stage, len(bytes.Join(chunks, nil)))
	}
	if resp.Version != "v2" || resp.Slot != "B" || resp.Rebooting || resp.ActorId == "" {
		t.Errorf("response %v", resp)
	}
	rb, err := e.machine.Rollback(e.admin(), &machine.RollbackRequest{})
	if err != nil || !f.rolled || rb.Slot != "A" {
		t.Errorf("rollback: %v %v", rb, err)
	}
}

func TestUpgradeRefused(t *testing.T) {
	e := newEnv(t) // no slots: the docker platform of the tests
	_, err := sendUpgrade(t, e, false, []byte("x"))
	wantCode(t, err, codes.Unimplemented, "only a machine installed to a disk")
	_, err = e.machine.Rollback(e.admin(), &machine.RollbackRequest{})
	wantCode(t, err, codes.Unimplemented, "A/B slots")

	f := &fakeUpgrader{fail: errors.New("the artifact is corrupt")}
	e = newEnvWith(t, envOptions{upgrader: f})
	_, err = sendUpgrade(t, e, false, []byte("x"))
	wantCode(t, err, codes.FailedPrecondition, "the artifact is corrupt")
	_, err = sendUpgrade(t, e, false)
	wantCode(t, err, codes.InvalidArgument, "no upgrade artifact")
}
