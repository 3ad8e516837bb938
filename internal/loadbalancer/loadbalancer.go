// Package loadbalancer is a small TCP load balancer: it accepts connections on a listener
// and proxies each to one of a set of upstreams (HOST:PORT), round robin among those that
// pass an active health check (a TCP connect). Local clusters with more than one control
// plane run it in a container of its own in front of the control planes' API servers, as
// `machined loadbalancer`.
package loadbalancer

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Defaults of Config.
const (
	DefaultHealthInterval = 2 * time.Second
	DefaultHealthTimeout  = time.Second
	DefaultDialTimeout    = 2 * time.Second
	DefaultFallAfter      = 2
)

// Config configures a LoadBalancer.
type Config struct {
	// Upstreams are the HOST:PORT addresses connections are proxied to.
	Upstreams []string
	// HealthInterval is how often each upstream is checked, HealthTimeout how long a check's
	// connect may take, DialTimeout how long connecting for a client may take.
	HealthInterval, HealthTimeout, DialTimeout time.Duration
	// FallAfter is how many checks in a row must fail before an upstream is marked down; one
	// successful check marks it up again.
	FallAfter int
	// HealthHTTPSPath, when set, makes the check an HTTPS GET of this path that must answer
	// 200, such as the API server's /readyz: a server that accepts connections but is not
	// ready yet (its etcd member still joining) gets no traffic. The server's certificate
	// is not verified: the answer decides health, no data is trusted. Empty: a TCP connect.
	HealthHTTPSPath string
	// Log receives the up and down transitions; nil discards them.
	Log *slog.Logger
}

// LoadBalancer proxies connections to healthy upstreams.
type LoadBalancer struct {
	cfg       Config
	upstreams []*upstream
	dialer    net.Dialer
	http      *http.Client

	mu         sync.Mutex
	next       uint64    // connections so far, for the round robin
	lastWarn   time.Time // of the last "no upstream answered"
	turnedAway int       // connections closed for want of an upstream since lastWarn
}

type upstream struct {
	addr     string
	mu       sync.Mutex
	healthy  bool
	failures int
}

func (u *upstream) isHealthy() bool {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.healthy
}

// New checks the configuration and fills in defaults. Upstreams start healthy, so that the
// first connections do not wait for the first checks.
func New(cfg Config) (*LoadBalancer, error) {
	if len(cfg.Upstreams) == 0 {
		return nil, errors.New("no upstreams")
	}
	lb := &LoadBalancer{}
	seen := map[string]bool{}
	for _, a := range cfg.Upstreams {
		if _, _, err := net.SplitHostPort(a); err != nil {
			return nil, fmt.Errorf("upstream %q is not HOST:PORT: %w", a, err)
		}
		if seen[a] {
			return nil, fmt.Errorf("upstream %s is given twice", a)
		}
		seen[a] = true
		lb.upstreams = append(lb.upstreams, &upstream{addr: a, healthy: true})
	}
	if cfg.HealthInterval <= 0 {
		cfg.HealthInterval = DefaultHealthInterval
	}
	if cfg.HealthTimeout <= 0 {
		cfg.HealthTimeout = DefaultHealthTimeout
		if cfg.HealthHTTPSPath != "" {
			// A TLS handshake and an answer take longer than a connect on a busy host.
			cfg.HealthTimeout = 2 * DefaultHealthTimeout
		}
	}
	if cfg.DialTimeout <= 0 {
		cfg.DialTimeout = DefaultDialTimeout
	}
	if cfg.FallAfter <= 0 {
		cfg.FallAfter = DefaultFallAfter
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	if cfg.HealthHTTPSPath != "" && !strings.HasPrefix(cfg.HealthHTTPSPath, "/") {
		return nil, fmt.Errorf("health check path %q must start with /", cfg.HealthHTTPSPath)
	}
	lb.cfg = cfg
	lb.dialer = net.Dialer{Timeout: cfg.DialTimeout}
	lb.http = &http.Client{Transport: &http.Transport{
		Proxy:             nil,
		DisableKeepAlives: true,
		//nolint:gosec // a health probe: only the status code is used
		TLSClientConfig: &tls.Config{InsecureSkipVerify: true, MinVersion: tls.VersionTLS12},
	}}
	return lb, nil
}

// Healthy lists the upstreams currently marked up, in configuration order.
func (lb *LoadBalancer) Healthy() []string {
	var up []string
	for _, u := range lb.upstreams {
		if u.isHealthy() {
			up = append(up, u.addr)
		}
	}
	return up
}

// Serve accepts connections on l until ctx ends, then closes l and every proxied
// connection and returns nil once all its goroutines have ended. It returns an error if
// accepting fails otherwise. Serve closes l in every case.
func (lb *LoadBalancer) Serve(ctx context.Context, l net.Listener) error {
	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	defer wg.Wait()
	defer cancel()
	for _, u := range lb.upstreams {
		wg.Go(func() { lb.check(ctx, u) })
	}
	wg.Go(func() {
		<-ctx.Done()
		l.Close()
	})
	for {
		conn, err := l.Accept()
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			if outOfFiles(err) {
				// Out of file descriptors: wait for connections to end, then accept again.
				lb.cfg.Log.Warn("accept", "error", err)
				select {
				case <-ctx.Done():
					return nil
				case <-time.After(100 * time.Millisecond):
				}
				continue
			}
			return fmt.Errorf("accept: %w", err)
		}
		wg.Go(func() { lb.proxy(ctx, conn) })
	}
}

