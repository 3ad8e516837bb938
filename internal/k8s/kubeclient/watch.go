package kubeclient

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/plinthos/plinth/internal/backoff"
	"github.com/plinthos/plinth/internal/k8s/objects"
)

// ErrWatchEnded is WatchNodes' error when the API server ended the watch, as it does
// after a while: watch again.
var ErrWatchEnded = errors.New("the API server ended the watch of the nodes")

// watchTimeout is how long the API server keeps one watch open (it ends it after that;
// WatchNodes then returns, and its caller watches again).
const watchTimeout = 5 * 60

// WatchNodes lists the Nodes and calls fn with them, then again with all of them after
// every change the API reports, until ctx ends (nil), fn fails (its error), or the watch
// ends or fails (an error; the caller lists and watches again).
func (c *Client) WatchNodes(ctx context.Context, fn func([]objects.Node) error) error {
	var l struct {
		Metadata struct {
			ResourceVersion string `json:"resourceVersion"`
		} `json:"metadata"`
		Items []objects.Node `json:"items"`
	}
	if err := c.Get(ctx, "/api/v1/nodes", &l); err != nil {
		return err
	}
	nodes := map[string]objects.Node{}
	for _, n := range l.Items {
		nodes[n.Metadata.Name] = n
	}
	report := func() error {
		all := make([]objects.Node, 0, len(nodes))
		for _, n := range nodes {
			all = append(all, n)
		}
		slices.SortFunc(all, func(a, b objects.Node) int { return strings.Compare(a.Metadata.Name, b.Metadata.Name) })
		return fn(all)
	}
	if err := report(); err != nil {
		return err
	}

	path := "/api/v1/nodes?" + url.Values{"watch": {"1"}, "resourceVersion": {l.Metadata.ResourceVersion},
		"timeoutSeconds": {fmt.Sprint(watchTimeout)}}.Encode()
	// The client's timeout bounds whole requests; a watch lasts as long as the server
	// keeps it, so it goes through a copy without one (ctx still ends it).
	hc := *c.http
	hc.Timeout = 0
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.server+path, nil)
	if err != nil {
		return fmt.Errorf("GET %s: %w", path, err)
	}
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", "plinth")
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := hc.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return fmt.Errorf("GET %s: %w", path, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		data, _ := io.ReadAll(io.LimitReader(resp.Body, maxMessage))
		return apiError(http.MethodGet, path, resp.StatusCode, data)
	}
	dec := json.NewDecoder(resp.Body)
	for {
		var ev struct {
			Type   string          `json:"type"`
			Object json.RawMessage `json:"object"`
		}
		if err := dec.Decode(&ev); err != nil {
			if ctx.Err() != nil {
				return nil
			}
			if errors.Is(err, io.EOF) {
				return ErrWatchEnded
			}
			return fmt.Errorf("watch the nodes: %w", err)
		}
		var n objects.Node
		switch ev.Type {
		case "ADDED", "MODIFIED", "DELETED":
			if err := json.Unmarshal(ev.Object, &n); err != nil {
				return fmt.Errorf("watch the nodes: decode a %s event: %w", ev.Type, err)
			}
		case "BOOKMARK":
			continue
		default: // ERROR: the resource version is too old, say
			return fmt.Errorf("watch the nodes: %s: %s", ev.Type, apiError(http.MethodGet, path, http.StatusOK, ev.Object).Message)
		}
		if ev.Type == "DELETED" {
			delete(nodes, n.Metadata.Name)
		} else {
			nodes[n.Metadata.Name] = n
		}
		if err := report(); err != nil {
			return err
		}
	}
}

// minWatch is how long a watch of the nodes that brought no event must have lasted for its
// end to be the API server's routine end of a watch, not a failure.
const minWatch = time.Second

// KeepWatchingNodes calls fn with the Nodes, as WatchNodes does, until ctx ends. It opens
// a client with open, lists and watches; when the API server ends a watch that worked (it
// brought an event, or lasted minWatch) it lists and watches again at once. After any
// other failure (open's, the list's, the watch's, fn's, or a watch that ended at once) it
// calls failed with the error, once while the same message repeats, and tries again after
// retry's next wait. Only a watch that works resets retry and forgets the last failure (so
// that the next one is said again): a list that succeeds while every watch fails does not.
func KeepWatchingNodes(ctx context.Context, open func() (*Client, error), retry *backoff.Doubling,
	failed func(error), fn func([]objects.Node) error) {
	lastErr := ""
	working := func() {
		retry.Reset()
		lastErr = ""
	}
	for {
		var watchStart time.Time // when the list was reported and the watch began
		calls := 0
		c, err := open()
		if err == nil {
			err = c.WatchNodes(ctx, func(nodes []objects.Node) error {
				if err := fn(nodes); err != nil {
					return err
				}
				if calls++; calls == 1 {
					watchStart = time.Now()
				} else { // the first call is the list's; this one a watch event's
					working()
				}
				return nil
			})
			c.Close()
		}
		if ctx.Err() != nil {
			return
		}
		if errors.Is(err, ErrWatchEnded) && (calls > 1 || time.Since(watchStart) >= minWatch) {
			working()
			continue
		}
		if err == nil { // WatchNodes returns nil only when ctx ended; be safe all the same
			err = errors.New("the watch of the nodes ended without an error")
		}
		if msg := err.Error(); msg != lastErr {
			failed(err)
			lastErr = msg
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(retry.Next()):
		}
	}
}
