package logstore

import (
	"context"
	"fmt"
)

// followBatch is how many lines a follower copies out of the ring per lock.
const followBatch = 256

type follower struct {
	wake chan struct{}
}

// wakeFollowers tells every follower that there is something new. l.mu is held.
func (l *Log) wakeFollowers() {
	for f := range l.followers {
		select {
		case f.wake <- struct{}{}:
		default:
		}
	}
}

// DroppedMarker returns the line a follower receives in place of n lines it was too slow
// to read before they left the ring.
func DroppedMarker(n uint64) string {
	return fmt.Sprintf("... %d lines dropped ...", n)
}

// Follow returns a channel that receives the last tail lines held in memory (tail < 0: all
// of them, 0: none) and then every new line, until ctx is cancelled or the store is closed
// and everything written before was delivered; then the channel is closed.
//
// A follower never slows writers down: it reads from the ring, and if it falls more than
// the ring behind it receives DroppedMarker(n) instead of the n lines it missed.
func (l *Log) Follow(ctx context.Context, tail int) <-chan string {
	out := make(chan string, 64)
	f := &follower{wake: make(chan struct{}, 1)}
	l.mu.Lock()
	if tail < 0 || tail > l.count {
		tail = l.count
	}
	cursor := l.next - uint64(tail)
	l.followers[f] = struct{}{}
	l.mu.Unlock()
	go l.follow(ctx, f, cursor, out)
	return out
}

func (l *Log) follow(ctx context.Context, f *follower, cursor uint64, out chan<- string) {
	defer close(out)
	defer func() {
		l.mu.Lock()
		delete(l.followers, f)
		l.mu.Unlock()
	}()
	batch := make([]string, 0, followBatch)
	for {
		var dropped uint64
		l.mu.Lock()
		if cursor < l.first {
			dropped = l.first - cursor
			cursor = l.first
		}
		n := min(l.next-cursor, followBatch)
		start := l.head + int(cursor-l.first)
		for i := range int(n) {
			batch = append(batch, l.lines[(start+i)%len(l.lines)])
		}
		cursor += n
		closed := l.closed
		l.mu.Unlock()

		if dropped > 0 {
			select {
			case out <- DroppedMarker(dropped):
			case <-ctx.Done():
				return
			}
		}
		for i, line := range batch {
			select {
			case out <- line:
			case <-ctx.Done():
				return
			}
			batch[i] = ""
		}
		batch = batch[:0]
		if n > 0 {
			continue
		}
		if closed {
			return
		}
		select {
		case <-f.wake:
		case <-ctx.Done():
			return
		}
	}
}
