package cli

import (
	"context"
	"fmt"
	"io"
	"io/fs"
	"os"
	"sort"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/plinthos/plinth/pkg/api/machine"
	"github.com/plinthos/plinth/pkg/client"
)

func newProcessesCommand(g *globalFlags) *cobra.Command {
	var sortBy string
	cmd := &cobra.Command{
		Use:     "processes",
		Aliases: []string{"ps"},
		Short:   "List the processes of the nodes",
		Long: `List the processes of the nodes with their CPU time and memory: RSS, the resident set, and
PSS, the proportional set (shared pages divided among the processes that map them, so the
PSS of several processes adds up to what they use together).`,
		Example: `  plinthctl processes
  plinthctl ps --sort rss`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return g.onNodes(cmd, false, func(ctx context.Context, s *session, node string, w io.Writer) error {
				resp, err := s.client.Machine.Processes(ctx, &machine.ProcessesRequest{})
				if err != nil {
					return client.Describe(err)
				}
				procs := resp.Processes
				switch sortBy {
				case "rss":
					sort.SliceStable(procs, func(i, j int) bool { return procs[i].ResidentBytes > procs[j].ResidentBytes })
				case "pss":
					sort.SliceStable(procs, func(i, j int) bool { return procs[i].ProportionalBytes > procs[j].ProportionalBytes })
				case "cpu":
					sort.SliceStable(procs, func(i, j int) bool { return procs[i].CpuSeconds > procs[j].CpuSeconds })
				case "pid":
				default:
					return fmt.Errorf("--sort %q must be pid, rss, pss or cpu", sortBy)
				}
				return writeProcesses(w, procs)
			})
		},
	}
	cmd.Flags().StringVar(&sortBy, "sort", "pid", "order: pid, rss, pss or cpu")
	return cmd
}

// writeProcesses prints the table of plinthctl processes.
func writeProcesses(w io.Writer, procs []*machine.Process) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "PID\tPPID\tSTATE\tTHREADS\tCPU-TIME\tRSS\tPSS\tCOMMAND")
	for _, p := range procs {
		pss := "-"
		if p.ProportionalBytes > 0 {
			pss = bytesHuman(p.ProportionalBytes)
		}
		fmt.Fprintf(tw, "%d\t%d\t%s\t%d\t%.2fs\t%s\t%s\t%s\n", p.Pid, p.Ppid, p.State, p.Threads, p.CpuSeconds, bytesHuman(p.ResidentBytes), pss, orDash(p.Args))
	}
	return tw.Flush()
}

func newMemoryCommand(g *globalFlags) *cobra.Command {
	return &cobra.Command{
		Use:     "memory",
		Aliases: []string{"free"},
		Short:   "Show the memory use of the nodes",
		Example: `  plinthctl memory`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return g.onNodes(cmd, false, func(ctx context.Context, s *session, node string, w io.Writer) error {
				m, err := s.client.Machine.Memory(ctx, &machine.MemoryRequest{})
				if err != nil {
					return client.Describe(err)
				}
				return writeMemory(w, node, m)
			})
		},
	}
}

// writeMemory prints the table of plinthctl memory.
func writeMemory(w io.Writer, node string, m *machine.MemoryResponse) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NODE\tTOTAL\tUSED\tFREE\tAVAILABLE\tBUFFERS\tCACHED\tSWAP-TOTAL\tSWAP-FREE")
	used := m.TotalBytes - m.AvailableBytes
	fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", node, bytesHuman(m.TotalBytes), bytesHuman(used), bytesHuman(m.FreeBytes),
		bytesHuman(m.AvailableBytes), bytesHuman(m.BuffersBytes), bytesHuman(m.CachedBytes), bytesHuman(m.SwapTotalBytes), bytesHuman(m.SwapFreeBytes))
	return tw.Flush()
}

func newMountsCommand(g *globalFlags) *cobra.Command {
	return &cobra.Command{
		Use:     "mounts",
		Short:   "List the mounted file systems of the nodes with their usage",
		Example: `  plinthctl mounts`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return g.onNodes(cmd, false, func(ctx context.Context, s *session, node string, w io.Writer) error {
				resp, err := s.client.Machine.Mounts(ctx, &machine.MountsRequest{})
				if err != nil {
					return client.Describe(err)
				}
				return writeMounts(w, resp.Mounts)
			})
		},
	}
}