// check probes u every HealthInterval until ctx ends.
func (lb *LoadBalancer) check(ctx context.Context, u *upstream) {
	t := time.NewTicker(lb.cfg.HealthInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		err := lb.probe(ctx, u.addr)
		if ctx.Err() != nil {
			return
		}
		lb.record(u, err)
	}
}

// probe checks one upstream: a TCP connect, or the HTTPS GET of HealthHTTPSPath.
func (lb *LoadBalancer) probe(ctx context.Context, addr string) error {
	ctx, cancel := context.WithTimeout(ctx, lb.cfg.HealthTimeout)
	defer cancel()
	if lb.cfg.HealthHTTPSPath == "" {
		c, err := lb.dialer.DialContext(ctx, "tcp", addr)
		if err != nil {
			return err
		}
		return c.Close()
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "https://"+addr+lb.cfg.HealthHTTPSPath, nil)
	if err != nil {
		return err
	}
	resp, err := lb.http.Do(req)
	if err != nil {
		return err
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 4096))
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s", lb.cfg.HealthHTTPSPath, resp.Status)
	}
	return nil
}

// record applies a check's result to u and logs a transition.
func (lb *LoadBalancer) record(u *upstream, err error) {
	u.mu.Lock()
	defer u.mu.Unlock()
	switch {
	case err == nil:
		u.failures = 0
		if !u.healthy {
			u.healthy = true
			lb.cfg.Log.Info("upstream up", "upstream", u.addr)
		}
	default:
		u.failures++
		if u.healthy && u.failures >= lb.cfg.FallAfter {
			u.healthy = false
			lb.cfg.Log.Warn("upstream down", "upstream", u.addr, "failures", u.failures, "error", err)
		}
	}
}

// candidates returns the upstreams to try for one connection: the healthy ones, starting
// one further at each connection; every upstream when none is healthy (a check may be
// behind).
func (lb *LoadBalancer) candidates() []*upstream {
	lb.mu.Lock()
	n := lb.next
	lb.next++
	lb.mu.Unlock()
	var healthy []*upstream
	for _, u := range lb.upstreams {
		if u.isHealthy() {
			healthy = append(healthy, u)
		}
	}
	if len(healthy) == 0 {
		healthy = lb.upstreams
	}
	i := int(n % uint64(len(healthy)))
	return append(slices.Clone(healthy[i:]), healthy[:i]...)
}

// proxy connects conn to the first candidate that answers and copies both ways until both
// sides are done or ctx ends.
func (lb *LoadBalancer) proxy(ctx context.Context, conn net.Conn) {
	defer conn.Close()
	var up net.Conn
	for _, u := range lb.candidates() {
		c, err := lb.dialer.DialContext(ctx, "tcp", u.addr)
		if err == nil {
			up = c
			break
		}
		if ctx.Err() != nil {
			return
		}
		lb.cfg.Log.Debug("dial upstream", "upstream", u.addr, "error", err)
	}
	if up == nil {
		lb.warnNoUpstream(conn.RemoteAddr())
		return
	}
	defer up.Close()
	stop := context.AfterFunc(ctx, func() {
		conn.Close()
		up.Close()
	})
	defer stop()
	done := make(chan struct{})
	go func() {
		pipe(up, conn)
		close(done)
	}()
	pipe(conn, up)
	<-done
}

// warnInterval is the least time between two "no upstream answered" warnings: before
// the cluster is bootstrapped every client is turned away, and one line says so.
const warnInterval = 10 * time.Second

// warnNoUpstream logs that a connection was closed for want of an upstream, at most once
// per warnInterval, with the number of connections closed since the last warning.
func (lb *LoadBalancer) warnNoUpstream(client net.Addr) {
	lb.mu.Lock()
	lb.turnedAway++
	now := time.Now()
	if now.Sub(lb.lastWarn) < warnInterval {
		lb.mu.Unlock()
		return
	}
	n := lb.turnedAway
	lb.turnedAway, lb.lastWarn = 0, now
	lb.mu.Unlock()
	lb.cfg.Log.Warn("no upstream answered; closing connections", "client", client, "closed", n)
}

// outOfFiles reports whether an accept failed for want of file descriptors, which ends
// when connections close.
func outOfFiles(err error) bool {
	return errors.Is(err, syscall.EMFILE) || errors.Is(err, syscall.ENFILE)
}

// pipe copies from src to dst. At the end of src's stream it half-closes dst, so that its
// peer sees the end too while the other direction goes on; after an error it closes both.
func pipe(dst, src net.Conn) {
	if _, err := io.Copy(dst, src); err != nil {
		src.Close()
		dst.Close()
		return
	}
	if cw, ok := dst.(interface{ CloseWrite() error }); ok && cw.CloseWrite() == nil {
		return
	}
	dst.Close()
}
