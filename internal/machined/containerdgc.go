package machined

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"time"
)

// collectContainerdGarbage asks containerd, through its debug server at socket, for a
// garbage collection: Go's heap profile handler runs one first when asked with gc=1.
//
// The bundle's import grows containerd's heap (its zstd decoders) to about 90 MB, and an
// idle containerd allocates so slowly that the next collection came minutes later: until
// then a worker's containerd held 60-78 MiB instead of about 20 (docs/performance.md).
// After a collection Go gives the freed memory back to the system within seconds.
func collectContainerdGarbage(ctx context.Context, socket string) error {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	client := &http.Client{Transport: &http.Transport{
		DisableKeepAlives: true,
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", socket)
		},
	}}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://containerd/debug/pprof/heap?gc=1", nil)
	if err != nil {
		return err
	}
	resp, err := client.Do(req)
	if err != nil {
		return fmt.Errorf("ask containerd for a garbage collection: %w", err)
	}
	defer resp.Body.Close()
	if _, err := io.Copy(io.Discard, resp.Body); err != nil {
		return fmt.Errorf("ask containerd for a garbage collection: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("ask containerd for a garbage collection: %s", resp.Status)
	}
	return nil
}