// writeMounts prints the table of plinthctl mounts.
func writeMounts(w io.Writer, mounts []*machine.Mount) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "FILESYSTEM\tSIZE\tAVAILABLE\tTYPE\tMOUNTED ON")
	for _, m := range mounts {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", m.Source, bytesHuman(m.SizeBytes), bytesHuman(m.AvailableBytes), m.Filesystem, m.Target)
	}
	return tw.Flush()
}

func newDmesgCommand(g *globalFlags) *cobra.Command {
	var (
		follow bool
		tail   int32
	)
	cmd := &cobra.Command{
		Use:   "dmesg",
		Short: "Show the kernel log of the nodes",
		Example: `  plinthctl dmesg --tail 20
  plinthctl dmesg -f`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return g.onNodes(cmd, true, func(ctx context.Context, s *session, node string, w io.Writer) error {
				stream, err := s.client.Machine.Dmesg(ctx, &machine.DmesgRequest{Follow: follow, TailLines: tail})
				if err != nil {
					return client.Describe(err)
				}
				return copyChunks(ctx, w, func() ([]byte, error) {
					m, err := stream.Recv()
					return m.GetData(), err
				})
			})
		},
	}
	cmd.Flags().BoolVarP(&follow, "follow", "f", false, "keep printing new messages")
	cmd.Flags().Int32Var(&tail, "tail", -1, "how many of the last messages to show (-1: all)")
	return cmd
}

func newListCommand(g *globalFlags) *cobra.Command {
	var (
		long, recurse bool
		depth         int32
	)
	cmd := &cobra.Command{
		Use:     "list [PATH]",
		Aliases: []string{"ls"},
		Short:   "List files on the nodes",
		Long: `List a directory on the nodes. In local mode the node's file system is its state
directory. os:admin sees everything; other roles see only the logs (/var/log on a node,
/log in local mode) and /etc/os-release, /etc/hostname, /etc/hosts and /etc/resolv.conf.`,
		Example: `  plinthctl ls /
  plinthctl ls -l -r --depth 2 /log`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			root := "/"
			if len(args) == 1 {
				root = args[0]
			}
			return g.onNodes(cmd, false, func(ctx context.Context, s *session, node string, w io.Writer) error {
				stream, err := s.client.Machine.List(ctx, &machine.ListRequest{Root: root, Recurse: recurse, RecursionDepth: depth})
				if err != nil {
					return client.Describe(err)
				}
				tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
				if long {
					fmt.Fprintln(tw, "MODE\tSIZE\tMODIFIED\tNAME")
				}
				for {
					e, err := stream.Recv()
					if err == io.EOF {
						break
					}
					if err != nil {
						_ = tw.Flush()
						return client.Describe(err)
					}
					name := e.RelativeName
					if e.Link != "" {
						name += " -> " + e.Link
					}
					if e.Error != "" {
						name += "  (" + e.Error + ")"
					}
					if long {
						fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", fs.FileMode(e.Mode), bytesHuman(uint64(e.Size)), e.Modified.AsTime().Local().Format(time.DateTime), name)
					} else {
						fmt.Fprintln(tw, name)
					}
				}
				return tw.Flush()
			})
		},
	}
	cmd.Flags().BoolVarP(&long, "long", "l", false, "show mode, size and time")
	cmd.Flags().BoolVarP(&recurse, "recurse", "r", false, "list subdirectories too")
	cmd.Flags().Int32Var(&depth, "depth", 0, "with -r: how deep (0: no limit)")
	return cmd
}

func newReadCommand(g *globalFlags) *cobra.Command {
	return &cobra.Command{
		Use:     "read PATH",
		Aliases: []string{"cat"},
		Short:   "Print a file of a node",
		Example: `  plinthctl read /log/machined.log`,
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return g.onNodes(cmd, false, func(ctx context.Context, s *session, node string, w io.Writer) error {
				stream, err := s.client.Machine.Read(ctx, &machine.ReadRequest{Path: args[0]})
				if err != nil {
					return client.Describe(err)
				}
				return copyChunks(ctx, w, func() ([]byte, error) {
					m, err := stream.Recv()
					return m.GetData(), err
				})
			})
		},
	}
}

