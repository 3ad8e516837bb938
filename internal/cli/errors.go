package cli

import (
	"errors"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// describe turns a gRPC error into a message for people: the server's own message, with a
// hint for the failures users can fix.
func describe(err error) error {
	st, ok := status.FromError(err)
	if !ok {
		return err
	}
	switch st.Code() {
	case codes.PermissionDenied:
		return errors.New("permission denied: " + st.Message() + " (ask an admin for a client config with that role: plinthctl config new)")
	case codes.Unavailable:
		return errors.New("node unreachable: " + st.Message() + " (is the node up, and are the endpoints right? see plinthctl config info)")
	case codes.Unauthenticated:
		return errors.New("not authenticated: " + st.Message())
	default:
		return errors.New(st.Message())
	}
}
