//go:build integration

package integration

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/plinthos/plinth/pkg/api/machine"
	"github.com/plinthos/plinth/pkg/client"
	"github.com/plinthos/plinth/pkg/clientconfig"
)

// The benchmarks below drive a real local-mode node (machined and its apid child) over
// mTLS, as the node-runtime issue asks. They print figures and assert nothing; `make bench`
// runs them. Each benchmark function starts its own control-plane node once.
//
// The shared helpers in node_test.go and gen_test.go take *testing.T; the variants here
// take testing.TB so that a *testing.B can use them, and otherwise do the same.

// benchNode is a started, ready control-plane node and the admin credentials to reach it.
type benchNode struct {
	*localNode
	admin string                // path of the admin plinthconfig, its endpoint set to the node
	ctx   *clientconfig.Context // the admin context of that plinthconfig
}

// startBenchNode generates a cluster configuration, starts a control-plane node from it
// and waits until `plinthctl get services -o json` shows apid and trustd running and healthy.
func startBenchNode(tb testing.TB) *benchNode {
	tb.Helper()
	c := startCluster(tb, "bench", "bench-1")
	admin, n := c.admin, c.cp
	eventually(tb, 60*time.Second, "apid and trustd running and healthy", func() error {
		svcs, err := services(tb, admin)
		if err != nil {
			return err
		}
		return runningAndHealthy(svcs, "apid", "trustd")
	})
	cc, err := clientconfig.Load(admin)
	if err != nil {
		tb.Fatal(err)
	}
	_, ctx, err := cc.Current()
	if err != nil {
		tb.Fatal(err)
	}
	return &benchNode{localNode: n, admin: admin, ctx: ctx}
}

