package client

import (
	"errors"
	"strings"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

func TestDescribe(t *testing.T) {
	plain := errors.New("dial: no route")
	if got := Describe(plain); got != plain {
		t.Errorf("Describe of a non-gRPC error: %v, want it unchanged", got)
	}
	for _, tc := range []struct {
		err  error
		want string
	}{
		{status.Error(codes.PermissionDenied, "role reader may not reboot"), "permission denied: role reader may not reboot (ask an admin"},
		{status.Error(codes.Unavailable, "connection refused"), "node unreachable: connection refused (is the node up"},
		{status.Error(codes.Unauthenticated, "bad certificate"), "not authenticated: bad certificate"},
		{status.Error(codes.Internal, "etcd would not start"), "etcd would not start"},
	} {
		if got := Describe(tc.err); got == nil || !strings.HasPrefix(got.Error(), tc.want) {
			t.Errorf("Describe(%v) = %v, want it to start with %q", tc.err, got, tc.want)
		}
	}
}
