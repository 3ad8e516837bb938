package machineapi

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"io"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"syscall"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/stats"

	"github.com/plinthos/plinth/pkg/api/machine"
)

func TestProcesses(t *testing.T) {
	e := newEnv(t)
	resp, err := e.machine.Processes(e.reader(), &machine.ProcessesRequest{})
	if err != nil {
		t.Fatal(err)
	}
	var self *machine.Process
	for _, p := range resp.Processes {
		if p.Pid <= 0 {
			t.Errorf("process with pid %d", p.Pid)
		}
		if int(p.Pid) == os.Getpid() {
			self = p
		}
	}
	if self == nil {
		t.Fatalf("the test process (pid %d) is not among %d processes", os.Getpid(), len(resp.Processes))
	}
	if self.Ppid != int32(os.Getppid()) || self.Threads < 1 || self.ResidentBytes == 0 || self.VirtualBytes < self.ResidentBytes || self.Command == "" {
		t.Errorf("the test process = %v", self)
	}
}

func TestMemory(t *testing.T) {
	e := newEnv(t)
	m, err := e.machine.Memory(e.reader(), &machine.MemoryRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if m.TotalBytes == 0 || m.FreeBytes > m.TotalBytes || m.AvailableBytes > m.TotalBytes || m.SwapFreeBytes > m.SwapTotalBytes {
		t.Errorf("memory = %v", m)
	}
}

func TestMounts(t *testing.T) {
	e := newEnv(t)
	resp, err := e.machine.Mounts(e.reader(), &machine.MountsRequest{})
	if err != nil {
		t.Fatal(err)
	}
	var root *machine.Mount
	for _, m := range resp.Mounts {
		if m.Target == "" || m.Filesystem == "" {
			t.Errorf("mount = %v", m)
		}
		if m.Target == "/" {
			root = m
		}
	}
	if root == nil {
		t.Fatalf("no mount of / among %v", resp.Mounts)
	}
	if root.SizeBytes == 0 || root.AvailableBytes > root.SizeBytes {
		t.Errorf("mount of / = %v", root)
	}
}

func TestDmesg(t *testing.T) {
	e := newEnv(t)
	for _, tc := range []struct {
		tail int32
		want []string
	}{
		{0, kmsgLines},
		{-1, kmsgLines},
		{2, kmsgLines[1:]},
		{1, kmsgLines[2:]},
		{10, kmsgLines},
	} {
		stream, err := e.machine.Dmesg(e.reader(), &machine.DmesgRequest{TailLines: tc.tail})
		if err != nil {
			t.Fatal(err)
		}
		msgs, err := recvAll(stream.Recv)
		if err != nil {
			t.Fatalf("tail %d: %v", tc.tail, err)
		}
		if got := linesOf(dataOf(msgs)); !slices.Equal(got, tc.want) {
			t.Errorf("tail %d: %q, want %q", tc.tail, got, tc.want)
		}
	}
}

func TestDmesgFollow(t *testing.T) {
	e := newEnv(t)
	stream, err := e.machine.Dmesg(e.reader(), &machine.DmesgRequest{Follow: true, TailLines: 1})
	if err != nil {
		t.Fatal(err)
	}
	m, err := stream.Recv()
	if err != nil {
		t.Fatal(err)
	}
	if got := linesOf(m.Data); !slices.Equal(got, kmsgLines[2:]) {
		t.Fatalf("first message = %q", got)
	}
	f, err := os.OpenFile(e.kmsgPath, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteString("3,4,4000000,-;late record\n"); err != nil {
		t.Fatal(err)
	}
	f.Close()
	m, err = stream.Recv()
	if err != nil {
		t.Fatal(err)
	}
	if got := linesOf(m.Data); !slices.Equal(got, []string{"[    4.000000] late record"}) {
		t.Errorf("followed = %q", got)
	}
}

func TestDmesgUnreadable(t *testing.T) {
	e := newEnv(t)
	if err := os.Remove(e.kmsgPath); err != nil {
		t.Fatal(err)
	}
	stream, err := e.machine.Dmesg(e.reader(), &machine.DmesgRequest{})
	if err == nil {
		_, err = recvAll(stream.Recv)
	}
	wantCode(t, err, codes.FailedPrecondition, "kernel log is not readable")
}

// list lists through the API and returns the entries by client path, and their names in order.
func (e *env) list(ctx context.Context, req *machine.ListRequest) (map[string]*machine.ListResponse, []string, error) {
	stream, err := e.machine.List(ctx, req)
	if err != nil {
		return nil, nil, err
	}
	msgs, err := recvAll(stream.Recv)
	if err != nil {
		return nil, nil, err
	}
	byName := map[string]*machine.ListResponse{}
	var names []string
	for _, m := range msgs {
		byName[m.Name] = m
		names = append(names, m.Name)
	}
	return byName, names, nil
}

func TestList(t *testing.T) {
	e := newEnv(t)
	// Admin, one level.
	byName, names, err := e.list(e.admin(), &machine.ListRequest{Root: "/"})
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"/etc", "/secret", "/var"}; !slices.Equal(names, want) {
		t.Fatalf("names = %v, want %v", names, want)
	}
	if s := byName["/secret"]; !s.IsDir || s.Error != "" || s.RelativeName != "secret" || s.Modified == nil {
		t.Errorf("/secret for an admin = %v", s)
	}
	// The default root is /.
	if _, names2, err := e.list(e.admin(), &machine.ListRequest{}); err != nil || !slices.Equal(names2, names) {
		t.Errorf("list without root = %v, %v", names2, err)
	}

	// Admin, recursive.
	byName, names, err = e.list(e.admin(), &machine.ListRequest{Root: "/", Recurse: true})
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"/etc", "/etc/hostname", "/secret", "/secret/token", "/var", "/var/log", "/var/log/messages"}; !slices.Equal(names, want) {
		t.Fatalf("recursive names = %v, want %v", names, want)
	}
	fi, err := os.Lstat(filepath.Join(e.filesRoot, "var", "log", "messages"))
	if err != nil {
		t.Fatal(err)
	}
	if m := byName["/var/log/messages"]; m.Size != 6 || m.IsDir || fs.FileMode(m.Mode) != fi.Mode() || !m.Modified.AsTime().Equal(fi.ModTime()) ||
		m.RelativeName != "var/log/messages" {
		t.Errorf("/var/log/messages = %v, want mode %v", m, fi.Mode())
	}
	// Depth-limited.
	_, names, err = e.list(e.admin(), &machine.ListRequest{Root: "/var", Recurse: true, RecursionDepth: 1})
	if err != nil || !slices.Equal(names, []string{"/var/log"}) {
		t.Errorf("depth 1 under /var = %v, %v", names, err)
	}
	// A file lists itself.
	byName, names, err = e.list(e.admin(), &machine.ListRequest{Root: "/etc/hostname"})
	if err != nil || !slices.Equal(names, []string{"/etc/hostname"}) || byName["/etc/hostname"].RelativeName != "." {
		t.Errorf("list of a file = %v, %v", names, err)
	}

	// Reader: the allowed trees only; anything else is refused with what may be read.
	_, names, err = e.list(e.reader(), &machine.ListRequest{Root: "/var/log", Recurse: true})
	if err != nil || !slices.Equal(names, []string{"/var/log/messages"}) {
		t.Errorf("/var/log for a reader = %v, %v", names, err)
	}
	for _, root := range []string{"/", "", "/var", "/etc", "/secret"} {
		_, _, err = e.list(e.reader(), &machine.ListRequest{Root: root, Recurse: true})
		wantCode(t, err, codes.PermissionDenied, "restricted: needs os:admin; other roles may read only /etc/hostname, /var/log")
	}
	// Without roles at all the caller is not admin either.
	_, _, err = e.list(testCtx(t), &machine.ListRequest{Root: "/secret"})
	wantCode(t, err, codes.PermissionDenied, "restricted")

	_, _, err = e.list(e.admin(), &machine.ListRequest{Root: "/nope"})
	wantCode(t, err, codes.NotFound, "")
	_, _, err = e.list(e.admin(), &machine.ListRequest{Root: "etc"})
	wantCode(t, err, codes.InvalidArgument, "not absolute")
}

