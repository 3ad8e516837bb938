package cli

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"

	"github.com/spf13/cobra"

	"github.com/plinthos/plinth/pkg/client"
)

// nodeFlags are the flags of commands that talk to nodes.
type nodeFlags struct {
	endpoints []string
	nodes     []string
}

func addNodeFlags(cmd *cobra.Command, g *globalFlags) {
	cmd.PersistentFlags().StringSliceVarP(&g.endpoints, "endpoints", "e", nil, "node API endpoints; the first that answers is used, the next ones when it stops answering (default: the context's)")
	cmd.PersistentFlags().StringSliceVarP(&g.nodes, "nodes", "n", nil, "nodes to act on, through the endpoint (default: the context's nodes, else the endpoint itself)")
}

// session is a connection to one endpoint and the nodes a command acts on.
type session struct {
	client   *client.Client
	endpoint string
	nodes    []string
}

// connect opens a session with the selected context's credentials.
func (g *globalFlags) connect() (*session, error) {
	_, _, name, ctx, err := loadClientConfig(g)
	if err != nil {
		return nil, err
	}
	endpoints := g.endpoints
	if len(endpoints) == 0 {
		endpoints = ctx.Endpoints
	}
	if len(endpoints) == 0 {
		return nil, fmt.Errorf("context %q has no endpoints; set them with `plinthctl config endpoint ADDRESS` or pass -e", name)
	}
	nodes := g.nodes
	if len(nodes) == 0 {
		nodes = ctx.Nodes
	}
	// With several endpoints the client uses the first that answers and fails over to
	// the next, so commands keep working while one control plane is down.
	c, err := client.NewWithEndpoints(ctx, endpoints)
	if err != nil {
		return nil, err
	}
	return &session{client: c, endpoint: endpoints[0], nodes: nodes}, nil
}

// each runs fn once per node (or once against the endpoint when no node is named),
// concurrently, and prints each node's output in order, prefixed by a header when there
// are several nodes. It returns an error when any node failed; failures are printed with
// their node.
func (s *session) each(ctx context.Context, out io.Writer, fn func(ctx context.Context, node string, w io.Writer) error) error {
	if len(s.nodes) == 0 {
		return fn(ctx, s.endpoint, out)
	}
	type result struct {
		buf bytes.Buffer
		err error
	}
	results := make([]result, len(s.nodes))
	var wg sync.WaitGroup
	for i, node := range s.nodes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			results[i].err = fn(client.WithNode(ctx, node), node, &results[i].buf)
		}()
	}
	wg.Wait()
	var failed []string
	for i, node := range s.nodes {
		if len(s.nodes) > 1 {
			fmt.Fprintf(out, "NODE %s\n", node)
		}
		_, _ = out.Write(results[i].buf.Bytes())
		if err := results[i].err; err != nil {
			fmt.Fprintf(out, "error on node %s: %v\n", node, err)
			failed = append(failed, node)
		}
	}
	if len(failed) > 0 {
		return fmt.Errorf("failed on %d of %d nodes: %s", len(failed), len(s.nodes), strings.Join(failed, ", "))
	}
	return nil
}

// eachStreaming runs fn once per node concurrently, writing each line as it comes,
// prefixed by its node when there are several.
func (s *session) eachStreaming(ctx context.Context, out io.Writer, fn func(ctx context.Context, node string, w io.Writer) error) error {
	if len(s.nodes) <= 1 {
		node := s.endpoint
		if len(s.nodes) == 1 {
			node = s.nodes[0]
			ctx = client.WithNode(ctx, node)
		}
		return fn(ctx, node, out)
	}
	var mu sync.Mutex
	errs := make([]error, len(s.nodes))
	var wg sync.WaitGroup
	for i, node := range s.nodes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			w := &prefixWriter{mu: &mu, out: out, prefix: node + ": "}
			errs[i] = fn(client.WithNode(ctx, node), node, w)
			w.flush()
			if errs[i] != nil {
				errs[i] = fmt.Errorf("node %s: %w", node, errs[i])
			}
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

// prefixWriter writes whole lines, each prefixed, under a shared lock.
type prefixWriter struct {
	mu      *sync.Mutex
	out     io.Writer
	prefix  string
	pending []byte
}

func (p *prefixWriter) Write(b []byte) (int, error) {
	p.pending = append(p.pending, b...)
	for {
		i := bytes.IndexByte(p.pending, '\n')
		if i < 0 {
			return len(b), nil
		}
		p.mu.Lock()
		_, err := fmt.Fprintf(p.out, "%s%s\n", p.prefix, p.pending[:i])
		p.mu.Unlock()
		p.pending = p.pending[i+1:]
		if err != nil {
			return len(b), err
		}
	}
}

func (p *prefixWriter) flush() {
	if len(p.pending) > 0 {
		_, _ = p.Write([]byte("\n"))
	}
}

// withNode directs a request at node through the endpoint.
func withNode(ctx context.Context, node string) context.Context { return client.WithNode(ctx, node) }

// onNodes connects and runs fn once per node, with each's buffered per-node output or, with
// streaming, eachStreaming's line-by-line output.
func (g *globalFlags) onNodes(cmd *cobra.Command, streaming bool, fn func(ctx context.Context, s *session, node string, w io.Writer) error) error {
	s, err := g.connect()
	if err != nil {
		return err
	}
	defer s.client.Close()
	run := s.each
	if streaming {
		run = s.eachStreaming
	}
	return run(cmd.Context(), cmd.OutOrStdout(), func(ctx context.Context, node string, w io.Writer) error {
		return fn(ctx, s, node, w)
	})
}
