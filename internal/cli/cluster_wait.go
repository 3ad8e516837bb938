package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/backoff"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/plinthos/plinth/pkg/api/machine"
	"github.com/plinthos/plinth/pkg/client"
	"github.com/plinthos/plinth/pkg/clientconfig"
)

// Pacing of cluster create --wait.
var (
	waitInterval   = time.Second
	attemptTimeout = 5 * time.Second
	// dotsPerLine ends a line of progress dots with the time waited so far.
	dotsPerLine = 30
)

// waitAndBootstrap waits until the node API at endpoint answers Version, then calls
// Bootstrap there, retrying while the node is unreachable, all within timeout.
func waitAndBootstrap(ctx context.Context, out io.Writer, cc *clientconfig.Context, endpoint, node string, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	// Reconnect quickly: the node comes up within seconds, and gRPC's default backoff grows
	// to two minutes.
	c, err := client.New(cc, endpoint, grpc.WithConnectParams(grpc.ConnectParams{
		Backoff:           backoff.Config{BaseDelay: 200 * time.Millisecond, Multiplier: 1.6, Jitter: 0.2, MaxDelay: 2 * time.Second},
		MinConnectTimeout: attemptTimeout,
	}))
	if err != nil {
		return err
	}
	defer c.Close()

	start := time.Now()
	fmt.Fprintf(out, "waiting for the node API of %s on %s ", node, endpoint)
	var v *machine.VersionResponse
	err = retry(ctx, out, start, func(ctx context.Context) error {
		var err error
		v, err = c.Machine.Version(ctx, &machine.VersionRequest{})
		return err
	}, func(error) bool { return true })
	if err != nil {
		fmt.Fprintln(out)
		if errors.Is(err, context.Canceled) {
			return fmt.Errorf("interrupted while waiting for the node API of %s: %w", node, err)
		}
		return fmt.Errorf("the node API of %s did not answer within %s: %w", node, timeout, err)
	}
	fmt.Fprintf(out, " up after %s (%s %s)\n", time.Since(start).Round(time.Second), v.Hostname, v.Tag)

	fmt.Fprintf(out, "bootstrapping the cluster on %s ", node)
	var resp *machine.BootstrapResponse
	err = retry(ctx, out, start, func(ctx context.Context) error {
		var err error
		resp, err = c.Machine.Bootstrap(ctx, &machine.BootstrapRequest{})
		return err
	}, func(err error) bool {
		code := status.Code(err)
		return code == codes.Unavailable || code == codes.DeadlineExceeded
	})
	switch {
	case status.Code(err) == codes.AlreadyExists:
		// A retry after a lost answer, or a node that was bootstrapped before.
		fmt.Fprintf(out, "\n%s: %s\n", node, status.Convert(err).Message())
		return nil
	case err != nil:
		fmt.Fprintln(out)
		return fmt.Errorf("bootstrap %s: %w", node, describe(err))
	}
	fmt.Fprintf(out, "\n%s: %s\n", node, resp.Message)
	return nil
}

// retry calls fn every waitInterval, each call bounded by attemptTimeout, until it
// succeeds, fails with an error that again refuses, or ctx ends (the last error is
// returned). It prints a dot per failed attempt.
func retry(ctx context.Context, out io.Writer, start time.Time, fn func(context.Context) error, again func(error) bool) error {
	dots := 0
	for {
		actx, cancel := context.WithTimeout(ctx, attemptTimeout)
		err := fn(actx)
		cancel()
		if err == nil || !again(err) {
			return err
		}
		fmt.Fprint(out, ".")
		if dots++; dots%dotsPerLine == 0 {
			fmt.Fprintf(out, " %s\n", time.Since(start).Round(time.Second))
		}
		select {
		case <-ctx.Done():
			if errors.Is(ctx.Err(), context.Canceled) {
				return ctx.Err()
			}
			return describe(err)
		case <-time.After(waitInterval):
		}
	}
}
