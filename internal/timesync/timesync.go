// Package timesync keeps the system clock in step with NTP servers: it queries them,
// steps the clock when it is far off and lets the kernel slew it otherwise, polling less
// often while the clock holds and backing off while no server answers.
package timesync

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"time"

	"github.com/beevik/ntp"

	"github.com/plinthos/plinth/internal/clock"
)

// Defaults of a Syncer's settings.
const (
	// DefaultStepThreshold: an offset larger than this is stepped; it is the most the
	// kernel's phase-locked loop slews.
	DefaultStepThreshold = maxSlew
	// DefaultMinPoll is the interval between polls after a step or a failure's recovery.
	DefaultMinPoll = 64 * time.Second
	// DefaultMaxPoll bounds the interval between polls and the backoff after failures.
	DefaultMaxPoll = 1024 * time.Second
	// DefaultRetry is the first wait after a poll in which no server answered; it doubles
	// up to MaxPoll.
	DefaultRetry = 2 * time.Second
	// DefaultQueryTimeout bounds one server's answer.
	DefaultQueryTimeout = 5 * time.Second
)

// Status is what the last poll found.
type Status struct {
	// Synced is set when the last poll got a valid answer and the clock was steered by it.
	Synced bool
	// Server is the server that answered the last successful poll.
	Server string
	// Offset is the clock's offset from that server before the correction (positive: the
	// clock was behind).
	Offset time.Duration
	// Stepped is set when that correction was a step rather than a slew.
	Stepped bool
	// LastSync is when the last successful poll was (the corrected time).
	LastSync time.Time
	// Error says why the last poll failed; empty when it succeeded.
	Error string
	// NextPoll is the wait before the next poll.
	NextPoll time.Duration
}

// Syncer polls Servers and steers the clock through Adjuster.
type Syncer struct {
	// Servers are tried in order at each poll; the first valid answer is used. A server is
	// a host name or an IP address, with an optional :port (123 by default).
	Servers []string
	// Adjuster steers the clock; Kernel{} in production.
	Adjuster Adjuster
	// Clock times the polls; clock.Real{} when nil. The queries themselves use the
	// system clock, which is what they measure.
	Clock clock.Clock
	// StepThreshold, MinPoll, MaxPoll, Retry and QueryTimeout default to the Default
	// constants when zero.
	StepThreshold, MinPoll, MaxPoll, Retry, QueryTimeout time.Duration
	// Log receives the steps and failures; slog.Default() when nil.
	Log *slog.Logger
	// OnStatus, when set, is called after every poll, from Run's goroutine.
	OnStatus func(Status)
}

func (s *Syncer) defaults() {
	if s.Clock == nil {
		s.Clock = clock.Real{}
	}
	if s.Log == nil {
		s.Log = slog.Default()
	}
	for _, d := range []struct {
		v   *time.Duration
		def time.Duration
	}{{&s.StepThreshold, DefaultStepThreshold}, {&s.MinPoll, DefaultMinPoll}, {&s.MaxPoll, DefaultMaxPoll},
		{&s.Retry, DefaultRetry}, {&s.QueryTimeout, DefaultQueryTimeout}} {
		if *d.v <= 0 {
			*d.v = d.def
		}
	}
}

// Run polls until ctx ends, and then returns nil. The first poll is immediate; after a
// success the interval starts at MinPoll and doubles up to MaxPoll while the clock needs
// no step; after a failure the wait starts at Retry and doubles up to MaxPoll.
func (s *Syncer) Run(ctx context.Context) error {
	s.defaults()
	if len(s.Servers) == 0 {
		return errors.New("time synchronisation: no servers")
	}
	poll, retry := s.MinPoll, s.Retry
	var last Status
	for {
		st, err := s.Poll(ctx)
		if ctx.Err() != nil {
			return nil
		}
		if err != nil {
			st.NextPoll = retry
			retry = min(retry*2, s.MaxPoll)
			// What the last success found stays visible beside the error.
			st.Server, st.Offset, st.LastSync = last.Server, last.Offset, last.LastSync
			s.Log.Warn("no time server answered", "error", err, "retry", st.NextPoll)
		} else {
			retry = s.Retry
			if st.Stepped {
				poll = s.MinPoll
			} else if last.Synced {
				poll = min(poll*2, s.MaxPoll)
			}
			st.NextPoll = poll
			last = st
		}
		if s.OnStatus != nil {
			s.OnStatus(st)
		}
		t := s.Clock.NewTimer(st.NextPoll)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil
		case <-t.C():
		}
	}
}

// Poll queries the servers in order and steers the clock by the first valid answer. On
// failure the error joins each server's.
func (s *Syncer) Poll(ctx context.Context) (Status, error) {
	s.defaults()
	var errs []error
	for _, server := range s.Servers {
		resp, err := s.query(ctx, server)
		if ctx.Err() != nil {
			return Status{Error: ctx.Err().Error()}, ctx.Err()
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", server, err))
			continue
		}
		st := Status{Synced: true, Server: server, Offset: resp.ClockOffset}
		if resp.ClockOffset.Abs() > s.StepThreshold {
			st.Stepped = true
			err = s.Adjuster.Step(resp.ClockOffset)
		} else {
			err = s.Adjuster.Slew(resp.ClockOffset, resp.RootDistance)
		}
		if err != nil {
			st = Status{Error: err.Error()}
			return st, err
		}
		st.LastSync = time.Now()
		if st.Stepped {
			s.Log.Info("clock stepped", "server", server, "offset", resp.ClockOffset)
		} else {
			s.Log.Debug("clock slewed", "server", server, "offset", resp.ClockOffset)
		}
		return st, nil
	}
	err := errors.Join(errs...)
	if err == nil {
		err = errors.New("no servers")
	}
	return Status{Error: err.Error()}, err
}

// query asks one server for the time and checks that the answer is fit for
// synchronisation (not a kiss of death, a synchronised server of a valid stratum).
func (s *Syncer) query(ctx context.Context, server string) (*ntp.Response, error) {
	var stop func() bool
	resp, err := ntp.QueryWithOptions(server, ntp.QueryOptions{
		Timeout: s.QueryTimeout,
		Dialer: func(local, remote string) (net.Conn, error) {
			conn, err := dial(ctx, local, remote)
			if err != nil {
				return nil, err
			}
			// A pending read ends when ctx does.
			stop = context.AfterFunc(ctx, func() { _ = conn.SetDeadline(time.Now()) })
			return conn, nil
		},
	})
	if stop != nil {
		stop()
	}
	if err != nil {
		return nil, err
	}
	if resp.IsKissOfDeath() {
		return nil, fmt.Errorf("the server refused (kiss of death %q)", resp.KissCode)
	}
	if err := resp.Validate(); err != nil {
		return nil, fmt.Errorf("unusable answer: %w", err)
	}
	return resp, nil
}

// dial opens the UDP socket of one query, resolving the name under ctx. The socket is the
// *net.UDPConn itself, so that the library reads the kernel's receive timestamps.
func dial(ctx context.Context, local, remote string) (net.Conn, error) {
	d := net.Dialer{}
	if local != "" {
		d.LocalAddr = &net.UDPAddr{IP: net.ParseIP(local)}
	}
	return d.DialContext(ctx, "udp", remote)
}
