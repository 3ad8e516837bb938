package logstore

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

func openStore(t *testing.T, dir string, opts Options) *Store {
	t.Helper()
	s, err := Open(dir, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// recv receives one line or fails after a deadline.
func recv(t *testing.T, ch <-chan string) string {
	t.Helper()
	select {
	case line, ok := <-ch:
		if !ok {
			t.Fatal("follow channel closed")
		}
		return line
	case <-time.After(5 * time.Second):
		t.Fatal("no line within 5s")
	}
	return ""
}

func TestValidName(t *testing.T) {
	for _, name := range []string{"etcd", "kubelet", "a", "0x", "cri.containerd", "ext-foo_1"} {
		if err := ValidName(name); err != nil {
			t.Errorf("ValidName(%q) = %v", name, err)
		}
	}
	for _, name := range []string{"", "Etcd", ".x", "-x", "a/b", "a b", "../x", "x.previous", strings.Repeat("a", 201)} {
		if err := ValidName(name); !errors.Is(err, ErrInvalidName) {
			t.Errorf("ValidName(%q) = %v, want ErrInvalidName", name, err)
		}
	}
}

func TestInvalidNameIsMemoryOnly(t *testing.T) {
	dir := t.TempDir()
	s := openStore(t, dir, Options{})
	l := s.Log("../evil")
	if !errors.Is(l.Err(), ErrInvalidName) {
		t.Fatalf("Err = %v", l.Err())
	}
	fmt.Fprintln(l, "hello")
	if got := l.Tail(-1); len(got) != 1 || got[0] != "hello" {
		t.Fatalf("Tail = %q", got)
	}
	s.Close()
	entries, _ := os.ReadDir(dir)
	if len(entries) != 0 {
		t.Fatalf("files written for invalid name: %v", entries)
	}
}

func TestLineSplittingOfPartialWrites(t *testing.T) {
	s := openStore(t, "", Options{})
	l := s.Log("svc")
	for _, p := range []string{"he", "llo\nwor", "ld\n\nlast", " part"} {
		if n, err := l.Write([]byte(p)); n != len(p) || err != nil {
			t.Fatalf("Write = %d, %v", n, err)
		}
	}
	if got, want := l.Tail(-1), []string{"hello", "world", ""}; !equal(got, want) {
		t.Fatalf("Tail = %q, want %q", got, want)
	}
	if err := l.Flush(); err != nil {
		t.Fatal(err)
	}
	if got, want := l.Tail(2), []string{"", "last part"}; !equal(got, want) {
		t.Fatalf("Tail(2) = %q, want %q", got, want)
	}
	if got := l.Tail(0); len(got) != 0 {
		t.Fatalf("Tail(0) = %q", got)
	}
	if got := l.Tail(100); len(got) != 4 {
		t.Fatalf("Tail(100) = %q", got)
	}
}

func TestLongLinesAreCut(t *testing.T) {
	s := openStore(t, "", Options{})
	l := s.Log("svc")
	long := strings.Repeat("x", MaxLineBytes*2+10)
	// Written in pieces without newline, then with one.
	for i := 0; i < len(long); i += 1000 {
		l.Write([]byte(long[i:min(i+1000, len(long))]))
	}
	l.Write([]byte("\n"))
	got := l.Tail(-1)
	if len(got) != 3 || len(got[0]) != MaxLineBytes || len(got[1]) != MaxLineBytes || len(got[2]) != 10 {
		lens := []int{}
		for _, g := range got {
			lens = append(lens, len(g))
		}
		t.Fatalf("line lengths %v", lens)
	}
	// Exactly MaxLineBytes followed by a newline is one line, with no empty line after.
	l.Write([]byte(strings.Repeat("y", MaxLineBytes)))
	l.Write([]byte("\nz\n"))
	got = l.Tail(2)
	if len(got[0]) != MaxLineBytes || got[1] != "z" {
		t.Fatalf("Tail(2) lengths %d %q", len(got[0]), got[1])
	}
}

func TestRingBoundedByBytes(t *testing.T) {
	const ring = 1000
	s := openStore(t, "", Options{RingBytes: ring})
	l := s.Log("svc")
	for i := range 500 {
		fmt.Fprintf(l, "line %04d %s\n", i, strings.Repeat("z", i%50))
	}
	got := l.Tail(-1)
	total := 0
	for _, line := range got {
		total += len(line) + lineOverhead
	}
	if total > ring {
		t.Fatalf("ring holds %d bytes, bound is %d", total, ring)
	}
	// Nearly full: adding the next older line would have exceeded it.
	if total < ring-(len("line 0000 ")+50+lineOverhead) {
		t.Fatalf("ring holds only %d bytes of %d", total, ring)
	}
	if !strings.HasPrefix(got[len(got)-1], "line 0499 ") {
		t.Fatalf("newest line is %q", got[len(got)-1])
	}
	for i := 1; i < len(got); i++ {
		if got[i-1] >= got[i] {
			t.Fatalf("lines out of order: %q then %q", got[i-1], got[i])
		}
	}
	// A line bigger than the ring is cut to fit.
	l.Write([]byte(strings.Repeat("b", 5000) + "\n"))
	for _, line := range l.Tail(-1) {
		if len(line)+lineOverhead > ring {
			t.Fatalf("line of %d bytes in a ring of %d", len(line), ring)
		}
	}
}

func TestFileAndRotation(t *testing.T) {
	dir := t.TempDir()
	s := openStore(t, dir, Options{FileBytes: 1000, Files: 2})
	l := s.Log("svc")
	line := strings.Repeat("a", 99) // 100 bytes with the newline
	for i := range 95 {
		fmt.Fprintf(l, "%02d%s\n", i, line[2:])
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	cur := readFile(t, filepath.Join(dir, "svc.log"))
	r1 := readFile(t, filepath.Join(dir, "svc.log.1"))
	r2 := readFile(t, filepath.Join(dir, "svc.log.2"))
	if _, err := os.Stat(filepath.Join(dir, "svc.log.3")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("svc.log.3 exists: %v", err)
	}
	for name, c := range map[string]string{"log": cur, "log.1": r1, "log.2": r2} {
		if len(c) > 1000 {
			t.Errorf("%s has %d bytes, bound 1000", name, len(c))
		}
	}
	// 95 lines, 10 per file: .2 holds 70-79, .1 80-89, current 90-94.
	if !strings.HasPrefix(r2, "70") || !strings.HasPrefix(r1, "80") || !strings.HasPrefix(cur, "90") || len(cur) != 500 {
		t.Fatalf("unexpected rotation: .2 starts %q, .1 starts %q, current starts %q (%d bytes)", r2[:2], r1[:2], cur[:2], len(cur))
	}
	files := l.Files()
	if len(files) != 3 {
		t.Fatalf("Files = %v", files)
	}
}

func TestRotationKeepingNone(t *testing.T) {
	dir := t.TempDir()
	s := openStore(t, dir, Options{FileBytes: 250, Files: -1})
	l := s.Log("svc")
	for i := range 10 {
		fmt.Fprintf(l, "line %03d %s\n", i, strings.Repeat("q", 89))
	}
	s.Close()
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Fatalf("files: %v", entries)
	}
	if got := readFile(t, filepath.Join(dir, "svc.log")); !strings.HasPrefix(got, "line 008") {
		t.Fatalf("svc.log = %q", got)
	}
}

func TestFlushIntervalWritesFile(t *testing.T) {
	dir := t.TempDir()
	s := openStore(t, dir, Options{FlushInterval: 10 * time.Millisecond})
	l := s.Log("svc")
	fmt.Fprintln(l, "soon on disk")
	deadline := time.Now().Add(5 * time.Second)
	for {
		b, _ := os.ReadFile(filepath.Join(dir, "svc.log"))
		if string(b) == "soon on disk\n" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("file holds %q after 5s", b)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestPreviousBootAfterReopen(t *testing.T) {
	dir := t.TempDir()
	opts := Options{FileBytes: 300, Files: 2}

	// Boot 1.
	s1, err := Open(dir, opts)
	if err != nil {
		t.Fatal(err)
	}
	l := s1.Log("etcd")
	if _, err := l.Previous(); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("Previous on first boot: %v", err)
	}
	var want strings.Builder
	for i := range 7 { // 7 lines of 100 bytes: .log.2, .log.1 and .log
		line := fmt.Sprintf("boot1 %02d %s", i, strings.Repeat("x", 90))
		fmt.Fprintln(l, line)
		want.WriteString(line + "\n")
	}
	fmt.Fprint(l, "unfinished")
	want.WriteString("unfinished\n")
	fmt.Fprintln(s1.Log("kubelet"), "kubelet boot1")
	s1.Close()

	// Boot 2: boot 1's files become previous.
	s2, err := Open(dir, opts)
	if err != nil {
		t.Fatal(err)
	}
	l = s2.Log("etcd")
	if got := l.Tail(-1); len(got) != 0 {
		t.Fatalf("memory not empty after reboot: %q", got)
	}
	rc, err := l.Previous()
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(rc)
	rc.Close()
	if string(got) != want.String() {
		t.Fatalf("previous boot's log:\n%s\nwant:\n%s", got, want.String())
	}
	fmt.Fprintln(l, "boot2")
	s2.Close()

	// Boot 3: boot 2 replaces boot 1 as previous; kubelet wrote nothing in boot 2, so its
	// boot 1 log stays the previous one.
	s3 := openStore(t, dir, opts)
	rc, err = s3.Log("etcd").Previous()
	if err != nil {
		t.Fatal(err)
	}
	got, _ = io.ReadAll(rc)
	rc.Close()
	if string(got) != "boot2\n" {
		t.Fatalf("previous after second reboot = %q", got)
	}
	rc, err = s3.Log("kubelet").Previous()
	if err != nil {
		t.Fatal(err)
	}
	got, _ = io.ReadAll(rc)
	rc.Close()
	if string(got) != "kubelet boot1\n" {
		t.Fatalf("kubelet previous = %q", got)
	}
	entries, _ := os.ReadDir(dir)
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	if strings.Join(names, " ") != "etcd.previous.log kubelet.previous.log" {
		t.Fatalf("directory holds %v", names)
	}
}

func TestFollowTailThenLive(t *testing.T) {
	s := openStore(t, "", Options{})
	l := s.Log("svc")
	for i := range 5 {
		fmt.Fprintf(l, "old %d\n", i)
	}
	ctx, cancel := context.WithCancel(context.Background())
	ch := l.Follow(ctx, 2)
	if got := recv(t, ch); got != "old 3" {
		t.Fatalf("first = %q", got)
	}
	if got := recv(t, ch); got != "old 4" {
		t.Fatalf("second = %q", got)
	}
	fmt.Fprint(l, "new ")
	fmt.Fprint(l, "0\nnew 1\n")
	if got := recv(t, ch); got != "new 0" {
		t.Fatalf("third = %q", got)
	}
	if got := recv(t, ch); got != "new 1" {
		t.Fatalf("fourth = %q", got)
	}
	cancel()
	for range ch { // drains and ends: the channel is closed after cancel
	}

	// tail 0 gives only new lines; tail -1 gives all.
	ctx, cancel = context.WithCancel(context.Background())
	defer cancel()
	only := l.Follow(ctx, 0)
	all := l.Follow(ctx, -1)
	fmt.Fprintln(l, "later")
	if got := recv(t, only); got != "later" {
		t.Fatalf("tail 0 got %q", got)
	}
	if got := recv(t, all); got != "old 0" {
		t.Fatalf("tail -1 got %q", got)
	}
}

func TestFollowEndsOnClose(t *testing.T) {
	s, err := Open("", Options{})
	if err != nil {
		t.Fatal(err)
	}
	l := s.Log("svc")
	ch := l.Follow(context.Background(), 0)
	fmt.Fprint(l, "partial")
	s.Close()
	if got := recv(t, ch); got != "partial" {
		t.Fatalf("got %q", got)
	}
	select {
	case _, ok := <-ch:
		if ok {
			t.Fatal("more lines after close")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("follower not ended by Close")
	}
	// Follow on a closed log gives the tail and ends.
	ch = l.Follow(context.Background(), -1)
	if got := recv(t, ch); got != "partial" {
		t.Fatalf("got %q", got)
	}
	if _, ok := <-ch; ok {
		t.Fatal("not closed")
	}
}

func TestSlowFollowerDoesNotBlockWriter(t *testing.T) {
	dir := t.TempDir()
	s := openStore(t, dir, Options{RingBytes: 64 << 10})
	l := s.Log("svc")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ch := l.Follow(ctx, 0) // never read until the writer is done

	line := []byte(strings.Repeat("w", 99) + "\n")
	done := make(chan struct{})
	go func() {
		defer close(done)
		for range (10 << 20) / len(line) {
			l.Write(line)
		}
		fmt.Fprintln(l, "the end")
	}()
	select {
	case <-done:
	case <-time.After(15 * time.Second):
		t.Fatal("writer blocked by a follower that does not read")
	}
	// The follower got what fitted into its channel, then a marker, then the newest lines.
	sawMarker := false
	for {
		got := recv(t, ch)
		if strings.HasPrefix(got, "... ") && strings.HasSuffix(got, " lines dropped ...") {
			sawMarker = true
		}
		if got == "the end" {
			break
		}
	}
	if !sawMarker {
		t.Fatal("no dropped marker")
	}
}

func TestConcurrentWriters(t *testing.T) {
	dir := t.TempDir()
	s := openStore(t, dir, Options{RingBytes: 8 << 20})
	l := s.Log("svc")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	follow := l.Follow(ctx, 0)
	var followed []string
	followDone := make(chan struct{})
	go func() {
		defer close(followDone)
		for line := range follow {
			followed = append(followed, line)
			if len(followed) == 8*1000 {
				return
			}
		}
	}()

	var wg sync.WaitGroup
	for w := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 1000 {
				fmt.Fprintf(l, "writer %d line %04d\n", w, i)
			}
		}()
	}
	wg.Wait()
	<-followDone
	check := func(what string, lines []string) {
		t.Helper()
		if len(lines) != 8000 {
			t.Fatalf("%s: %d lines, want 8000", what, len(lines))
		}
		next := make([]int, 8)
		for _, line := range lines {
			var w, i int
			if _, err := fmt.Sscanf(line, "writer %d line %d", &w, &i); err != nil {
				t.Fatalf("%s: torn line %q", what, line)
			}
			if i != next[w] {
				t.Fatalf("%s: writer %d line %d, want %d", what, w, i, next[w])
			}
			next[w]++
		}
	}
	check("ring", l.Tail(-1))
	check("follower", followed)
	s.Close()
	check("file", strings.Split(strings.TrimSuffix(readFile(t, filepath.Join(dir, "svc.log")), "\n"), "\n"))
}

func TestWriteAfterClose(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	l := s.Log("svc")
	fmt.Fprintln(l, "before")
	s.Close()
	fmt.Fprintln(l, "after")
	fmt.Fprintln(s.Log("other"), "after too")
	if got := l.Tail(-1); !equal(got, []string{"before", "after"}) {
		t.Fatalf("Tail = %q", got)
	}
	if got := readFile(t, filepath.Join(dir, "svc.log")); got != "before\n" {
		t.Fatalf("file = %q", got)
	}
	if _, err := os.Stat(filepath.Join(dir, "other.log")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("other.log written after Close: %v", err)
	}
}

func TestFileErrorKeepsMemory(t *testing.T) {
	dir := t.TempDir()
	s := openStore(t, dir, Options{})
	l := s.Log("svc")
	// A directory where the file should be makes opening it fail.
	if err := os.Mkdir(filepath.Join(dir, "svc.log"), 0o755); err != nil {
		t.Fatal(err)
	}
	fmt.Fprintln(l, "still here")
	if err := l.Flush(); err == nil {
		t.Fatal("Flush reported no error")
	}
	if got := l.Tail(-1); !equal(got, []string{"still here"}) {
		t.Fatalf("Tail = %q", got)
	}
}

func equal(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestSizes(t *testing.T) {
	dir := t.TempDir()
	s := openStore(t, dir, Options{})
	l := s.Log("kubelet")
	if _, err := l.Write([]byte("one line\nanother\n")); err != nil {
		t.Fatal(err)
	}
	if err := l.Flush(); err != nil {
		t.Fatal(err)
	}
	if got := s.Sizes(); got["kubelet"] != int64(len("one line\nanother\n")) {
		t.Errorf("Sizes = %v, want kubelet %d", got, len("one line\nanother\n"))
	}
	if got := openStore(t, "", Options{}).Sizes(); len(got) != 0 {
		t.Errorf("a memory-only store has sizes %v", got)
	}
}