// read reads a file through the API and returns its messages.
func (e *env) read(ctx context.Context, path string) ([]*machine.ReadResponse, error) {
	stream, err := e.machine.Read(ctx, &machine.ReadRequest{Path: path})
	if err != nil {
		return nil, err
	}
	return recvAll(stream.Recv)
}

func TestRead(t *testing.T) {
	e := newEnv(t)
	for _, ctx := range []context.Context{e.admin(), e.reader()} {
		msgs, err := e.read(ctx, "/etc/hostname")
		if err != nil {
			t.Fatal(err)
		}
		if got := string(dataOf(msgs)); got != testHostname+"\n" {
			t.Errorf("/etc/hostname = %q", got)
		}
	}
	msgs, err := e.read(e.admin(), "/secret/token")
	if err != nil {
		t.Fatal(err)
	}
	if got := string(dataOf(msgs)); got != "s3cr3t" {
		t.Errorf("/secret/token for an admin = %q", got)
	}
	// An empty file sends nothing.
	mustWrite(t, filepath.Join(e.filesRoot, "var", "log", "empty"), "")
	if msgs, err := e.read(e.reader(), "/var/log/empty"); err != nil || len(msgs) != 0 {
		t.Errorf("empty file = %v, %v", msgs, err)
	}
	// A link is followed inside the root, from one allowed tree to another.
	if err := os.Symlink("/etc/hostname", filepath.Join(e.filesRoot, "var", "log", "hn")); err != nil {
		t.Fatal(err)
	}
	if msgs, err := e.read(e.reader(), "/var/log/hn"); err != nil || string(dataOf(msgs)) != testHostname+"\n" {
		t.Errorf("through a link: %q, %v", dataOf(msgs), err)
	}
	// A link out of the allowed trees does not open what it leads to to a reader,
	// whether its own name is allowed or not.
	if err := os.Symlink("../secret/token", filepath.Join(e.filesRoot, "etc", "sneaky")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("../../secret/token", filepath.Join(e.filesRoot, "var", "log", "sneaky")); err != nil {
		t.Fatal(err)
	}

	for _, tc := range []struct {
		ctx  context.Context
		path string
		code codes.Code
		msg  string
	}{
		{e.reader(), "/secret/token", codes.PermissionDenied, "restricted: needs os:admin"},
		{e.reader(), "/secret/nope", codes.PermissionDenied, "restricted"},
		{e.reader(), "/etc/sneaky", codes.PermissionDenied, "restricted"},
		{e.reader(), "/var/log/sneaky", codes.PermissionDenied, "read /var/log/sneaky: restricted: needs os:admin"},
		{e.reader(), "/var/hn", codes.PermissionDenied, "restricted"},
		{e.reader(), "/var/log/nope", codes.NotFound, ""},
		{e.admin(), "/etc", codes.InvalidArgument, "not a regular file"},
		{e.admin(), "/", codes.InvalidArgument, "not a regular file"},
		{e.admin(), "/nope", codes.NotFound, ""},
		{e.admin(), "etc/hostname", codes.InvalidArgument, "not absolute"},
		{e.admin(), "", codes.InvalidArgument, "not absolute"},
	} {
		_, err := e.read(tc.ctx, tc.path)
		wantCode(t, err, tc.code, tc.msg)
	}
}

func TestReadFifoIsInvalidArgument(t *testing.T) {
	e := newEnv(t)
	if err := syscall.Mkfifo(filepath.Join(e.filesRoot, "fifo"), 0o644); err != nil {
		t.Skip("mkfifo:", err)
	}
	_, err := e.read(e.admin(), "/fifo")
	wantCode(t, err, codes.InvalidArgument, "")
	stream, err := e.machine.Copy(e.admin(), &machine.CopyRequest{RootPath: "/fifo"})
	if err == nil {
		_, err = recvAll(stream.Recv)
	}
	wantCode(t, err, codes.InvalidArgument, "")
}

// bigFile writes a file of a little more than 3 MiB of pseudo-random bytes under the
// root and returns its content.
func (e *env) bigFile(name string) []byte {
	data := make([]byte, 3<<20+12345)
	r := rand.NewChaCha8([32]byte{1, 2, 3})
	r.Read(data)
	if err := os.WriteFile(filepath.Join(e.filesRoot, name), data, 0o600); err != nil {
		e.t.Fatal(err)
	}
	return data
}

func TestReadLargeFileIsChunked(t *testing.T) {
	e := newEnv(t)
	want := e.bigFile("var/log/big.bin")
	msgs, err := e.read(e.reader(), "/var/log/big.bin")
	if err != nil {
		t.Fatal(err)
	}
	if len(msgs) < len(want)/(64<<10) {
		t.Errorf("%d messages for %d bytes", len(msgs), len(want))
	}
	for i, m := range msgs {
		if len(m.Data) > 64<<10 || len(m.Data) == 0 {
			t.Errorf("message %d has %d bytes", i, len(m.Data))
		}
	}
	if got := dataOf(msgs); !bytes.Equal(got, want) {
		t.Errorf("reassembled %d bytes differ from the %d of the file", len(got), len(want))
	}
}

// payloadRecorder is a stats handler that keeps the messages the server sends, as a
// tracing library may, to look at them later.
type payloadRecorder struct {
	mu   sync.Mutex
	sent []*machine.ReadResponse
}

func (r *payloadRecorder) TagRPC(ctx context.Context, _ *stats.RPCTagInfo) context.Context {
	return ctx
}
func (r *payloadRecorder) TagConn(ctx context.Context, _ *stats.ConnTagInfo) context.Context {
	return ctx
}
func (r *payloadRecorder) HandleConn(context.Context, stats.ConnStats) {}
func (r *payloadRecorder) HandleRPC(_ context.Context, s stats.RPCStats) {
	if out, ok := s.(*stats.OutPayload); ok {
		if m, ok := out.Payload.(*machine.ReadResponse); ok {
			r.mu.Lock()
			r.sent = append(r.sent, m)
			r.mu.Unlock()
		}
	}
}

// TestReadDoesNotModifySentMessages checks that Read leaves the messages it has sent
// alone: grpc documents that a message must not be modified after SendMsg, because
// stats handlers and tracing may use it lazily.
func TestReadDoesNotModifySentMessages(t *testing.T) {
	rec := &payloadRecorder{}
	e := newEnvWith(t, envOptions{serverOpts: []grpc.ServerOption{grpc.StatsHandler(rec)}})
	want := e.bigFile("var/log/big.bin")
	msgs, err := e.read(e.reader(), "/var/log/big.bin")
	if err != nil {
		t.Fatal(err)
	}
	if got := dataOf(msgs); !bytes.Equal(got, want) {
		t.Fatal("the client received other data than the file's")
	}
	rec.mu.Lock()
	defer rec.mu.Unlock()
	if got := dataOf(rec.sent); !bytes.Equal(got, want) {
		t.Errorf("the messages the server sent no longer hold the file's data (%d messages)", len(rec.sent))
	}
}

// untar reads a tar archive into name -> header and content.
func untar(t *testing.T, data []byte) (map[string]*tar.Header, map[string][]byte, []string) {
	t.Helper()
	tr := tar.NewReader(bytes.NewReader(data))
	hdrs := map[string]*tar.Header{}
	contents := map[string][]byte{}
	var names []string
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("invalid tar after %v: %v", names, err)
		}
		b, err := io.ReadAll(tr)
		if err != nil {
			t.Fatalf("tar entry %s: %v", h.Name, err)
		}
		hdrs[h.Name], contents[h.Name] = h, b
		names = append(names, h.Name)
	}
	return hdrs, contents, names
}

