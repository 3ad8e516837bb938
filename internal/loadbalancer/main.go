package loadbalancer

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
)

// stringList is a repeatable string flag.
type stringList []string

func (s *stringList) String() string     { return fmt.Sprint(*s) }
func (s *stringList) Set(v string) error { *s = append(*s, v); return nil }

// Main runs `machined loadbalancer --listen ADDR --upstream HOST:PORT [--upstream ...]
// [--health-https-path /readyz]`
// until ctx ends (SIGTERM), logging to logs.
func Main(ctx context.Context, args []string, logs io.Writer) error {
	fs := flag.NewFlagSet("loadbalancer", flag.ContinueOnError)
	fs.SetOutput(logs)
	listen := fs.String("listen", "", "address to accept connections on, such as :6443")
	var upstreams stringList
	fs.Var(&upstreams, "upstream", "HOST:PORT to proxy to (repeatable)")
	interval := fs.Duration("health-interval", DefaultHealthInterval, "how often each upstream is checked")
	httpsPath := fs.String("health-https-path", "", "check upstreams with an HTTPS GET of this path that must answer 200, such as /readyz (default: a TCP connect)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	if *listen == "" || len(upstreams) == 0 {
		return errors.New("loadbalancer needs --listen and at least one --upstream")
	}
	log := slog.New(slog.NewTextHandler(logs, nil)).With("component", "loadbalancer")
	lb, err := New(Config{Upstreams: upstreams, HealthInterval: *interval, HealthHTTPSPath: *httpsPath, Log: log})
	if err != nil {
		return err
	}
	l, err := net.Listen("tcp", *listen)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", *listen, err)
	}
	log.Info("load balancer started", "listen", l.Addr().String(), "upstreams", []string(upstreams))
	err = lb.Serve(ctx, l)
	log.Info("load balancer stopped")
	return err
}
