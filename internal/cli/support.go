package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"runtime"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/plinthos/plinth/internal/k8s/kubeclient"
	"github.com/plinthos/plinth/internal/resources"
	"github.com/plinthos/plinth/internal/support"
	"github.com/plinthos/plinth/internal/version"
	"github.com/plinthos/plinth/pkg/api/machine"
	rpb "github.com/plinthos/plinth/pkg/api/resource"
	"github.com/plinthos/plinth/pkg/client"
	"github.com/plinthos/plinth/pkg/config"
)

// supportItemTimeout bounds one item of one node; a node that does not answer its first
// one is recorded as such and not asked again.
const supportItemTimeout = 60 * time.Second

func newSupportCommand(g *globalFlags) *cobra.Command {
	var (
		output string
		force  bool
	)
	cmd := &cobra.Command{
		Use:   "support",
		Short: "Collect what a maintainer needs to diagnose the nodes and the cluster into one archive",
		Long: `Support collects, from every node of the context (or of -n) in parallel, and from the
cluster, what a maintainer asks for when something is wrong, into one gzipped tar:

  NODE/version.txt, services.txt     the node's version; its services, health and history
  NODE/logs/SERVICE.log              every service's log kept in memory, and machined's;
  NODE/logs/SERVICE.previous.log     the same from the previous boot, where there is one
  NODE/dmesg.log, events.txt         the kernel log; the node's events
  NODE/processes.txt, memory.txt, mounts.txt
  NODE/containers.txt, stats.txt, images.txt   system and Kubernetes containers
  NODE/machineconfig.yaml            the active machine configuration, every secret masked
  NODE/resources/TYPE.yaml           every resource type (the types holding secrets left out)
  NODE/pods/NS_POD_CONTAINER.log     the logs of the node's kube-system containers
  cluster/nodes.json, pods.json, events.json, version.json   from the Kubernetes API
  summary.txt                        what was collected, and what could not be, and why

Private keys found in any file are masked, PEM or base64. A node that does not answer is
recorded in summary.txt, and the rest is still collected. Some items need os:admin (the
machine configuration, the cluster's objects); with a lesser role they are recorded as not
collected. The archive is written at once, atomically; an existing file is kept unless
--force.`,
		Example: `  plinthctl support
  plinthctl support -O /tmp/bundle.tar.gz --force
  plinthctl -n 10.5.0.2,10.5.0.3 support`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if !force {
				if _, err := os.Stat(output); err == nil {
					return fmt.Errorf("refusing to overwrite %s; use --force to replace it, or -O another file", output)
				}
			}
			s, err := g.connect()
			if err != nil {
				return err
			}
			defer s.client.Close()
			return runSupport(cmd.Context(), s, g, cmd.OutOrStdout(), output)
		},
	}
	cmd.Flags().StringVarP(&output, "output", "O", "support.tar.gz", "the archive to write")
	cmd.Flags().BoolVar(&force, "force", false, "replace the archive if it exists")
	return cmd
}

func runSupport(ctx context.Context, s *session, g *globalFlags, out io.Writer, output string) error {
	start := time.Now()
	b := support.New()
	nodes := s.nodes
	if len(nodes) == 0 {
		nodes = []string{""} // the endpoint itself
	}
	var mu sync.Mutex
	say := func(format string, args ...any) {
		mu.Lock()
		defer mu.Unlock()
		fmt.Fprintf(out, format+"\n", args...)
	}
	say("collecting from %d node(s) and the cluster", len(nodes))
	var wg sync.WaitGroup
	for _, node := range nodes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			collectNode(ctx, s, node, b, say)
		}()
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		collectCluster(ctx, s, b, say)
	}()
	wg.Wait()
	if ctx.Err() != nil {
		return ctx.Err()
	}

	contextName := g.context
	if _, _, name, _, err := loadClientConfig(g); err == nil {
		contextName = name
	}
	header := fmt.Sprintf("Plinth support bundle\ncollected: %s (%s)\nplinthctl: %s (%s, %s/%s)\ncontext: %s\nendpoint: %s\nnodes: %s\n",
		start.UTC().Format(time.RFC3339), time.Since(start).Round(time.Second), version.Tag, runtime.Version(), runtime.GOOS, runtime.GOARCH,
		contextName, s.endpoint, strings.Join(s.nodes, ", "))
	var buf bytes.Buffer
	if err := b.Write(&buf, "support", header, start); err != nil {
		return fmt.Errorf("build the archive: %w", err)
	}
	if err := writeOutputs([]outputFile{{path: output, data: buf.Bytes(), perm: 0o600}}, true, nil); err != nil {
		return err
	}
	msg := fmt.Sprintf("wrote %s: %d files, %s", output, len(b.Names())+1, bytesHuman(uint64(buf.Len())))
	if n := b.Problems(); n > 0 {
		msg += fmt.Sprintf("; %d item(s) could not be collected (see support/summary.txt)", n)
	}
	say("%s", msg)
	return nil
}

