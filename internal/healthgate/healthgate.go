// Package healthgate waits until a node is healthy and stays so: the trial boot's gate of
// an OS upgrade (in machined) and the check of a replaced Docker node (in plinthctl) are
// the same wait over two sources of the same facts.
package healthgate

import (
	"context"
	"fmt"
	"strings"
	"time"
)

// Wait calls check until it finds nothing wrong for settle in a row, within timeout. check
// returns what is wrong ("apid is unhealthy"), nothing when all is well. The error names
// what was wrong at the end.
func Wait(ctx context.Context, timeout, settle time.Duration, check func(context.Context) []string) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var since time.Time
	for {
		bad := check(ctx)
		switch {
		case len(bad) > 0:
			since = time.Time{}
		case since.IsZero():
			since = time.Now()
		case time.Since(since) >= settle:
			return nil
		}
		select {
		case <-ctx.Done():
			if len(bad) == 0 {
				return fmt.Errorf("not healthy within %s: the services were not healthy for %s in a row", timeout, settle)
			}
			return fmt.Errorf("not healthy within %s: %s", timeout, strings.Join(bad, ", "))
		case <-time.After(min(time.Second, settle)):
		}
	}
}

// Service says what is wrong with a service in state (a service.State) with health
// ("healthy", "unhealthy" or "" without a health check), or "": it must be running,
// finished or skipped, and not unhealthy.
func Service(id, state, health string) string {
	switch {
	case state != "Running" && state != "Finished" && state != "Skipped":
		return id + " is " + state
	case health == "unhealthy":
		return id + " is unhealthy"
	}
	return ""
}

// Etcd says why an etcd member is not a voting member that follows a leader, or "".
func Etcd(leader uint64, learner bool, errs []string) string {
	switch {
	case leader == 0:
		return "etcd has no leader"
	case learner:
		return "etcd is a learner, not a voting member yet"
	case len(errs) > 0:
		return "etcd: " + strings.Join(errs, "; ")
	}
	return ""
}
