package health

import (
	"bytes"
	"context"
	"encoding/pem"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/plinthos/plinth/internal/kubeconfig"
)

// fakeCluster serves handler over TLS and returns a Client for it, built with NewClient
// from a kubeconfig that trusts the server and names another one.
func fakeCluster(t *testing.T, handler http.HandlerFunc) *Client {
	t.Helper()
	srv := httptest.NewTLSServer(handler)
	t.Cleanup(srv.Close)
	ca := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw})
	kc, err := kubeconfig.New("demo", kubeconfig.Cluster{Server: "https://192.0.2.1:6443", CertificateAuthorityData: ca},
		"admin", kubeconfig.User{Token: "t"}).Marshal()
	if err != nil {
		t.Fatal(err)
	}
	c, err := NewClient(kc, srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// TestChecks runs every check against a fake healthy cluster, then against one with a
// node that is not Ready.
func TestChecks(t *testing.T) {
	var notReady atomic.Value // a node's name
	notReady.Store("")
	c := fakeCluster(t, func(w http.ResponseWriter, r *http.Request) {
		ready := func(name string) string {
			st := "True"
			if name == notReady.Load() {
				st = "False"
			}
			return `{"metadata":{"name":"` + name + `"},"status":{"conditions":[{"type":"Ready","status":"` + st + `"}]}}`
		}
		pod := func(component string) string {
			return `{"metadata":{"name":"` + component + `-cp-1","labels":{"component":"` + component + `"}},"status":{"phase":"Running","conditions":[{"type":"Ready","status":"True"}]}}`
		}
		switch r.URL.Path {
		case "/readyz", "/readyz/etcd":
			_, _ = w.Write([]byte("ok"))
		case "/api/v1/nodes":
			_, _ = w.Write([]byte(`{"items":[` + ready("cp-1") + `,` + ready("w-1") + `]}`))
		case "/api/v1/namespaces/kube-system/pods":
			_, _ = w.Write([]byte(`{"items":[` + pod("etcd") + `,` + pod("kube-apiserver") + `,` + pod("kube-controller-manager") + `,` + pod("kube-scheduler") + `]}`))
		case "/apis/apps/v1/namespaces/kube-system/daemonsets/kube-proxy", "/apis/apps/v1/namespaces/kube-system/daemonsets/kube-flannel":
			_, _ = w.Write([]byte(`{"status":{"desiredNumberScheduled":2,"numberReady":2}}`))
		case "/apis/apps/v1/namespaces/kube-system/deployments/coredns":
			_, _ = w.Write([]byte(`{"spec":{"replicas":2},"status":{"availableReplicas":2}}`))
		default:
			http.NotFound(w, r)
		}
	})
	checks := c.Checks(Expect{Nodes: 2, ControlPlanes: 1})
	if len(checks) != 7 {
		t.Fatalf("%d checks", len(checks))
	}
	var progress bytes.Buffer
	if err := Wait(context.Background(), checks, &progress); err != nil {
		t.Fatalf("Wait: %v\n%s", err, progress.String())
	}
	if n := strings.Count(progress.String(), "OK: "); n != 7 {
		t.Errorf("progress:\n%s", progress.String())
	}
	notReady.Store("w-1")
	for _, ch := range checks {
		err := ch.Run(context.Background())
		if ch.Name == "all nodes are Ready" {
			if err == nil || err.Error() != "not Ready: w-1" {
				t.Errorf("a node not Ready: %v", err)
			}
		} else if err != nil {
			t.Errorf("%s: %v", ch.Name, err)
		}
	}
	notReady.Store("")
	if err := c.Checks(Expect{Nodes: 3})[3].Run(context.Background()); err == nil || err.Error() != "2 of 3 nodes registered" {
		t.Errorf("three nodes expected: %v", err)
	}
}

func TestEtcdMembersCheck(t *testing.T) {
	var query string
	c := fakeCluster(t, func(w http.ResponseWriter, r *http.Request) {
		query = r.URL.RawQuery
		_, _ = w.Write([]byte(`{"items":[{"metadata":{"name":"cp-1"}},{"metadata":{"name":"cp-2"}}]}`))
	})
	for _, tc := range []struct {
		name    string
		members []EtcdMember
		want    int
		err     string
	}{
		{"all voting control planes", []EtcdMember{{Name: "cp-1"}, {Name: "cp-2"}}, 2, ""},
		{"a learner", []EtcdMember{{Name: "cp-1"}, {Name: "cp-2", IsLearner: true}}, 2, "learners not promoted yet: cp-2"},
		{"an unstarted learner", []EtcdMember{{Name: "cp-1"}, {IsLearner: true}}, 2, "(not started)"},
		{"a stranger", []EtcdMember{{Name: "cp-1"}, {Name: "old-cp"}}, 2, "not control-plane nodes of this cluster: old-cp"},
		{"a control plane missing", []EtcdMember{{Name: "cp-1"}}, 2, "not voting etcd members: cp-2"},
		{"a control plane missing, any number expected", []EtcdMember{{Name: "cp-1"}}, 0, "not voting etcd members: cp-2"},
		{"more control planes expected than registered", []EtcdMember{{Name: "cp-1"}, {Name: "cp-2"}}, 3, "2 of 3 control planes"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			check := c.etcdMembers(func(context.Context) ([]EtcdMember, error) { return tc.members, nil }, tc.want)
			err := check(context.Background())
			if tc.err == "" && err != nil || tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)) {
				t.Errorf("check = %v, want %q", err, tc.err)
			}
		})
	}
	if query != "labelSelector=node-role.kubernetes.io%2Fcontrol-plane" {
		t.Errorf("nodes query = %q", query)
	}
}

// TestCNICheck: flannel's DaemonSet is checked when the cluster has it; without it (the
// built-in pod network, or a CNI of the user's) there is nothing more to wait for.
func TestCNICheck(t *testing.T) {
	var flannel atomic.Value // the DaemonSet's JSON, "" for none
	flannel.Store("")
	c := fakeCluster(t, func(w http.ResponseWriter, r *http.Request) {
		if ds := flannel.Load().(string); r.URL.Path == "/apis/apps/v1/namespaces/kube-system/daemonsets/kube-flannel" && ds != "" {
			_, _ = w.Write([]byte(ds))
			return
		}
		http.NotFound(w, r)
	})
	var check Check
	for _, ch := range c.Checks(Expect{}) {
		if ch.Name == "the CNI is ready" {
			check = ch
		}
	}
	if check.Run == nil {
		t.Fatal("no CNI check")
	}
	if err := check.Run(t.Context()); err != nil {
		t.Errorf("without flannel: %v", err)
	}
	flannel.Store(`{"status":{"desiredNumberScheduled":2,"numberReady":1}}`)
	if err := check.Run(t.Context()); err == nil || err.Error() != "flannel: 1 of 2 ready" {
		t.Errorf("flannel not ready: %v", err)
	}
}
