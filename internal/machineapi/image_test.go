package machineapi

import (
	"bytes"
	"context"
	"errors"
	"io"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/plinthos/plinth/pkg/api/machine"
)

// fakeContainerd records the archive it was sent.
type fakeContainerd struct {
	got  []byte
	fail error
}

func (*fakeContainerd) Containers(context.Context, bool) ([]*machine.Container, error) {
	return nil, nil
}

func (*fakeContainerd) Stats(context.Context, bool) ([]*machine.ContainerStats, error) {
	return nil, nil
}

func (*fakeContainerd) Images(context.Context) ([]*machine.Image, error) {
	return []*machine.Image{{Name: "plinth.local/pause:3.10", Digest: "sha256:aa", SizeBytes: 1}}, nil
}

func (f *fakeContainerd) Import(_ context.Context, r io.Reader) ([]*machine.Image, error) {
	b, err := io.ReadAll(r)
	if err != nil {
		return nil, err
	}
	f.got = b
	if f.fail != nil {
		return nil, f.fail
	}
	return []*machine.Image{{Name: "e2e.local/x:1", Digest: "sha256:bb"}}, nil
}

func (f *fakeContainerd) Remove(_ context.Context, names []string) ([]*machine.Image, error) {
	if f.fail != nil {
		return nil, f.fail
	}
	var images []*machine.Image
	for _, n := range names {
		images = append(images, &machine.Image{Name: n, Digest: "sha256:cc"})
	}
	return images, nil
}

func sendImage(t *testing.T, e *env, chunks ...[]byte) (*machine.ImageImportResponse, error) {
	t.Helper()
	stream, err := e.machine.ImageImport(e.operator())
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range chunks {
		if err := stream.Send(&machine.ImageImportRequest{Chunk: c}); err != nil {
			break // the status comes with CloseAndRecv
		}
	}
	return stream.CloseAndRecv()
}

func TestImageImportStreamsTheArchive(t *testing.T) {
	f := &fakeContainerd{}
	e := newEnvWith(t, envOptions{containerd: f})
	chunks := [][]byte{[]byte("tar "), {}, bytes.Repeat([]byte("y"), 3<<20)}
	resp, err := sendImage(t, e, chunks...)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(f.got, bytes.Join(chunks, nil)) {
		t.Errorf("containerd got %d bytes, want %d", len(f.got), len(bytes.Join(chunks, nil)))
	}
	if len(resp.Images) != 1 || resp.Images[0].Name != "e2e.local/x:1" {
		t.Errorf("response %v", resp)
	}
	list, err := e.machine.ImageList(e.reader(), &machine.ImageListRequest{})
	if err != nil || len(list.Images) != 1 {
		t.Errorf("image list: %v %v", list, err)
	}
}

func TestImageImportRefused(t *testing.T) {
	e := newEnv(t) // no containerd
	_, err := sendImage(t, e, []byte("x"))
	wantCode(t, err, codes.FailedPrecondition, "runs no containerd")

	e = newEnvWith(t, envOptions{containerd: &fakeContainerd{fail: errors.New("not an image archive: a tar without manifest.json")}})
	_, err = sendImage(t, e, []byte("x"))
	wantCode(t, err, codes.InvalidArgument, "not an image archive")
	_, err = sendImage(t, e)
	wantCode(t, err, codes.InvalidArgument, "no image archive was sent")
}

func TestImageRemove(t *testing.T) {
	e := newEnvWith(t, envOptions{containerd: &fakeContainerd{}})
	resp, err := e.machine.ImageRemove(e.operator(), &machine.ImageRemoveRequest{Names: []string{"docker.io/library/x:1"}})
	if err != nil {
		t.Fatal(err)
	}
	if len(resp.Images) != 1 || resp.Images[0].Name != "docker.io/library/x:1" {
		t.Errorf("response %v", resp)
	}

	// The node's refusal keeps its code; another failure is an internal one.
	e = newEnvWith(t, envOptions{containerd: &fakeContainerd{fail: status.Error(codes.NotFound, "the node holds no image x")}})
	_, err = e.machine.ImageRemove(e.operator(), &machine.ImageRemoveRequest{Names: []string{"x"}})
	wantCode(t, err, codes.NotFound, "holds no image x")
	e = newEnvWith(t, envOptions{containerd: &fakeContainerd{fail: errors.New("ctr: exit status 1")}})
	_, err = e.machine.ImageRemove(e.operator(), &machine.ImageRemoveRequest{Names: []string{"x"}})
	wantCode(t, err, codes.Internal, "exit status 1")
}
