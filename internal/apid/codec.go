package apid

import (
	"google.golang.org/grpc/mem"
)

// frame is one gRPC message passed through without decoding.
type frame struct{ payload []byte }

// rawCodec moves messages as opaque bytes, so apid forwards every RPC of every service
// without knowing its types.
type rawCodec struct{}

func (rawCodec) Marshal(v any) (mem.BufferSlice, error) {
	return mem.BufferSlice{mem.SliceBuffer(v.(*frame).payload)}, nil
}

func (rawCodec) Unmarshal(data mem.BufferSlice, v any) error {
	v.(*frame).payload = data.Materialize()
	return nil
}

// Name is "proto" so that the content-type on the wire stays application/grpc+proto.
func (rawCodec) Name() string { return "proto" }
