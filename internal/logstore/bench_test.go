package logstore

import (
	"context"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
)

// BenchmarkWrite measures writing 100-byte lines, one line per Write, to a log with a
// file (ring and file buffer, rotation at the default size).
func BenchmarkWrite(b *testing.B) {
	s, err := Open(b.TempDir(), Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	l := s.Log("bench")
	line := []byte(strings.Repeat("x", 99) + "\n")
	b.SetBytes(int64(len(line)))
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		l.Write(line)
	}
	if err := l.Flush(); err != nil {
		b.Fatal(err)
	}
}

// BenchmarkWriteMemory is BenchmarkWrite without a file.
func BenchmarkWriteMemory(b *testing.B) {
	s, err := Open("", Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	l := s.Log("bench")
	line := []byte(strings.Repeat("x", 99) + "\n")
	b.SetBytes(int64(len(line)))
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		l.Write(line)
	}
}

// BenchmarkFollow64MiB streams 64 MiB of 100-byte lines from a writer through Follow to a
// reader. The writer stays within half a ring of the reader so that nothing is dropped
// and the figure is the delivered throughput.
func BenchmarkFollow64MiB(b *testing.B) {
	const total = 64 << 20
	line := []byte(strings.Repeat("f", 99) + "\n")
	lines := total / len(line)
	b.SetBytes(int64(lines * len(line)))
	for range b.N {
		s, err := Open(b.TempDir(), Options{})
		if err != nil {
			b.Fatal(err)
		}
		l := s.Log("bench")
		ctx, cancel := context.WithCancel(context.Background())
		ch := l.Follow(ctx, 0)
		var received atomic.Int64
		done := make(chan struct{})
		go func() {
			defer close(done)
			for got := range ch {
				if strings.HasPrefix(got, "... ") {
					b.Errorf("follower dropped lines: %s", got)
				}
				if received.Add(1) == int64(lines) {
					return
				}
			}
		}()
		window := int64(DefaultRingBytes / (len(line) + lineOverhead) / 2)
		for i := range lines {
			for int64(i)-received.Load() > window {
				runtime.Gosched() // let the reader catch up
			}
			l.Write(line)
		}
		<-done
		cancel()
		s.Close()
	}
}
