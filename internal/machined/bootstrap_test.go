package machined

import (
	"context"
	"crypto/x509"
	"fmt"
	"io"
	"net"
	"testing"
)

func TestNothingListens(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	_, refused := net.Dial("tcp", addr)
	for _, tc := range []struct {
		err  error
		want bool
	}{
		{refused, true},
		{fmt.Errorf("get: %w", io.EOF), true},
		{&net.DNSError{Err: "no such host", Name: "cp.example", IsNotFound: true}, true},
		{context.DeadlineExceeded, false},
		{x509.UnknownAuthorityError{}, false},
	} {
		if got := nothingListens(tc.err); got != tc.want {
			t.Errorf("nothingListens(%v) = %v, want %v", tc.err, got, tc.want)
		}
	}
}
