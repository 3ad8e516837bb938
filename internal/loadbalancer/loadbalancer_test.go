package loadbalancer

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// server is an upstream on loopback: it greets each connection with its name and a
// newline, then echoes until the client half-closes.
type server struct {
	name string
	addr string
	l    net.Listener
	wg   sync.WaitGroup
	mu   sync.Mutex
	cons []net.Conn
}

func startServer(t *testing.T, name, addr string) *server {
	t.Helper()
	l, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	s := &server{name: name, addr: l.Addr().String(), l: l}
	s.wg.Go(func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			s.mu.Lock()
			s.cons = append(s.cons, c)
			s.mu.Unlock()
			s.wg.Go(func() {
				defer c.Close()
				if _, err := io.WriteString(c, s.name+"\n"); err != nil {
					return
				}
				_, _ = io.Copy(c, c)
			})
		}
	})
	t.Cleanup(s.stop)
	return s
}

// stop closes the listener and every connection, and waits for the goroutines.
func (s *server) stop() {
	s.l.Close()
	s.mu.Lock()
	for _, c := range s.cons {
		c.Close()
	}
	s.cons = nil
	s.mu.Unlock()
	s.wg.Wait()
}

// startLB serves a load balancer of upstreams with quick health checks on a loopback
// port; the returned function stops it and returns Serve's error.
func startLB(t *testing.T, upstreams ...string) (*LoadBalancer, string, func() error) {
	t.Helper()
	return startLBWith(t, Config{Upstreams: upstreams, HealthTimeout: 200 * time.Millisecond})
}

// startLBWith is startLB with more of the configuration.
func startLBWith(t *testing.T, cfg Config) (*LoadBalancer, string, func() error) {
	t.Helper()
	cfg.HealthInterval = 20 * time.Millisecond
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.NewTextHandler(testWriter{t}, nil))
	}
	lb, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- lb.Serve(ctx, l) }()
	var once sync.Once
	var serveErr error
	stop := func() error {
		once.Do(func() {
			cancel()
			select {
			case serveErr = <-errc:
			case <-time.After(5 * time.Second):
				t.Fatal("Serve did not return after its context was cancelled")
			}
		})
		return serveErr
	}
	t.Cleanup(func() { _ = stop() })
	return lb, l.Addr().String(), stop
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// roundTrip connects through the load balancer, checks the echo and the end of the
// stream after a half-close, and returns the name of the upstream that answered.
func roundTrip(t *testing.T, addr string) string {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 2*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	r := bufio.NewReader(c)
	name, err := r.ReadString('\n')
	if err != nil {
		t.Fatalf("read the greeting: %v", err)
	}
	if _, err := io.WriteString(c, "ping\n"); err != nil {
		t.Fatal(err)
	}
	if err := c.(*net.TCPConn).CloseWrite(); err != nil {
		t.Fatal(err)
	}
	rest, err := io.ReadAll(r)
	if err != nil {
		t.Fatalf("read the echo: %v", err)
	}
	if string(rest) != "ping\n" {
		t.Fatalf("echo %q, want %q", rest, "ping\n")
	}
	return strings.TrimSuffix(name, "\n")
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting until %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestRoundRobin(t *testing.T) {
	a, b, c := startServer(t, "a", "127.0.0.1:0"), startServer(t, "b", "127.0.0.1:0"), startServer(t, "c", "127.0.0.1:0")
	_, addr, stop := startLB(t, a.addr, b.addr, c.addr)
	counts := map[string]int{}
	for range 9 {
		counts[roundTrip(t, addr)]++
	}
	if counts["a"] != 3 || counts["b"] != 3 || counts["c"] != 3 {
		t.Errorf("connections per upstream %v, want 3 each", counts)
	}
	if err := stop(); err != nil {
		t.Errorf("Serve: %v", err)
	}
}

func TestClosedUpstreamSkippedAndBack(t *testing.T) {
	a, b := startServer(t, "a", "127.0.0.1:0"), startServer(t, "b", "127.0.0.1:0")
	lb, addr, _ := startLB(t, a.addr, b.addr)
	b.stop()
	// Before the checks notice, a failed dial falls through to the next upstream.
	for range 4 {
		if got := roundTrip(t, addr); got != "a" {
			t.Fatalf("connection reached %s, want a", got)
		}
	}
	waitFor(t, "b is marked down", func() bool { return slices.Equal(lb.Healthy(), []string{a.addr}) })
	for range 4 {
		if got := roundTrip(t, addr); got != "a" {
			t.Fatalf("connection reached %s, want a", got)
		}
	}
	startServer(t, "b2", b.addr)
	waitFor(t, "b is marked up again", func() bool { return len(lb.Healthy()) == 2 })
	counts := map[string]int{}
	for range 4 {
		counts[roundTrip(t, addr)]++
	}
	if counts["a"] != 2 || counts["b2"] != 2 {
		t.Errorf("connections per upstream after the restart %v, want 2 each", counts)
	}
}

func TestNoUpstreamAnswers(t *testing.T) {
	a := startServer(t, "a", "127.0.0.1:0")
	_, addr, _ := startLB(t, a.addr)
	a.stop()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	if data, err := io.ReadAll(c); err != nil || len(data) != 0 {
		t.Errorf("read %q, %v; want the connection closed", data, err)
	}
}

func TestNoUpstreamWarnsOnce(t *testing.T) {
	a := startServer(t, "a", "127.0.0.1:0")
	var logs syncBuffer
	_, addr, stop := startLBWith(t, Config{Upstreams: []string{a.addr}, Log: slog.New(slog.NewTextHandler(&logs, nil))})
	a.stop()
	for range 5 {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		_ = c.SetDeadline(time.Now().Add(5 * time.Second))
		_, _ = io.ReadAll(c) // closed by the load balancer
		c.Close()
	}
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(logs.String(), "no upstream answered"); n != 1 {
		t.Errorf("%d warnings for 5 connections turned away within the interval, want 1:\n%s", n, logs.String())
	}
}

func TestOutOfFiles(t *testing.T) {
	if !outOfFiles(&net.OpError{Op: "accept", Err: os.NewSyscallError("accept4", syscall.EMFILE)}) {
		t.Error("EMFILE is not seen as out of files")
	}
	if outOfFiles(net.ErrClosed) {
		t.Error("a closed listener is seen as out of files")
	}
}

func TestCancelStopsEverything(t *testing.T) {
	a := startServer(t, "a", "127.0.0.1:0")
	_, addr, stop := startLB(t, a.addr)
	// A connection in the middle of its stream is closed too.
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	r := bufio.NewReader(c)
	if name, err := r.ReadString('\n'); err != nil || name != "a\n" {
		t.Fatalf("greeting %q, %v", name, err)
	}
	if err := stop(); err != nil {
		t.Errorf("Serve after cancel: %v", err)
	}
	if _, err := r.ReadByte(); err == nil {
		t.Error("the proxied connection is still open after cancel")
	}
	if _, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
		t.Error("the listener still accepts after cancel")
	}
}

