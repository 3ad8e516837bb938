package machined

import (
	"context"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
)

// serveUnix serves h on a Unix socket in a temporary directory and returns its path.
func serveUnix(t *testing.T, h http.Handler) string {
	t.Helper()
	socket := filepath.Join(t.TempDir(), "debug.sock")
	l, err := net.Listen("unix", socket)
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: h}
	go func() { _ = srv.Serve(l) }() // ends with Close below
	t.Cleanup(func() { srv.Close() })
	return socket
}

func TestCollectContainerdGarbageAsksForACollection(t *testing.T) {
	var asked atomic.Int32
	socket := serveUnix(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/debug/pprof/heap" && r.URL.Query().Get("gc") == "1" {
			asked.Add(1)
		}
		_, _ = w.Write([]byte("profile"))
	}))
	if err := collectContainerdGarbage(context.Background(), socket); err != nil {
		t.Fatal(err)
	}
	if asked.Load() != 1 {
		t.Fatalf("the debug server was asked for a collection %d times, want 1", asked.Load())
	}
}

func TestCollectContainerdGarbageReportsFailures(t *testing.T) {
	socket := serveUnix(t, http.NotFoundHandler())
	err := collectContainerdGarbage(context.Background(), socket)
	if err == nil || !strings.Contains(err.Error(), "404") {
		t.Fatalf("err = %v, want the 404", err)
	}
	err = collectContainerdGarbage(context.Background(), filepath.Join(t.TempDir(), "none.sock"))
	if err == nil || !strings.Contains(err.Error(), "garbage collection") {
		t.Fatalf("err = %v, want a connection error that says what was asked", err)
	}
}
