package localcluster

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/plinthos/plinth/internal/provision/provisiontest"
	"github.com/plinthos/plinth/pkg/secrets"
)

func TestWaitAndBootstrap(t *testing.T) {
	fastWait(t)
	b, err := secrets.Generate(time.Now())
	if err != nil {
		t.Fatal(err)
	}
	cc := provisiontest.AdminContext(t, b)

	addr := provisiontest.FreeAddr(t)
	node := &provisiontest.Node{Unready: 2}
	provisiontest.ServeNode(t, b.CAs.OS.Crt, b.CAs.OS.Key, addr, 400*time.Millisecond, node)
	var out bytes.Buffer
	if err := waitAndBootstrap(t.Context(), &out, cc, addr, "plinth-controlplane-1", 30*time.Second); err != nil {
		t.Fatalf("waitAndBootstrap: %v\n%s", err, out.String())
	}
	s := out.String()
	if !strings.Contains(s, "waiting for the node API of plinth-controlplane-1 on "+addr+" .") || !strings.Contains(s, "up after") ||
		!strings.Contains(s, "plinth-controlplane-1: etcd is starting") {
		t.Errorf("output:\n%s", s)
	}
	if node.Bootstraps() != 3 {
		t.Errorf("%d bootstrap calls, want 3 (two unready)", node.Bootstraps())
	}

	// A node bootstrapped before is no failure.
	addr = provisiontest.FreeAddr(t)
	provisiontest.ServeNode(t, b.CAs.OS.Crt, b.CAs.OS.Key, addr, 0, &provisiontest.Node{Already: true})
	out.Reset()
	if err := waitAndBootstrap(t.Context(), &out, cc, addr, "n", 30*time.Second); err != nil || !strings.Contains(out.String(), "bootstrapped before") {
		t.Errorf("already bootstrapped: %v\n%s", err, out.String())
	}

	// Nobody answers: the timeout says so.
	out.Reset()
	err = waitAndBootstrap(t.Context(), &out, cc, provisiontest.FreeAddr(t), "n", 500*time.Millisecond)
	if err == nil || !strings.Contains(err.Error(), "did not answer within 500ms") {
		t.Errorf("no node: %v", err)
	}
}

// fastWait makes the waits of the test short.
func fastWait(t *testing.T) {
	oldInterval, oldAttempt := waitInterval, attemptTimeout
	waitInterval, attemptTimeout = 50*time.Millisecond, time.Second
	t.Cleanup(func() { waitInterval, attemptTimeout = oldInterval, oldAttempt })
}
