package watchdog

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// A regular file stands in for the device: what Feed writes is what the driver would read.
func TestFeedFeedsThenStops(t *testing.T) {
	dev := filepath.Join(t.TempDir(), "watchdog")
	if err := os.WriteFile(dev, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- Feed(ctx, dev, 10*time.Millisecond, slog.New(slog.DiscardHandler)) }()
	time.Sleep(100 * time.Millisecond)
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(dev)
	if err != nil {
		t.Fatal(err)
	}
	if len(data) < 3 || !strings.HasSuffix(string(data), "V") || strings.Count(string(data), "\x00") != len(data)-1 {
		t.Fatalf("the device got %q: want feeds, then the magic close", data)
	}
}

func TestArmAndFeedWithoutADevice(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "watchdog")
	if err := Arm(missing, Timeout); !os.IsNotExist(err) {
		t.Fatalf("Arm of a missing device: %v", err)
	}
	if err := Feed(context.Background(), missing, time.Second, slog.New(slog.DiscardHandler)); !os.IsNotExist(err) {
		t.Fatalf("Feed of a missing device: %v", err)
	}
	// A file that is not a watchdog takes no timeout.
	notDev := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(notDev, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := Arm(notDev, Timeout); err == nil || !strings.Contains(err.Error(), "timeout") {
		t.Fatalf("Arm of a regular file: %v", err)
	}
}
