package localcluster

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/plinthos/plinth/pkg/secrets"
)

func TestWaitAndBootstrap(t *testing.T) {
	fastWait(t)
	b, err := secrets.Generate(time.Now())
	if err != nil {
		t.Fatal(err)
	}
	cc := clientContextFor(t, b)

	addr := freeAddr(t)
	node := &fakeNode{unready: 2}
	serveFakeNode(t, b.CAs.OS.Crt, b.CAs.OS.Key, addr, 400*time.Millisecond, node)
	var out bytes.Buffer
	if err := waitAndBootstrap(t.Context(), &out, cc, addr, "plinth-controlplane-1", 30*time.Second); err != nil {
		t.Fatalf("waitAndBootstrap: %v\n%s", err, out.String())
	}
	s := out.String()
	if !strings.Contains(s, "waiting for the node API of plinth-controlplane-1 on "+addr+" .") || !strings.Contains(s, "up after") ||
		!strings.Contains(s, "plinth-controlplane-1: etcd is starting") {
		t.Errorf("output:\n%s", s)
	}
	if node.bootstraps != 3 {
		t.Errorf("%d bootstrap calls, want 3 (two unready)", node.bootstraps)
	}

	// A node bootstrapped before is no failure.
	addr = freeAddr(t)
	serveFakeNode(t, b.CAs.OS.Crt, b.CAs.OS.Key, addr, 0, &fakeNode{already: true})
	out.Reset()
	if err := waitAndBootstrap(t.Context(), &out, cc, addr, "n", 30*time.Second); err != nil || !strings.Contains(out.String(), "bootstrapped before") {
		t.Errorf("already bootstrapped: %v\n%s", err, out.String())
	}

	// Nobody answers: the timeout says so.
	out.Reset()
	err = waitAndBootstrap(t.Context(), &out, cc, freeAddr(t), "n", 500*time.Millisecond)
	if err == nil || !strings.Contains(err.Error(), "did not answer within 500ms") {
		t.Errorf("no node: %v", err)
	}
}
