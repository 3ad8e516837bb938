package cli

import (
	"context"
	"io"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc/metadata"

	"github.com/plinthos/plinth/internal/health"
	"github.com/plinthos/plinth/internal/provision/provisiontest"
	"github.com/plinthos/plinth/pkg/client"
	"github.com/plinthos/plinth/pkg/clientconfig"
	"github.com/plinthos/plinth/pkg/secrets"
)

// healthCheck is one call of checkHealth: the server of the kubeconfig it got and the
// node its context directs requests at.
type healthCheck struct{ kubeconfigServer, node string }

// fakeHealth replaces checkHealth with one that passes and records its calls.
func fakeHealth(t *testing.T) func() []healthCheck {
	t.Helper()
	var (
		mu    sync.Mutex
		calls []healthCheck
	)
	old := checkHealth
	checkHealth = func(ctx context.Context, kubeconfig []byte, _ string, _ health.Expect, w io.Writer) error {
		var c healthCheck
		for _, l := range strings.Split(string(kubeconfig), "\n") {
			if s, ok := strings.CutPrefix(strings.TrimSpace(l), "server: "); ok {
				c.kubeconfigServer = s
			}
		}
		if md, ok := metadata.FromOutgoingContext(ctx); ok && len(md.Get(client.NodeMetadataKey)) > 0 {
			c.node = md.Get(client.NodeMetadataKey)[0]
		}
		mu.Lock()
		defer mu.Unlock()
		calls = append(calls, c)
		return nil
	}
	t.Cleanup(func() { checkHealth = old })
	return func() []healthCheck {
		mu.Lock()
		defer mu.Unlock()
		return slices.Clone(calls)
	}
}

// TestHealthPicksAControlPlane: without -n, health asks the context's nodes in order for
// a kubeconfig, skips workers and checks once through the first control plane; a worker
// named with -n is refused with a clear error.
func TestHealthPicksAControlPlane(t *testing.T) {
	b, err := secrets.Generate(time.Now())
	if err != nil {
		t.Fatal(err)
	}
	const cp1, cp2, w1, w2 = "10.5.0.2", "10.5.0.3", "10.5.0.4", "10.5.0.5"
	for _, tc := range []struct {
		name         string
		nodes        []string // the context's
		args         []string
		wantErr      string
		wantAsked    []string
		wantChecks   []healthCheck
		wantInOutput string
	}{
		{name: "context as cluster create writes it", nodes: []string{cp1, w1},
			wantAsked: []string{cp1}, wantChecks: []healthCheck{{"https://" + cp1 + ":6443", cp1}}, wantInOutput: "the cluster is healthy"},
		{name: "workers first", nodes: []string{w1, w2, cp2, cp1},
			wantAsked: []string{w1, w2, cp2}, wantChecks: []healthCheck{{"https://" + cp2 + ":6443", cp2}}, wantInOutput: "control plane " + cp2},
		{name: "no control plane", nodes: []string{w1, w2},
			wantErr: "health needs a control-plane node; name one with -n", wantAsked: []string{w1, w2}},
		{name: "a worker named", nodes: []string{cp1, w1}, args: []string{"-n", w1},
			wantErr: w1 + " is a worker: health needs a control-plane node; name one with -n", wantAsked: []string{w1}},
		{name: "a control plane named", nodes: []string{w1, cp1}, args: []string{"-n", cp2},
			wantAsked: []string{cp2}, wantChecks: []healthCheck{{"https://" + cp2 + ":6443", cp2}}},
		{name: "two control planes named", nodes: []string{w1}, args: []string{"-n", cp1 + "," + cp2},
			wantAsked: []string{cp1, cp2}, wantChecks: []healthCheck{{"https://" + cp1 + ":6443", cp1}, {"https://" + cp2 + ":6443", cp2}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, pc := isolateHome(t)
			checks := fakeHealth(t)
			addr := provisiontest.FreeAddr(t)
			node := &provisiontest.Node{Workers: []string{w1, w2}}
			provisiontest.ServeNode(t, b.CAs.OS.Crt, b.CAs.OS.Key, addr, 0, node)
			cc := provisiontest.AdminContext(t, b)
			cc.Endpoints, cc.Nodes = []string{addr}, tc.nodes
			if err := (&clientconfig.Config{Context: "c", Contexts: map[string]*clientconfig.Context{"c": cc}}).Save(pc); err != nil {
				t.Fatal(err)
			}

			out, err := runCLI(t, append(tc.args, "health")...)
			if tc.wantErr == "" && err != nil {
				t.Errorf("health: %v\n%s", err, out)
			}
			if tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)) {
				t.Errorf("health: %v, want %q\n%s", err, tc.wantErr, out)
			}
			if tc.wantInOutput != "" && !strings.Contains(out, tc.wantInOutput) {
				t.Errorf("output lacks %q:\n%s", tc.wantInOutput, out)
			}
			asked := node.KubeconfigTargets()
			want := tc.wantAsked
			if len(tc.args) > 0 {
				// The nodes named are asked at once; the context's, in order.
				slices.Sort(asked)
				want = slices.Sorted(slices.Values(want))
			}
			if !slices.Equal(asked, want) {
				t.Errorf("Kubeconfig asked of %v, want %v", asked, want)
			}
			got := checks()
			slices.SortFunc(got, func(a, b healthCheck) int { return strings.Compare(a.node, b.node) })
			if !slices.Equal(got, tc.wantChecks) {
				t.Errorf("checks %+v, want %+v", got, tc.wantChecks)
			}
		})
	}
}
