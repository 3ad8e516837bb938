package client

import (
	"errors"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// Describe turns a gRPC error of the node API into a message for people: the node's own
// message, with a hint for the failures users can fix (a refusing, unreachable or
// unauthenticating node). An error that is not a gRPC status is returned as it is.
func Describe(err error) error {
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