func TestHTTPSHealthCheck(t *testing.T) {
	var ready atomic.Bool
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/readyz" || !ready.Load() {
			http.Error(w, "not ready", http.StatusServiceUnavailable)
			return
		}
		_, _ = io.WriteString(w, "ok")
	}))
	defer srv.Close()
	up := strings.TrimPrefix(srv.URL, "https://")
	lb, _, _ := startLBWith(t, Config{Upstreams: []string{up}, HealthTimeout: time.Second, HealthHTTPSPath: "/readyz"})
	// Listening but answering 503: marked down although it accepts connections.
	waitFor(t, "the unready upstream is marked down", func() bool { return len(lb.Healthy()) == 0 })
	ready.Store(true)
	waitFor(t, "the ready upstream is marked up", func() bool { return len(lb.Healthy()) == 1 })
	if _, err := New(Config{Upstreams: []string{up}, HealthHTTPSPath: "readyz"}); err == nil {
		t.Error("a health path without a leading slash is accepted")
	}
}

func TestNew(t *testing.T) {
	for _, ups := range [][]string{nil, {"10.5.0.2"}, {"10.5.0.2:6443", "10.5.0.2:6443"}} {
		if _, err := New(Config{Upstreams: ups}); err == nil {
			t.Errorf("New(%q) succeeded", ups)
		}
	}
	lb, err := New(Config{Upstreams: []string{"10.5.0.2:6443", "10.5.0.3:6443"}})
	if err != nil {
		t.Fatal(err)
	}
	if got := lb.Healthy(); len(got) != 2 {
		t.Errorf("upstreams start as %v, want both healthy", got)
	}
}

func TestMainCommand(t *testing.T) {
	var logs bytes.Buffer
	for _, args := range [][]string{
		{},
		{"--listen", "127.0.0.1:0"},
		{"--upstream", "127.0.0.1:1"},
		{"--listen", "127.0.0.1:0", "--upstream", "127.0.0.1:1", "extra"},
		{"--listen", "127.0.0.1:0", "--upstream", "nohost"},
	} {
		if err := Main(context.Background(), args, &logs); err == nil {
			t.Errorf("Main(%q) succeeded", args)
		}
	}
	a := startServer(t, "a", "127.0.0.1:0")
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	var out syncBuffer
	go func() { errc <- Main(ctx, []string{"--listen", "127.0.0.1:0", "--upstream", a.addr}, &out) }()
	waitFor(t, "the load balancer logs its start", func() bool { return strings.Contains(out.String(), "load balancer started") })
	cancel()
	if err := <-errc; err != nil {
		t.Errorf("Main after cancel: %v", err)
	}
	if !strings.Contains(out.String(), "component=loadbalancer") {
		t.Errorf("logs lack the component: %s", out.String())
	}
}

// syncBuffer is a bytes.Buffer safe for concurrent writers.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