// nodeDir is the directory of a node's files: its address, or the endpoint's host.
func nodeDir(s *session, node string) string {
	if node != "" {
		return node
	}
	if host, _, err := net.SplitHostPort(s.endpoint); err == nil {
		return host
	}
	return s.endpoint
}

// collectNode collects every item of one node into b.
func collectNode(ctx context.Context, s *session, node string, b *support.Bundle, say func(string, ...any)) {
	dir := nodeDir(s, node)
	if node != "" {
		ctx = client.WithNode(ctx, node)
	}
	item := func(name string, fn func(ctx context.Context) ([]byte, error)) bool {
		ictx, cancel := context.WithTimeout(ctx, supportItemTimeout)
		defer cancel()
		data, err := fn(ictx)
		if err != nil {
			b.Fail(dir, name, client.Describe(err))
			return false
		}
		if data != nil {
			b.Add(dir+"/"+name, data)
		}
		return true
	}
	if !item("version.txt", func(ctx context.Context) ([]byte, error) {
		v, err := s.client.Machine.Version(ctx, &machine.VersionRequest{})
		if err != nil {
			return nil, err
		}
		return fmt.Appendf(nil, "Node:      %s\nHostname:  %s\nTag:       %s\nGo:        %s\nOS:        %s/%s\nPlatform:  %s\n",
			dir, v.Hostname, v.Tag, v.GoVersion, v.Os, v.Arch, v.Platform), nil
	}) {
		say("%s: did not answer; recorded in the bundle", dir)
		return
	}
	services := []string{"machined"}
	item("services.txt", func(ctx context.Context) ([]byte, error) {
		resp, err := s.client.Machine.ServiceList(ctx, &machine.ServiceListRequest{})
		if err != nil {
			return nil, err
		}
		var w bytes.Buffer
		writeServices(&w, dir, resp.Services)
		for _, sv := range resp.Services {
			services = append(services, sv.Id)
			fmt.Fprintln(&w)
			printService(&w, dir, sv)
		}
		return w.Bytes(), nil
	})
	for _, sv := range services {
		item("logs/"+sv+".log", func(ctx context.Context) ([]byte, error) {
			return readLog(ctx, s, &machine.LogsRequest{Service: sv, TailLines: -1})
		})
		item("logs/"+sv+".previous.log", func(ctx context.Context) ([]byte, error) {
			data, err := readLog(ctx, s, &machine.LogsRequest{Service: sv, TailLines: -1, Previous: true})
			if status.Code(err) == codes.NotFound {
				return nil, nil // no previous boot, or nothing logged then
			}
			return data, err
		})
	}
	item("dmesg.log", func(ctx context.Context) ([]byte, error) {
		stream, err := s.client.Machine.Dmesg(ctx, &machine.DmesgRequest{TailLines: -1})
		if err != nil {
			return nil, err
		}
		return drain(ctx, func() ([]byte, error) { m, err := stream.Recv(); return m.GetData(), err })
	})
	item("events.txt", func(ctx context.Context) ([]byte, error) {
		stream, err := s.client.Machine.Events(ctx, &machine.EventsRequest{TailEvents: -1})
		if err != nil {
			return nil, err
		}
		var w bytes.Buffer
		for {
			ev, err := stream.Recv()
			if err == io.EOF {
				return w.Bytes(), nil
			}
			if err != nil {
				return nil, err
			}
			writeEvent(&w, ev)
		}
	})
	item("processes.txt", func(ctx context.Context) ([]byte, error) {
		resp, err := s.client.Machine.Processes(ctx, &machine.ProcessesRequest{})
		if err != nil {
			return nil, err
		}
		var w bytes.Buffer
		err = writeProcesses(&w, resp.Processes)
		return w.Bytes(), err
	})
	item("memory.txt", func(ctx context.Context) ([]byte, error) {
		m, err := s.client.Machine.Memory(ctx, &machine.MemoryRequest{})
		if err != nil {
			return nil, err
		}
		var w bytes.Buffer
		err = writeMemory(&w, dir, m)
		return w.Bytes(), err
	})
	item("mounts.txt", func(ctx context.Context) ([]byte, error) {
		resp, err := s.client.Machine.Mounts(ctx, &machine.MountsRequest{})
		if err != nil {
			return nil, err
		}
		var w bytes.Buffer
		err = writeMounts(&w, resp.Mounts)
		return w.Bytes(), err
	})
	var kubeContainers []*machine.Container
	item("containers.txt", func(ctx context.Context) ([]byte, error) {
		var all []*machine.Container
		for _, k := range []bool{false, true} {
			resp, err := s.client.Machine.Containers(ctx, &machine.ContainersRequest{Kubernetes: k})
			if err != nil {
				if k && status.Code(err) == codes.FailedPrecondition {
					continue // no containerd for Kubernetes on this node
				}
				return nil, err
			}
			all = append(all, resp.Containers...)
			if k {
				kubeContainers = resp.Containers
			}
		}
		var w bytes.Buffer
		err := writeContainers(&w, all)
		return w.Bytes(), err
	})
	item("stats.txt", func(ctx context.Context) ([]byte, error) {
		var all []*machine.ContainerStats
		for _, k := range []bool{false, true} {
			resp, err := s.client.Machine.Stats(ctx, &machine.StatsRequest{Kubernetes: k})
			if err != nil {
				if status.Code(err) == codes.FailedPrecondition {
					continue
				}
				return nil, err
			}
			all = append(all, resp.Stats...)
		}
		var w bytes.Buffer
		err := writeStats(&w, all)
		return w.Bytes(), err
	})
	item("images.txt", func(ctx context.Context) ([]byte, error) {
		resp, err := s.client.Machine.ImageList(ctx, &machine.ImageListRequest{})
		if status.Code(err) == codes.FailedPrecondition {
			return nil, nil
		}
		if err != nil {
			return nil, err
		}
		var w bytes.Buffer
		tw := tabwriter.NewWriter(&w, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "IMAGE\tDIGEST\tSIZE")
		for _, im := range resp.Images {
			fmt.Fprintf(tw, "%s\t%s\t%s\n", im.Name, im.Digest, bytesHuman(im.SizeBytes))
		}
		err = tw.Flush()
		return w.Bytes(), err
	})
	item("machineconfig.yaml", func(ctx context.Context) ([]byte, error) {
		cfg, err := activeConfig(ctx, s)
		if err != nil {
			return nil, err
		}
		return config.Marshal(config.Redacted(cfg), false)
	})
	collectResources(ctx, s, dir, b, item)
	for _, c := range kubeContainers {
		ns, pod, ok := strings.Cut(c.PodName, "/")
		name, _, _ := strings.Cut(c.Id, " (")
		if !ok || ns != "kube-system" || name == "pause" {
			continue
		}
		item("pods/"+ns+"_"+pod+"_"+name+".log", func(ctx context.Context) ([]byte, error) {
			return readLog(ctx, s, &machine.LogsRequest{Service: c.PodName + "/" + name, TailLines: -1, Kubernetes: true})
		})
	}
	say("%s: collected", dir)
}

