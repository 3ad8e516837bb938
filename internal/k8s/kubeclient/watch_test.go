package kubeclient

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/plinthos/plinth/internal/backoff"
	"github.com/plinthos/plinth/internal/k8s/objects"
)

func TestWatchNodes(t *testing.T) {
	events := []string{
		`{"type":"ADDED","object":{"metadata":{"name":"w-1"},"spec":{"podCIDRs":["10.244.1.0/24"]}}}`,
		`{"type":"BOOKMARK","object":{"metadata":{"resourceVersion":"44"}}}`,
		`{"type":"MODIFIED","object":{"metadata":{"name":"cp-1"},"spec":{"podCIDRs":["10.244.0.0/24"]}}}`,
		`{"type":"DELETED","object":{"metadata":{"name":"w-1"}}}`,
	}
	f := newFakeAPI(t, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Query().Get("watch") == "" {
			serveJSON(nodesJSON)(w, r)
			return
		}
		for _, e := range events {
			_, _ = io.WriteString(w, e+"\n")
			w.(http.Flusher).Flush()
		}
	})
	var seen []string
	err := f.client(t).WatchNodes(t.Context(), func(nodes []objects.Node) error {
		var s []string
		for _, n := range nodes {
			s = append(s, n.Metadata.Name+fmt.Sprint(n.Spec.PodCIDRs))
		}
		seen = append(seen, strings.Join(s, " "))
		return nil
	})
	if !errors.Is(err, ErrWatchEnded) {
		t.Fatalf("WatchNodes = %v, want ErrWatchEnded once the server ends the watch", err)
	}
	want := []string{"cp-1[]", "cp-1[] w-1[10.244.1.0/24]", "cp-1[10.244.0.0/24] w-1[10.244.1.0/24]", "cp-1[10.244.0.0/24]"}
	if !slices.Equal(seen, want) {
		t.Errorf("saw\n%s\nwant\n%s", strings.Join(seen, "\n"), strings.Join(want, "\n"))
	}
	reqs := f.requests()
	if len(reqs) != 2 || !strings.Contains(reqs[1].Query, "resourceVersion=42") || !strings.Contains(reqs[1].Query, "watch=1") {
		t.Errorf("requests %+v: want a list, then a watch from its resource version", reqs)
	}
}

func TestWatchNodesError(t *testing.T) {
	f := newFakeAPI(t, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Query().Get("watch") == "" {
			serveJSON(nodesJSON)(w, r)
			return
		}
		_, _ = io.WriteString(w, `{"type":"ERROR","object":{"kind":"Status","reason":"Expired","message":"too old resource version: 42"}}`+"\n")
	})
	err := f.client(t).WatchNodes(t.Context(), func([]objects.Node) error { return nil })
	if err == nil || !strings.Contains(err.Error(), "too old resource version") {
		t.Fatalf("WatchNodes = %v, want the API's error", err)
	}
}

func TestWatchNodesStopsWhenFnFails(t *testing.T) {
	f := newFakeAPI(t, serveJSON(nodesJSON))
	boom := errors.New("boom")
	if err := f.client(t).WatchNodes(t.Context(), func([]objects.Node) error { return boom }); !errors.Is(err, boom) {
		t.Fatalf("WatchNodes = %v, want fn's error", err)
	}
	if n := len(f.requests()); n != 1 {
		t.Errorf("%d requests, want the list only", n)
	}
}