func (e *env) copyTar(ctx context.Context, path string) ([]*machine.CopyResponse, error) {
	stream, err := e.machine.Copy(ctx, &machine.CopyRequest{RootPath: path})
	if err != nil {
		return nil, err
	}
	return recvAll(stream.Recv)
}

func TestCopy(t *testing.T) {
	e := newEnv(t)
	msgs, err := e.copyTar(e.admin(), "/var")
	if err != nil {
		t.Fatal(err)
	}
	hdrs, contents, names := untar(t, dataOf(msgs))
	if want := []string{"var/", "var/log/", "var/log/messages"}; !slices.Equal(names, want) {
		t.Errorf("names = %v, want %v", names, want)
	}
	fi, err := os.Lstat(filepath.Join(e.filesRoot, "var", "log", "messages"))
	if err != nil {
		t.Fatal(err)
	}
	if h := hdrs["var/log/messages"]; h.Typeflag != tar.TypeReg || h.Size != 6 || fs.FileMode(h.Mode).Perm() != fi.Mode().Perm() {
		t.Errorf("header = %+v", h)
	}
	if got := string(contents["var/log/messages"]); got != "m1\nm2\n" {
		t.Errorf("content = %q", got)
	}

	// A single file.
	msgs, err = e.copyTar(e.reader(), "/etc/hostname")
	if err != nil {
		t.Fatal(err)
	}
	_, contents, names = untar(t, dataOf(msgs))
	if !slices.Equal(names, []string{"hostname"}) || string(contents["hostname"]) != testHostname+"\n" {
		t.Errorf("copy of a file = %v %q", names, contents)
	}

	// The whole tree: an admin gets the secrets, a reader does not.
	msgs, err = e.copyTar(e.admin(), "/")
	if err != nil {
		t.Fatal(err)
	}
	_, contents, names = untar(t, dataOf(msgs))
	if !slices.Contains(names, "secret/token") || string(contents["secret/token"]) != "s3cr3t" {
		t.Errorf("admin copy of / = %v", names)
	}
	msgs, err = e.copyTar(e.reader(), "/var/log")
	if err != nil {
		t.Fatal(err)
	}
	_, _, names = untar(t, dataOf(msgs))
	if want := []string{"log/", "log/messages"}; !slices.Equal(names, want) {
		t.Errorf("reader copy of /var/log = %v, want %v", names, want)
	}
	for _, root := range []string{"/", "/var", "/secret"} {
		_, err = e.copyTar(e.reader(), root)
		wantCode(t, err, codes.PermissionDenied, "restricted: needs os:admin; other roles may read only")
	}
	_, err = e.copyTar(e.admin(), "/nope")
	wantCode(t, err, codes.NotFound, "")
	_, err = e.copyTar(e.admin(), "var")
	wantCode(t, err, codes.InvalidArgument, "not absolute")
}

