//go:build e2e

package e2e

import (
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"time"

	"github.com/vishvananda/netlink"

	"github.com/plinthos/plinth/internal/netnstest"
)

// The stand-in for the world beyond the machine: a network namespace the test makes, linked
// to the host by a veth pair, with the host routing to it. A cluster whose traffic can leave
// through the host (NAT, forwarding) reaches it; an isolated one must not.
const (
	outsideHost = "10.5.250.1/30"
	outsideAddr = "10.5.250.2"
	outsideLink = "plinthe2e-out"
	outsidePeer = "plinthe2e-in"
)

// escapePod tries, from the worker, an address outside the cluster's network.
const escapePod = `apiVersion: v1
kind: Pod
metadata:
  name: escape
spec:
  nodeSelector: {kubernetes.io/hostname: %s}
  restartPolicy: Never
  containers:
  - name: escape
    image: plinth.local/testbin:v1
    imagePullPolicy: Never
    args: ["get", "http://%s:8080/"]
`

// outside makes the namespace with a TCP listener on outsideAddr:8080 and returns the
// count of connections it accepted. It needs root.
func outside(e *env) *atomic.Int64 {
	e.t.Helper()
	if os.Geteuid() != 0 {
		e.t.Fatal("the isolation check needs root: it makes a network namespace")
	}
	ns, h := netnstest.New(e.t)
	_ = netlink.LinkDel(&netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: outsideLink}}) // left by a killed run
	veth := &netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: outsideLink}, PeerName: outsidePeer}
	if err := netlink.LinkAdd(veth); err != nil {
		e.t.Fatalf("make the outside link: %v", err)
	}
	e.t.Cleanup(func() { _ = netlink.LinkDel(veth) })
	peer, err := netlink.LinkByName(outsidePeer)
	if err != nil {
		e.t.Fatal(err)
	}
	if err := netlink.LinkSetNsFd(peer, int(ns)); err != nil {
		e.t.Fatal(err)
	}
	hostAddr, _ := netlink.ParseAddr(outsideHost)
	if err := netlink.AddrAdd(veth, hostAddr); err != nil {
		e.t.Fatal(err)
	}
	if err := netlink.LinkSetUp(veth); err != nil {
		e.t.Fatal(err)
	}
	inner, err := h.LinkByName(outsidePeer)
	if err != nil {
		e.t.Fatal(err)
	}
	innerAddr, _ := netlink.ParseAddr(outsideAddr + "/30")
	if err := h.AddrAdd(inner, innerAddr); err != nil {
		e.t.Fatal(err)
	}
	if err := h.LinkSetUp(inner); err != nil {
		e.t.Fatal(err)
	}
	var l net.Listener
	if err := netnstest.In(e.t, ns, func() (err error) {
		l, err = net.Listen("tcp", outsideAddr+":8080")
		return err
	}); err != nil {
		e.t.Fatalf("listen outside: %v", err)
	}
	e.t.Cleanup(func() { l.Close() })
	var accepted atomic.Int64
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return // closed at the end of the test
			}
			accepted.Add(1)
			c.Close()
		}
	}()
	return &accepted
}

// checkNoEgress checks that the cluster, made with --isolated, has no route off the
// machine: a pod on the worker cannot reach an address beyond the cluster's network that
// the host itself reaches.
func checkNoEgress(e *env, workerName string) {
	e.t.Helper()
	accepted := outside(e)
	// The host reaches it: the only thing stopping the pod is the cluster's network.
	c, err := net.DialTimeout("tcp", outsideAddr+":8080", 5*time.Second)
	if err != nil {
		e.t.Fatalf("the host cannot reach the outside namespace: %v", err)
	}
	c.Close()
	e.eventually(10*time.Second, "the outside namespace's listener counts the host's connection", func() error {
		if accepted.Load() != 1 {
			return errors.New("no connection counted")
		}
		return nil
	})

	manifest := filepath.Join(e.home, "escape.yaml")
	if err := os.WriteFile(manifest, []byte(fmt.Sprintf(escapePod, workerName, outsideAddr)), 0o600); err != nil {
		e.t.Fatal(err)
	}
	e.kube("apply", "-f", manifest)
	e.eventually(3*time.Minute, "the pod's attempt to leave the machine ends", func() error {
		phase := strings.TrimSpace(e.kube("get", "pod", "escape", "-o", "jsonpath={.status.phase}"))
		if phase != "Succeeded" && phase != "Failed" {
			return fmt.Errorf("phase %q", phase)
		}
		return nil
	})
	logs, _ := e.run(time.Minute, e.kubectl, "logs", "escape")
	phase := strings.TrimSpace(e.kube("get", "pod", "escape", "-o", "jsonpath={.status.phase}"))
	if phase != "Failed" || accepted.Load() != 1 {
		e.t.Errorf("a pod of the isolated cluster reached %s beyond its network: phase %s, %d connections (1 from the host)\n%s",
			outsideAddr, phase, accepted.Load(), logs)
	}
	e.kube("delete", "pod", "escape", "--wait=false")
}