func TestKeepWatchingNodes(t *testing.T) {
	// The API server fails the first two lists, serves the third and ends its watch after
	// one event, fails the fourth list, and serves the fifth with a watch that lasts.
	var lists atomic.Int32
	f := newFakeAPI(t, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Query().Get("watch") == "" {
			if n := lists.Add(1); n == 1 || n == 2 || n == 4 {
				http.Error(w, `{"kind":"Status","message":"etcd is not ready"}`, http.StatusInternalServerError)
				return
			}
			serveJSON(nodesJSON)(w, r)
			return
		}
		if lists.Load() == 3 {
			_, _ = io.WriteString(w, `{"type":"ADDED","object":{"metadata":{"name":"w-1"}}}`+"\n")
			return
		}
		w.(http.Flusher).Flush()
		<-r.Context().Done()
	})
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	opens := 0
	open := func() (*Client, error) {
		if opens++; opens == 1 {
			return nil, errors.New("no kubeconfig yet")
		}
		return New(f.kubeconfig, "")
	}
	retry := backoff.New(time.Millisecond, 4*time.Millisecond)
	var failures, seen []string
	KeepWatchingNodes(ctx, open, retry, func(err error) { failures = append(failures, err.Error()) },
		func(nodes []objects.Node) error {
			var s []string
			for _, n := range nodes {
				s = append(s, n.Metadata.Name)
			}
			seen = append(seen, strings.Join(s, " "))
			if len(seen) == 3 {
				cancel()
			}
			return nil
		})
	if want := []string{"cp-1", "cp-1 w-1", "cp-1"}; !slices.Equal(seen, want) {
		t.Errorf("fn saw %q, want %q", seen, want)
	}
	// The second failed list repeats the first and is not said; the fourth follows a
	// success and is said again.
	if len(failures) != 3 || failures[0] != "no kubeconfig yet" || !strings.Contains(failures[1], "etcd is not ready") ||
		failures[2] != failures[1] {
		t.Errorf("failures said:\n%s\nwant the open's, then the list's twice", strings.Join(failures, "\n"))
	}
	if lists.Load() != 5 {
		t.Errorf("%d lists, want 5", lists.Load())
	}
	// The watch that brought an event reset retry; the fourth list's failure took its
	// first wait, and the fifth list's success alone (its watch brought nothing yet) did
	// not reset it.
	if w := retry.Next(); w != 2*time.Millisecond {
		t.Errorf("next wait %s: want the second, 2ms", w)
	}
}

// keepWatching runs KeepWatchingNodes against handler until fn has been called calls
// times, and returns the failures it said and the retry it used.
func keepWatching(t *testing.T, handler http.HandlerFunc, calls int) ([]string, *backoff.Doubling) {
	t.Helper()
	f := newFakeAPI(t, handler)
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	retry := backoff.New(time.Millisecond, time.Hour)
	var failures []string
	n := 0
	KeepWatchingNodes(ctx, func() (*Client, error) { return New(f.kubeconfig, "") }, retry,
		func(err error) { failures = append(failures, err.Error()) },
		func([]objects.Node) error {
			if n++; n == calls {
				cancel()
			}
			return nil
		})
	return failures, retry
}

func TestKeepWatchingNodesListsButWatchFails(t *testing.T) {
	// Every list succeeds and every watch is refused: the lists' successes must not reset
	// retry, or the loop would list as fast as its first wait forever, saying the same
	// failure each time.
	failures, retry := keepWatching(t, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Query().Get("watch") == "" {
			serveJSON(nodesJSON)(w, r)
			return
		}
		http.Error(w, `{"kind":"Status","message":"watch is forbidden"}`, http.StatusForbidden)
	}, 4)
	if len(failures) != 1 || !strings.Contains(failures[0], "watch is forbidden") {
		t.Errorf("failures said:\n%s\nwant the watch's once", strings.Join(failures, "\n"))
	}
	// Three failed watches took waits of 1, 2 and 4ms.
	if w := retry.Next(); w != 8*time.Millisecond {
		t.Errorf("next wait %s: want 8ms, the back-off never reset", w)
	}
}

func TestKeepWatchingNodesWatchEndsAtOnce(t *testing.T) {
	// The API server ends every watch at once with no event (a server shutting down, a
	// proxy that cuts streams): a failure, said once and waited on, not a tight loop.
	failures, retry := keepWatching(t, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Query().Get("watch") == "" {
			serveJSON(nodesJSON)(w, r)
			return
		}
		w.WriteHeader(http.StatusOK)
	}, 3)
	if len(failures) != 1 || !strings.Contains(failures[0], ErrWatchEnded.Error()) {
		t.Errorf("failures said:\n%s\nwant that the watch ended, once", strings.Join(failures, "\n"))
	}
	if w := retry.Next(); w != 4*time.Millisecond {
		t.Errorf("next wait %s: want 4ms, after two waits", w)
	}
}