func newCopyCommand(g *globalFlags) *cobra.Command {
	return &cobra.Command{
		Use:     "copy PATH LOCAL-FILE",
		Aliases: []string{"cp"},
		Short:   "Copy a file or directory of a node into a local tar archive (- for standard output)",
		Example: `  plinthctl cp /log logs.tar
  plinthctl cp /log - | tar tv`,
		Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			s, err := g.connect()
			if err != nil {
				return err
			}
			defer s.client.Close()
			if len(s.nodes) > 1 {
				return fmt.Errorf("copy works on one node at a time; give one with -n")
			}
			ctx := cmd.Context()
			if len(s.nodes) == 1 {
				ctx = withNode(ctx, s.nodes[0])
			}
			out := cmd.OutOrStdout()
			if args[1] != "-" {
				f, err := os.Create(args[1])
				if err != nil {
					return err
				}
				defer f.Close()
				out = f
			}
			stream, err := s.client.Machine.Copy(ctx, &machine.CopyRequest{RootPath: args[0]})
			if err != nil {
				return client.Describe(err)
			}
			return copyChunks(ctx, out, func() ([]byte, error) {
				m, err := stream.Recv()
				return m.GetData(), err
			})
		},
	}
}

func bytesHuman(n uint64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%dB", n)
	}
	div, exp := uint64(unit), 0
	for v := n / unit; v >= unit; v /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f%ci", float64(n)/float64(div), "KMGTPE"[exp])
}

func newContainersCommand(g *globalFlags) *cobra.Command {
	var kubernetes bool
	cmd := &cobra.Command{
		Use:     "containers",
		Aliases: []string{"c"},
		Short:   "List the containers of the nodes (-k: Kubernetes containers)",
		Example: `  plinthctl containers
  plinthctl containers -k`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return g.onNodes(cmd, false, func(ctx context.Context, s *session, node string, w io.Writer) error {
				resp, err := s.client.Machine.Containers(ctx, &machine.ContainersRequest{Kubernetes: kubernetes})
				if err != nil {
					return client.Describe(err)
				}
				return writeContainers(w, resp.Containers)
			})
		},
	}
	cmd.Flags().BoolVarP(&kubernetes, "kubernetes", "k", false, "Kubernetes containers instead of system ones")
	return cmd
}

// writeContainers prints the table of plinthctl containers.
func writeContainers(w io.Writer, cs []*machine.Container) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NAMESPACE\tID\tIMAGE\tPID\tSTATUS\tPOD")
	for _, c := range cs {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%s\t%s\n", c.Namespace, c.Id, c.Image, c.Pid, c.Status, orDash(c.PodName))
	}
	return tw.Flush()
}

// writeStats prints the table of plinthctl stats.
func writeStats(w io.Writer, stats []*machine.ContainerStats) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NAMESPACE\tID\tMEMORY\tCPU-TIME\tPOD")
	for _, c := range stats {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%.2fs\t%s\n", c.Namespace, c.Id, bytesHuman(c.MemoryBytes), c.CpuSeconds, orDash(c.PodName))
	}
	return tw.Flush()
}

func newStatsCommand(g *globalFlags) *cobra.Command {
	var kubernetes bool
	cmd := &cobra.Command{
		Use:   "stats",
		Short: "Show the memory and CPU use of the nodes' containers",
		Long: `Show each running container's memory (working set: the cgroup's usage less inactive
file pages, as kubelet counts it) and CPU time, from containerd. With -k, the Kubernetes
containers; without, containerd's system namespace (machined's own services are processes:
see plinthctl processes).`,
		Example: `  plinthctl stats
  plinthctl stats -k`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return g.onNodes(cmd, false, func(ctx context.Context, s *session, node string, w io.Writer) error {
				resp, err := s.client.Machine.Stats(ctx, &machine.StatsRequest{Kubernetes: kubernetes})
				if err != nil {
					return client.Describe(err)
				}
				return writeStats(w, resp.Stats)
			})
		},
	}
	cmd.Flags().BoolVarP(&kubernetes, "kubernetes", "k", false, "Kubernetes containers instead of system ones")
	return cmd
}
