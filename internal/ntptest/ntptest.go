// Package ntptest is an NTP server for tests, on the loopback: it answers with the host's
// time plus a skew, as a synchronised stratum-2 server would. Used by tests only; nothing
// is sent anywhere but to the clients that ask it.
package ntptest

import (
	"encoding/binary"
	"net"
	"sync/atomic"
	"testing"
	"time"
)

// Server is a running fake NTP server.
type Server struct {
	conn *net.UDPConn
	skew atomic.Int64
	done chan struct{}
	// Silent, when set, makes the server read requests and answer none.
	Silent atomic.Bool
	// Kiss, when set, makes the server answer with a kiss of death (RATE).
	Kiss atomic.Bool
	// Queries counts the requests received.
	Queries atomic.Int32
}

// Start runs a server on 127.0.0.1 whose clock is the host's plus skew; it stops when the
// test ends.
func Start(t testing.TB, skew time.Duration) *Server {
	t.Helper()
	conn, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatalf("listen for NTP: %v", err)
	}
	s := &Server{conn: conn, done: make(chan struct{})}
	s.skew.Store(int64(skew))
	go s.serve()
	t.Cleanup(func() { conn.Close(); <-s.done })
	return s
}

// Addr is the server's address, HOST:PORT.
func (s *Server) Addr() string { return s.conn.LocalAddr().String() }

// SetSkew changes the server's clock.
func (s *Server) SetSkew(d time.Duration) { s.skew.Store(int64(d)) }

// ntpEpochOffset is the number of seconds from 1900 (NTP's era 0) to 1970.
const ntpEpochOffset = 2208988800

func putTimestamp(b []byte, t time.Time) {
	secs := uint64(t.Unix() + ntpEpochOffset)
	frac := uint64(t.Nanosecond()) << 32 / uint64(time.Second)
	binary.BigEndian.PutUint64(b, secs<<32|frac)
}

func (s *Server) serve() {
	defer close(s.done)
	buf := make([]byte, 512)
	for {
		n, peer, err := s.conn.ReadFromUDP(buf)
		if err != nil {
			return
		}
		s.Queries.Add(1)
		if n < 48 || s.Silent.Load() {
			continue
		}
		now := time.Now().Add(time.Duration(s.skew.Load()))
		resp := make([]byte, 48)
		resp[0] = 0<<6 | 4<<3 | 4                       // no leap warning, version 4, server mode
		resp[1] = 2                                     // stratum
		resp[2] = 6                                     // poll
		resp[3] = 0xec                                  // precision 2^-20
		binary.BigEndian.PutUint32(resp[8:], 1<<16/100) // root dispersion 10 ms
		copy(resp[12:16], "TEST")
		if s.Kiss.Load() {
			resp[1] = 0
			copy(resp[12:16], "RATE")
		}
		putTimestamp(resp[16:], now.Add(-time.Second)) // reference
		copy(resp[24:32], buf[40:48])                  // origin: the client's transmit time
		putTimestamp(resp[32:], now)                   // receive
		putTimestamp(resp[40:], now)                   // transmit
		_, _ = s.conn.WriteToUDP(resp, peer)
	}
}