// dial connects a new client (its own gRPC connection) to the node's API address and makes
// one Version call, so that the TLS handshake is done before any timing starts.
func (n *benchNode) dial(tb testing.TB) *client.Client {
	tb.Helper()
	c, err := client.New(n.ctx, n.endpoint())
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { c.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := c.Machine.Version(ctx, &machine.VersionRequest{}); err != nil {
		tb.Fatalf("first Version call: %v", err)
	}
	return c
}

// BenchmarkVersionRoundTrip measures the Version RPC over mTLS through apid to machined on
// reused connections: one client, and 32 clients each with its own connection calling in
// a loop. Every call's latency is recorded; p50, p99 and calls/s are reported. The
// summary line next to the aim is logged by the parent benchmark, which `go test` shows
// with -v (as `make bench` runs it).
func BenchmarkVersionRoundTrip(b *testing.B) {
	n := startBenchNode(b)
	var summary []string // the figures of each sub-benchmark's final run
	for _, clients := range []int{1, 32} {
		var last string
		b.Run("clients="+strconv.Itoa(clients), func(b *testing.B) {
			conns := make([]*client.Client, clients)
			for i := range conns {
				conns[i] = n.dial(b)
			}
			latencies := make([][]time.Duration, clients)
			var next atomic.Int64
			var failed atomic.Pointer[error]
			var wg sync.WaitGroup
			ctx := context.Background()
			b.ResetTimer()
			start := time.Now()
			for i, c := range conns {
				wg.Add(1)
				go func() {
					defer wg.Done()
					lat := make([]time.Duration, 0, b.N/clients+1)
					for next.Add(1) <= int64(b.N) {
						t0 := time.Now()
						_, err := c.Machine.Version(ctx, &machine.VersionRequest{})
						lat = append(lat, time.Since(t0))
						if err != nil {
							failed.CompareAndSwap(nil, &err)
							break
						}
					}
					latencies[i] = lat
				}()
			}
			wg.Wait()
			elapsed := time.Since(start)
			b.StopTimer()
			if err := failed.Load(); err != nil {
				b.Fatalf("Version: %v", *err)
			}
			all := slices.Concat(latencies...)
			slices.Sort(all)
			p50, p99 := percentile(all, 0.50), percentile(all, 0.99)
			b.ReportMetric(ms(p50), "p50-ms")
			b.ReportMetric(ms(p99), "p99-ms")
			b.ReportMetric(float64(len(all))/elapsed.Seconds(), "calls/s")
			last = fmt.Sprintf("clients=%d: %d calls, p50 %.3f ms, p99 %.3f ms, %.0f calls/s",
				clients, len(all), ms(p50), ms(p99), float64(len(all))/elapsed.Seconds())
		})
		summary = append(summary, last)
	}
	b.Logf("%s (aim: p50 under 2 ms with a reused connection)", strings.Join(summary, "; "))
}

// BenchmarkLogsStream64MiB measures the Read RPC streaming a 64 MiB log file from the
// node's state directory (the local-mode file API root) through apid.
func BenchmarkLogsStream64MiB(b *testing.B) {
	const size = 64 << 20
	n := startBenchNode(b)
	writeLogFile(b, filepath.Join(n.stateDir, "log", "big.log"), size)
	c := n.dial(b)
	b.SetBytes(size)
	for b.Loop() {
		got, err := drain(func(ctx context.Context) (func() ([]byte, error), error) {
			s, err := c.Machine.Read(ctx, &machine.ReadRequest{Path: "/log/big.log"})
			if err != nil {
				return nil, err
			}
			return func() ([]byte, error) { m, err := s.Recv(); return m.GetData(), err }, nil
		})
		if err != nil {
			b.Fatalf("Read /log/big.log: %v", err)
		}
		if got != size {
			b.Fatalf("Read /log/big.log gave %d bytes, want %d", got, size)
		}
	}
}

// BenchmarkLogsTail measures the Logs RPC sending all of machined's in-memory log
// (TailLines -1), whatever it holds, and reports the rate as MB/s.
func BenchmarkLogsTail(b *testing.B) {
	n := startBenchNode(b)
	c := n.dial(b)
	logs := func() (int64, error) {
		return drain(func(ctx context.Context) (func() ([]byte, error), error) {
			s, err := c.Machine.Logs(ctx, &machine.LogsRequest{Service: "machined", TailLines: -1})
			if err != nil {
				return nil, err
			}
			return func() ([]byte, error) { m, err := s.Recv(); return m.GetData(), err }, nil
		})
	}
	first, err := logs()
	if err != nil {
		b.Fatalf("Logs machined: %v", err)
	}
	var total int64
	for b.Loop() {
		got, err := logs()
		if err != nil {
			b.Fatalf("Logs machined: %v", err)
		}
		total += got
	}
	b.ReportMetric(float64(total)/1e6/b.Elapsed().Seconds(), "MB/s")
	b.ReportMetric(float64(total)/float64(b.N), "log-bytes/op")
	b.Logf("machined's in-memory log held %d bytes at the first call", first)
}

// idleRSS holds the figures of BenchmarkIdleRSS, which measures once however often the
// benchmark function is called.
var idleRSS struct {
	done                  bool
	machined, apid, total float64
}

// BenchmarkIdleRSS starts a node, waits for its services, lets it idle 5 s and reads the
// resident set size of machined and of its apid child (MB here is MiB, 2^20 bytes). b.N
// is ignored: the work is done once; the timed part is the 5 s of idling, so that a
// benchtime of up to 5 s runs the function once.
func BenchmarkIdleRSS(b *testing.B) {
	if !idleRSS.done {
		b.StopTimer()
		n := startBenchNode(b)
		b.StartTimer()
		time.Sleep(5 * time.Second)
		b.StopTimer()
		pid := n.cmd.Process.Pid
		apid, err := childWith(pid, "apid")
		if err != nil {
			b.Fatal(err)
		}
		m, err := vmRSS(pid)
		if err != nil {
			b.Fatal(err)
		}
		a, err := vmRSS(apid)
		if err != nil {
			b.Fatal(err)
		}
		idleRSS.machined, idleRSS.apid, idleRSS.total = mib(m), mib(a), mib(m+a)
		idleRSS.done = true
		b.Logf("idle RSS: machined (pid %d) %.1f MB, apid (pid %d) %.1f MB, total %.1f MB (aim: machined+apid under 40 MB)",
			pid, idleRSS.machined, apid, idleRSS.apid, idleRSS.total)
	}
	b.ReportMetric(idleRSS.machined, "machined-MB")
	b.ReportMetric(idleRSS.apid, "apid-MB")
	b.ReportMetric(idleRSS.total, "total-MB")
}

// drain opens a server stream with open and reads it to its end, returning the number of
// data bytes received.
func drain(open func(ctx context.Context) (func() ([]byte, error), error)) (int64, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	recv, err := open(ctx)
	if err != nil {
		return 0, err
	}
	var n int64
	for {
		data, err := recv()
		n += int64(len(data))
		if errors.Is(err, io.EOF) {
			return n, nil
		}
		if err != nil {
			return n, err
		}
	}
}

// writeLogFile writes size bytes of log-like lines to path.
func writeLogFile(tb testing.TB, path string, size int) {
	tb.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		tb.Fatal(err)
	}
	f, err := os.Create(path)
	if err != nil {
		tb.Fatal(err)
	}
	w := bufio.NewWriterSize(f, 1<<20)
	base := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	var line []byte
	for i, written := 0, 0; written < size; i++ {
		line = fmt.Appendf(line[:0], "time=%s level=INFO msg=\"benchmark line\" component=bench seq=%d payload=%s\n",
			base.Add(time.Duration(i)*time.Millisecond).Format(time.RFC3339Nano), i, strings.Repeat("x", 64))
		if rest := size - written; len(line) > rest {
			line = append(line[:rest-1], '\n')
		}
		if _, err := w.Write(line); err != nil {
			tb.Fatal(err)
		}
		written += len(line)
	}
	if err := w.Flush(); err != nil {
		tb.Fatal(err)
	}
	if err := f.Close(); err != nil {
		tb.Fatal(err)
	}
}

