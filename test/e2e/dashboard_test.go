//go:build e2e

package e2e

import (
	"bytes"
	"context"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"time"
)

// lockedBuffer is a buffer a command writes to while the test reads it.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// checkDashboard runs plinthctl dashboard against the cluster, with keys on its standard
// input, until it shows both nodes' services and the cluster's Nodes Ready, then quits it
// with q and checks that it ends cleanly.
func checkDashboard(e *env, worker, cpName, workerName string) {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, e.plinthctl, "dashboard", "--interval", "1s")
	cmd.Env = append(os.Environ(), "HOME="+e.home, "KUBECONFIG="+filepath.Join(e.home, ".kube", "config"), "TERM=xterm")
	keys, err := cmd.StdinPipe()
	if err != nil {
		e.t.Fatal(err)
	}
	var out lockedBuffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		e.t.Fatal(err)
	}
	waitOut := func(what ...string) bool {
		deadline := time.Now().Add(time.Minute)
		for time.Now().Before(deadline) {
			s := out.String()
			all := true
			for _, w := range what {
				all = all && strings.Contains(s, w)
			}
			if all {
				return true
			}
			time.Sleep(200 * time.Millisecond)
		}
		return false
	}
	if !waitOut("node "+cpName, "Ready", "pod  kube-apiserver-"+cpName, "kubelet", "last lines of") {
		e.t.Errorf("the dashboard did not show the control plane and the cluster:\n%s", tail(out.String(), 3000))
	}
	_, _ = io.WriteString(keys, "l") // the next node: the worker's tab is chosen
	if !waitOut("[" + worker + " " + workerName + "]") {
		e.t.Errorf("the dashboard did not choose the worker:\n%s", tail(out.String(), 3000))
	}
	_, _ = io.WriteString(keys, "q")
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			e.t.Errorf("the dashboard did not end cleanly on q: %v\n%s", err, tail(out.String(), 2000))
		}
	case <-time.After(30 * time.Second):
		cancel()
		e.t.Errorf("the dashboard did not quit on q within 30 s")
	}
}

func tail(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}
