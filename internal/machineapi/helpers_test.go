package machineapi

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"slices"
	"strings"
	"testing"
	"testing/iotest"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/plinthos/plinth/internal/fileapi"
	"github.com/plinthos/plinth/pkg/role"
)

// sink records what a send function is given, copying each message.
type sink struct {
	msgs [][]byte
	fail int // fail the send with this index (1-based); 0 never
}

var errSend = errors.New("send failed")

func (s *sink) send(b []byte) error {
	if s.fail > 0 && len(s.msgs)+1 == s.fail {
		return errSend
	}
	s.msgs = append(s.msgs, bytes.Clone(b))
	return nil
}

func (s *sink) data() []byte { return bytes.Join(s.msgs, nil) }

func TestSendLines(t *testing.T) {
	var s sink
	if err := sendLines(nil, s.send); err != nil || len(s.msgs) != 0 {
		t.Fatalf("no lines: %d messages, %v", len(s.msgs), err)
	}

	// Lines that fill several chunks: each message holds whole lines and at most logChunk bytes.
	var lines []string
	for i := range 300 {
		lines = append(lines, fmt.Sprintf("%04d %s", i, strings.Repeat("y", 1000)))
	}
	s = sink{}
	if err := sendLines(lines, s.send); err != nil {
		t.Fatal(err)
	}
	if want := strings.Join(lines, "\n") + "\n"; string(s.data()) != want {
		t.Error("reassembled lines differ")
	}
	if len(s.msgs) < 4 {
		t.Errorf("%d messages for %d bytes", len(s.msgs), len(s.data()))
	}
	for i, m := range s.msgs {
		if len(m) > logChunk || !bytes.HasSuffix(m, []byte("\n")) {
			t.Errorf("message %d: %d bytes, ends with %q", i, len(m), m[len(m)-1:])
		}
	}

	// An empty line is still a line.
	s = sink{}
	if err := sendLines([]string{"", "a", ""}, s.send); err != nil || string(s.data()) != "\na\n\n" {
		t.Errorf("empty lines = %q, %v", s.data(), err)
	}

	// A send error stops at once.
	s = sink{fail: 2}
	if err := sendLines(lines, s.send); !errors.Is(err, errSend) || len(s.msgs) != 1 {
		t.Errorf("send error: %v after %d messages", err, len(s.msgs))
	}
}

func TestStreamLines(t *testing.T) {
	// Lines already waiting are batched into one message; the end of the channel ends it.
	ch := make(chan string, 10)
	for _, l := range []string{"a", "b", "c"} {
		ch <- l
	}
	close(ch)
	var s sink
	if err := streamLines(context.Background(), ch, s.send); err != nil {
		t.Fatal(err)
	}
	if len(s.msgs) != 1 || string(s.msgs[0]) != "a\nb\nc\n" {
		t.Errorf("messages = %q", s.msgs)
	}

	// A cancelled context ends it without an error.
	ctx, cancel := context.WithCancel(context.Background())
	open := make(chan string)
	done := make(chan error, 1)
	go func() { done <- streamLines(ctx, open, (&sink{}).send) }()
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("after cancel: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("streamLines did not return after cancel")
	}

	// More than a batch waiting: every line arrives, in order.
	many := make(chan string, 3000)
	var want []string
	for i := range 3000 {
		l := fmt.Sprint(i)
		many <- l
		want = append(want, l)
	}
	close(many)
	s = sink{}
	if err := streamLines(context.Background(), many, s.send); err != nil {
		t.Fatal(err)
	}
	if got := linesOf(s.data()); !slices.Equal(got, want) {
		t.Errorf("%d lines, want %d in order", len(got), len(want))
	}
	if len(s.msgs) < 3 {
		t.Errorf("3000 lines in %d messages: a batch holds at most 1024", len(s.msgs))
	}

	// A send error is returned.
	errCh := make(chan string, 1)
	errCh <- "x"
	if err := streamLines(context.Background(), errCh, (&sink{fail: 1}).send); !errors.Is(err, errSend) {
		t.Errorf("send error: %v", err)
	}
}

func TestSendReader(t *testing.T) {
	data := bytes.Repeat([]byte("0123456789abcdef"), 3*logChunk/16+5)
	var s sink
	// A reader that hands out one byte at a time still makes full chunks.
	if err := sendReader(iotest.OneByteReader(bytes.NewReader(data)), s.send); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(s.data(), data) || len(s.msgs) != 4 {
		t.Errorf("%d messages, data equal: %v", len(s.msgs), bytes.Equal(s.data(), data))
	}
	for i, m := range s.msgs[:3] {
		if len(m) != logChunk {
			t.Errorf("message %d has %d bytes", i, len(m))
		}
	}

	s = sink{}
	if err := sendReader(strings.NewReader(""), s.send); err != nil || len(s.msgs) != 0 {
		t.Errorf("empty reader: %d messages, %v", len(s.msgs), err)
	}
	s = sink{}
	err := sendReader(iotest.TimeoutReader(bytes.NewReader(data)), s.send)
	if status.Code(err) != codes.Internal || len(s.msgs) != 1 {
		t.Errorf("read error: %v after %d messages", err, len(s.msgs))
	}
	s = sink{fail: 1}
	if err := sendReader(bytes.NewReader(data), s.send); !errors.Is(err, errSend) {
		t.Errorf("send error: %v", err)
	}
}