// percentile returns the nearest-rank q-quantile of sorted durations.
func percentile(sorted []time.Duration, q float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(math.Ceil(q*float64(len(sorted)))) - 1
	return sorted[max(0, min(i, len(sorted)-1))]
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

func mib(n int64) float64 { return float64(n) / (1 << 20) }

// vmRSS returns the resident set size of a process, in bytes, from /proc/PID/status.
func vmRSS(pid int) (int64, error) {
	data, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "status"))
	if err != nil {
		return 0, err
	}
	for l := range strings.Lines(string(data)) {
		if rest, ok := strings.CutPrefix(l, "VmRSS:"); ok {
			f := strings.Fields(rest)
			if len(f) != 2 || f[1] != "kB" {
				return 0, fmt.Errorf("pid %d: unexpected VmRSS line %q", pid, l)
			}
			kb, err := strconv.ParseInt(f[0], 10, 64)
			return kb << 10, err
		}
	}
	return 0, fmt.Errorf("pid %d: no VmRSS in /proc/%d/status", pid, pid)
}

// childWith finds the child process of parent whose command line contains word.
func childWith(parent int, word string) (int, error) {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return 0, err
	}
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		stat, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue // the process went away
		}
		// The command name, in parentheses, may hold spaces: the fields after it are
		// state, ppid, ...
		i := bytes.LastIndexByte(stat, ')')
		if i < 0 {
			continue
		}
		f := strings.Fields(string(stat[i+1:]))
		if len(f) < 2 || f[1] != strconv.Itoa(parent) {
			continue
		}
		cmdline, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err != nil {
			continue
		}
		if slices.Contains(strings.Split(string(cmdline), "\x00"), word) {
			return pid, nil
		}
	}
	return 0, fmt.Errorf("no child of pid %d with %q in its command line", parent, word)
}

// testing.TB variants of the shared helpers.