// collectResources adds every resource type of the node, one file each, but the types
// that hold secrets.
func collectResources(ctx context.Context, s *session, dir string, b *support.Bundle, item func(string, func(context.Context) ([]byte, error)) bool) {
	var defs []*rpb.Definition
	if !item("resources/definitions.txt", func(ctx context.Context) ([]byte, error) {
		resp, err := s.client.Resource.Definitions(ctx, &rpb.DefinitionsRequest{})
		if err != nil {
			return nil, err
		}
		defs = resp.Definitions
		var w bytes.Buffer
		for _, d := range defs {
			note := ""
			switch {
			case d.Type == resources.MachineConfigType:
				note = "  (holds secrets: see machineconfig.yaml, every secret masked)"
			case d.Sensitive:
				note = "  (holds secrets: not collected)"
			}
			fmt.Fprintf(&w, "%s  namespace %s%s\n", d.Type, d.DefaultNamespace, note)
		}
		return w.Bytes(), nil
	}) {
		return
	}
	for _, d := range defs {
		if d.Sensitive {
			continue
		}
		item("resources/"+d.Type+".yaml", func(ctx context.Context) ([]byte, error) {
			stream, err := s.client.Resource.List(ctx, &rpb.ListRequest{Namespace: d.DefaultNamespace, Type: d.Type})
			if err != nil {
				return nil, err
			}
			var w bytes.Buffer
			p := &resourcePrinter{w: &w, node: dir, output: "yaml"}
			for {
				resp, err := stream.Recv()
				if err == io.EOF {
					break
				}
				if err != nil {
					return nil, err
				}
				if err := p.print("", resp.Resource); err != nil {
					return nil, err
				}
			}
			return w.Bytes(), p.flush()
		})
	}
}