func TestChunkWriter(t *testing.T) {
	var s sink
	var sent [][]byte
	w := chunkWriter{send: func(b []byte) error {
		sent = append(sent, b)
		return s.send(b)
	}}
	data := make([]byte, 2*logChunk+7)
	for i := range data {
		data[i] = byte(i)
	}
	n, err := w.Write(data)
	if err != nil || n != len(data) {
		t.Fatalf("Write = %d, %v", n, err)
	}
	if len(s.msgs) != 3 || len(s.msgs[0]) != logChunk || len(s.msgs[2]) != 7 || !bytes.Equal(s.data(), data) {
		t.Errorf("chunks of %d bytes", len(data))
	}
	// The messages do not alias the caller's buffer, which tar reuses.
	clear(data)
	if !bytes.Equal(bytes.Join(sent, nil), s.data()) {
		t.Error("a sent chunk aliases the written buffer")
	}

	if n, err := w.Write(nil); n != 0 || err != nil {
		t.Errorf("empty write = %d, %v", n, err)
	}
	s = sink{fail: 2}
	n, err = w.Write(make([]byte, 3*logChunk))
	if !errors.Is(err, errSend) || n != logChunk {
		t.Errorf("failed write = %d, %v; want %d written", n, err, logChunk)
	}
}

func TestCallerRoles(t *testing.T) {
	for _, tc := range []struct {
		md    metadata.MD
		roles []string
		admin bool
	}{
		{nil, nil, false},
		{metadata.Pairs(role.MetadataKey, role.Reader), []string{role.Reader}, false},
		{metadata.Pairs(role.MetadataKey, role.Admin), []string{role.Admin}, true},
		{metadata.Pairs(role.MetadataKey, " os:reader , ,os:admin"), []string{role.Reader, role.Admin}, true},
		{metadata.Pairs(role.MetadataKey, role.Reader, role.MetadataKey, role.Admin), []string{role.Reader, role.Admin}, true},
		{metadata.Pairs("X-Plinth-Roles", role.Admin), []string{role.Admin}, true},
		{metadata.Pairs("x-other", role.Admin), nil, false},
		{metadata.Pairs(role.MetadataKey, "os:administrator"), []string{"os:administrator"}, false},
	} {
		ctx := context.Background()
		if tc.md != nil {
			ctx = metadata.NewIncomingContext(ctx, tc.md)
		}
		if got := callerRoles(ctx); !slices.Equal(got, tc.roles) {
			t.Errorf("callerRoles(%v) = %q, want %q", tc.md, got, tc.roles)
		}
		if got := isAdmin(ctx); got != tc.admin {
			t.Errorf("isAdmin(%v) = %v", tc.md, got)
		}
	}
	// Roles sent by the server side of a call are not the caller's.
	out := metadata.NewOutgoingContext(context.Background(), metadata.Pairs(role.MetadataKey, role.Admin))
	if isAdmin(out) {
		t.Error("outgoing metadata counted as the caller's roles")
	}
}

func TestFileError(t *testing.T) {
	pe := func(err error) error { return &fs.PathError{Op: "read", Path: "/x", Err: err} }
	for _, tc := range []struct {
		err  error
		want codes.Code
	}{
		{pe(fileapi.ErrRestricted), codes.PermissionDenied},
		{pe(fs.ErrNotExist), codes.NotFound},
		{pe(os.ErrNotExist), codes.NotFound},
		{pe(fileapi.ErrNotAbsolute), codes.InvalidArgument},
		{pe(fileapi.ErrNotRegular), codes.InvalidArgument},
		{pe(fileapi.ErrOutsideRoot), codes.InvalidArgument},
		{context.Canceled, codes.Canceled},
		{status.Error(codes.Unavailable, "transport"), codes.Unavailable},
		{errors.New("disk on fire"), codes.Internal},
	} {
		if got := status.Code(fileError(tc.err)); got != tc.want {
			t.Errorf("fileError(%v) = %s, want %s", tc.err, got, tc.want)
		}
	}
	if fileError(nil) != nil {
		t.Error("fileError(nil) is not nil")
	}
}
