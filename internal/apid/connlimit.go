package apid

import (
	"net"
	"net/netip"
	"sync"
)

// connLimitListener bounds the connections apid holds: at most perSource from one source
// address and total in all. A connection over a limit is closed as soon as it is
// accepted, before its TLS handshake, so holding connections open costs apid nothing
// more and never blocks the accept loop for others.
type connLimitListener struct {
	net.Listener
	perSource, total int

	mu    sync.Mutex
	count int
	per   map[netip.Addr]int
}

func newConnLimitListener(l net.Listener, perSource, total int) *connLimitListener {
	return &connLimitListener{Listener: l, perSource: perSource, total: total, per: map[netip.Addr]int{}}
}

// Accept returns the next connection within the limits.
func (l *connLimitListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		src := sourceAddr(c)
		if l.admit(src) {
			return &limitedConn{Conn: c, release: func() { l.release(src) }}, nil
		}
		_ = c.Close()
	}
}

func (l *connLimitListener) admit(src netip.Addr) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.count >= l.total || l.per[src] >= l.perSource {
		return false
	}
	l.count++
	l.per[src]++
	return true
}

func (l *connLimitListener) release(src netip.Addr) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.count--
	if l.per[src]--; l.per[src] <= 0 {
		delete(l.per, src)
	}
}

func sourceAddr(c net.Conn) netip.Addr {
	if ap, err := netip.ParseAddrPort(c.RemoteAddr().String()); err == nil {
		return ap.Addr().Unmap()
	}
	return netip.Addr{}
}

// limitedConn gives its slot back once, when it is closed.
type limitedConn struct {
	net.Conn
	once    sync.Once
	release func()
}

func (c *limitedConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(c.release)
	return err
}