// collectCluster adds the cluster's nodes, pods, events and version, read with an admin
// kubeconfig from the first control plane that gives one.
func collectCluster(ctx context.Context, s *session, b *support.Bundle, say func(string, ...any)) {
	_, _, kc, err := controlPlaneKubeconfig(ctx, s)
	if err != nil {
		b.Fail("cluster", "kubeconfig", err)
		say("cluster: no kubeconfig (%v); recorded in the bundle", err)
		return
	}
	api, err := kubeclient.New(kc, "")
	if err != nil {
		b.Fail("cluster", "kubeconfig", err)
		return
	}
	defer api.Close()
	for _, o := range []struct{ name, path string }{
		{"version.json", "/version"},
		{"nodes.json", "/api/v1/nodes"},
		{"pods.json", "/api/v1/pods"},
		{"events.json", "/api/v1/events"},
	} {
		ictx, cancel := context.WithTimeout(ctx, supportItemTimeout)
		var raw json.RawMessage
		err := api.Get(ictx, o.path, &raw)
		cancel()
		if err != nil {
			b.Fail("cluster", o.name, err)
			continue
		}
		var pretty bytes.Buffer
		if err := json.Indent(&pretty, raw, "", "  "); err != nil {
			b.Fail("cluster", o.name, err)
			continue
		}
		b.Add("cluster/"+o.name, pretty.Bytes())
	}
	say("cluster: collected through %s", api.Server())
}

// readLog reads a whole log (service or Kubernetes container) without following it.
func readLog(ctx context.Context, s *session, req *machine.LogsRequest) ([]byte, error) {
	stream, err := s.client.Machine.Logs(ctx, req)
	if err != nil {
		return nil, err
	}
	return drain(ctx, func() ([]byte, error) { m, err := stream.Recv(); return m.GetData(), err })
}

// drain collects a stream's chunks until it ends.
func drain(ctx context.Context, recv func() ([]byte, error)) ([]byte, error) {
	var w bytes.Buffer
	for {
		data, err := recv()
		if err == io.EOF {
			return w.Bytes(), nil
		}
		if err != nil {
			if ctx.Err() != nil {
				return w.Bytes(), fmt.Errorf("%w (after %d bytes)", ctx.Err(), w.Len())
			}
			return nil, err
		}
		w.Write(data)
	}
}