func TestCopyLargeFileIsChunked(t *testing.T) {
	e := newEnv(t)
	want := e.bigFile("big.bin")
	msgs, err := e.copyTar(e.admin(), "/big.bin")
	if err != nil {
		t.Fatal(err)
	}
	if len(msgs) < len(want)/(64<<10) {
		t.Errorf("%d messages for %d bytes", len(msgs), len(want))
	}
	for i, m := range msgs {
		if len(m.Data) > 64<<10 || len(m.Data) == 0 {
			t.Errorf("message %d has %d bytes", i, len(m.Data))
		}
	}
	hdrs, contents, names := untar(t, dataOf(msgs))
	if !slices.Equal(names, []string{"big.bin"}) || hdrs["big.bin"].Size != int64(len(want)) {
		t.Fatalf("archive = %v", names)
	}
	if !bytes.Equal(contents["big.bin"], want) {
		t.Error("the archived file differs from the original")
	}
}

// TestFileErrorsOfClientPathsAreNotInternal: a symbolic link loop is the client's path
// problem, not a server failure.
func TestFileErrorsOfClientPathsAreNotInternal(t *testing.T) {
	e := newEnv(t)
	if err := os.Symlink("loop", filepath.Join(e.filesRoot, "loop")); err != nil {
		t.Fatal(err)
	}
	_, err := e.read(e.admin(), "/loop")
	wantCode(t, err, codes.InvalidArgument, "too many levels of symbolic links")
}

func TestReadCancelled(t *testing.T) {
	e := newEnv(t)
	e.bigFile("big.bin")
	ctx, cancel := context.WithCancel(e.admin())
	stream, err := e.machine.Read(ctx, &machine.ReadRequest{Path: "/big.bin"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := stream.Recv(); err != nil {
		t.Fatal(err)
	}
	cancel()
	_, err = recvAll(stream.Recv)
	wantCode(t, err, codes.Canceled, "")
	// The server goes on serving.
	deadline, stop := context.WithTimeout(e.admin(), 5*time.Second)
	defer stop()
	if _, err := e.read(deadline, "/etc/hostname"); err != nil {
		t.Fatal(err)
	}
}
