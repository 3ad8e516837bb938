package machineapi

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"testing"

	"google.golang.org/grpc/codes"

	"github.com/plinthos/plinth/pkg/api/machine"
)

// fakeRecoverer records the snapshot it was given; healthy makes it refuse without force.
type fakeRecoverer struct {
	healthy bool
	got     []byte
	force   bool
}

func (*fakeRecoverer) Bootstrap(context.Context) (string, error) { return "bootstrapped", nil }

func (f *fakeRecoverer) Recover(_ context.Context, path string, force bool) (string, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return "", err
	}
	f.got, f.force = data, force
	if f.healthy && !force {
		return "", fmt.Errorf("%w: etcd answers on this node", ErrEtcdHealthy)
	}
	return "recovered", nil
}

// plainBootstrapper cannot recover.
type plainBootstrapper struct{}

func (plainBootstrapper) Bootstrap(context.Context) (string, error) { return "bootstrapped", nil }

func sendSnapshot(t *testing.T, e *env, force bool, chunks ...[]byte) (*machine.EtcdRecoverResponse, error) {
	t.Helper()
	stream, err := e.machine.EtcdRecover(e.admin())
	if err != nil {
		t.Fatal(err)
	}
	for i, c := range chunks {
		if err := stream.Send(&machine.EtcdRecoverRequest{Chunk: c, Force: force && i == 0}); err != nil {
			break
		}
	}
	return stream.CloseAndRecv()
}

func TestEtcdRecover(t *testing.T) {
	recoverDir = t.TempDir()
	f := &fakeRecoverer{healthy: true}
	e := newEnvWith(t, envOptions{bootstrapper: f})

	_, err := sendSnapshot(t, e, false, []byte("snap"), []byte("shot"))
	wantCode(t, err, codes.FailedPrecondition, "etcd answers on this node")
	resp, err := sendSnapshot(t, e, true, []byte("snap"), []byte("shot"))
	if err != nil {
		t.Fatal(err)
	}
	if resp.Message != "recovered" || !bytes.Equal(f.got, []byte("snapshot")) || !f.force {
		t.Errorf("response %q, node got %q force %v", resp.Message, f.got, f.force)
	}
	if entries, _ := os.ReadDir(recoverDir); len(entries) != 0 {
		t.Errorf("the received snapshot was left on the node: %v", entries)
	}
	_, err = sendSnapshot(t, e, true, []byte{})
	wantCode(t, err, codes.InvalidArgument, "the snapshot is empty")

	e = newEnvWith(t, envOptions{bootstrapper: plainBootstrapper{}})
	_, err = sendSnapshot(t, e, true, []byte("x"))
	wantCode(t, err, codes.FailedPrecondition, "runs no etcd")
}
