package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/plinthos/plinth/pkg/api/machine"
	"github.com/plinthos/plinth/pkg/client"
)

func newEtcdCommand(g *globalFlags) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "etcd",
		Short: "Inspect and manage the etcd cluster through its control-plane nodes",
		Long: `The etcd commands talk to the etcd member of the control-plane node(s) given with -n
(or the context's nodes). Member ids are hexadecimal, as etcdctl prints them.`,
	}
	cmd.AddCommand(
		newEtcdMembersCommand(g),
		newEtcdStatusCommand(g),
		newEtcdSnapshotCommand(g),
		newEtcdLeaveCommand(g),
		newEtcdRemoveMemberCommand(g),
		newEtcdForfeitLeadershipCommand(g),
	)
	return cmd
}

// memberID formats an etcd member id as etcdctl does.
func memberID(id uint64) string { return strconv.FormatUint(id, 16) }

// parseMemberID reads a hexadecimal member id, with or without 0x.
func parseMemberID(s string) (uint64, error) {
	id, err := strconv.ParseUint(strings.TrimPrefix(strings.ToLower(s), "0x"), 16, 64)
	if err != nil || id == 0 {
		return 0, fmt.Errorf("%q is not an etcd member id (hexadecimal, as `plinthctl etcd members` prints it)", s)
	}
	return id, nil
}

func newEtcdMembersCommand(g *globalFlags) *cobra.Command {
	var output string
	cmd := &cobra.Command{
		Use:   "members",
		Short: "List the etcd cluster's members (* marks the member of the node asked)",
		Example: `  plinthctl -n 10.5.0.2 etcd members
  plinthctl -n 10.5.0.2,10.5.0.3 etcd members
  plinthctl -n 10.5.0.2 etcd members -o json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := checkOutput(g, output); err != nil {
				return err
			}
			return g.onNodes(cmd, false, func(ctx context.Context, s *session, node string, w io.Writer) error {
				resp, err := s.client.Machine.EtcdMembers(ctx, &machine.EtcdMembersRequest{})
				if err != nil {
					return client.Describe(err)
				}
				if output == "json" {
					return printJSON(w, resp)
				}
				printMembers(w, resp.Members, resp.MemberId)
				return nil
			})
		},
	}
	cmd.Flags().StringVarP(&output, "output", "o", "table", "output format: table, or json (of one node)")
	return cmd
}

func printMembers(w io.Writer, members []*machine.EtcdMember, self uint64) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tNAME\tPEER-URLS\tCLIENT-URLS\tLEARNER")
	for _, m := range members {
		id := memberID(m.Id)
		if m.Id == self {
			id += "*"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%t\n", id, orDash(m.Name), orDash(strings.Join(m.PeerUrls, ",")),
			orDash(strings.Join(m.ClientUrls, ",")), m.IsLearner)
	}
	_ = tw.Flush()
}

func newEtcdStatusCommand(g *globalFlags) *cobra.Command {
	var output string
	cmd := &cobra.Command{
		Use:   "status",
		Short: "Show the status of the nodes' etcd members: size, leader, raft indexes, alarms",
		Example: `  plinthctl -n 10.5.0.2 etcd status
  plinthctl -n 10.5.0.2,10.5.0.3,10.5.0.4 etcd status
  plinthctl -n 10.5.0.2 etcd status -o json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := checkOutput(g, output); err != nil {
				return err
			}
			return g.onNodes(cmd, false, func(ctx context.Context, s *session, node string, w io.Writer) error {
				st, err := s.client.Machine.EtcdStatus(ctx, &machine.EtcdStatusRequest{})
				if err != nil {
					return client.Describe(err)
				}
				if output == "json" {
					return printJSON(w, st)
				}
				tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
				fmt.Fprintln(tw, "NODE\tMEMBER\tLEADER\tDB-SIZE\tIN-USE\tREVISION\tRAFT-TERM\tRAFT-INDEX\tAPPLIED\tLEARNER\tVERSION\tERRORS")
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%d\t%d\t%d\t%d\t%t\t%s\t%s\n", node, memberID(st.MemberId), memberID(st.Leader),
					bytesHuman(uint64(max(st.DbSize, 0))), bytesHuman(uint64(max(st.DbSizeInUse, 0))), st.Revision, st.RaftTerm,
					st.RaftIndex, st.RaftAppliedIndex, st.IsLearner, orDash(st.Version), orDash(strings.Join(st.Errors, ", ")))
				return tw.Flush()
			})
		},
	}
	cmd.Flags().StringVarP(&output, "output", "o", "table", "output format: table, or json (of one node)")
	return cmd
}

func newEtcdSnapshotCommand(g *globalFlags) *cobra.Command {
	return &cobra.Command{
		Use:   "snapshot FILE",
		Short: "Save a snapshot of etcd's database from one control-plane node into FILE",
		Long: `Stream a snapshot of the etcd database of one control-plane node into FILE, written
atomically (a partial snapshot never replaces FILE). Check it with 'etcdutl snapshot status
FILE'; restore it with 'etcdutl snapshot restore'. Needs the os:etcd:backup role (or
os:operator, os:admin).`,
		Example: `  plinthctl -n 10.5.0.2 etcd snapshot etcd.db
  plinthctl -n 10.5.0.2 etcd snapshot /backups/etcd-$(date +%F).db`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := g.oneNode("a snapshot is taken from one node: give one with -n"); err != nil {
				return err
			}
			path := args[0]
			return g.onNodes(cmd, false, func(ctx context.Context, s *session, node string, w io.Writer) error {
				if len(s.nodes) > 1 {
					return errors.New("a snapshot is taken from one node: give one with -n")
				}
				n, err := saveSnapshot(ctx, s.client.Machine, path)
				if err != nil {
					return err
				}
				fmt.Fprintf(w, "wrote %s: %d bytes (%s) from node %s\n", path, n, bytesHuman(uint64(n)), node)
				return nil
			})
		},
	}
}

// oneNode refuses, with msg, when the command would act on several nodes (given with -n or
// the context's), before anything is sent.
func (g *globalFlags) oneNode(msg string) error {
	nodes := g.nodes
	if len(nodes) == 0 {
		if _, _, _, ctx, err := loadClientConfig(g); err == nil {
			nodes = ctx.Nodes
		}
	}
	if len(nodes) > 1 {
		return errors.New(msg)
	}
	return nil
}

// saveSnapshot streams the snapshot into a temporary file next to path, then renames it.
func saveSnapshot(ctx context.Context, c machine.MachineServiceClient, path string) (int64, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stream, err := c.EtcdSnapshot(ctx, &machine.EtcdSnapshotRequest{})
	if err != nil {
		return 0, client.Describe(err)
	}
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return 0, err
	}
	tmp := f.Name()
	ok := false
	defer func() {
		if !ok {
			f.Close()
			os.Remove(tmp)
		}
	}()
	var n int64
	for {
		msg, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return n, client.Describe(err)
		}
		k, err := f.Write(msg.Chunk)
		n += int64(k)
		if err != nil {
			return n, err
		}
	}
	if n == 0 {
		return 0, errors.New("the node sent an empty snapshot")
	}
	if err := f.Chmod(0o600); err != nil {
		return n, err
	}
	if err := f.Sync(); err != nil {
		return n, err
	}
	if err := f.Close(); err != nil {
		return n, err
	}
	if err := os.Rename(tmp, path); err != nil {
		return n, err
	}
	ok = true
	return n, nil
}

func newEtcdLeaveCommand(g *globalFlags) *cobra.Command {
	return &cobra.Command{
		Use:   "leave",
		Short: "Remove the node's own member from the etcd cluster (before resetting or retiring it)",
		Long: `Leave hands etcd leadership on if the node holds it, then removes the node's own member
from the etcd cluster; the node's etcd stops. Do it before resetting or removing a
control-plane node for good. The last member cannot leave.`,
		Example: `  plinthctl -n 10.5.0.3 etcd leave`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return g.onNodes(cmd, false, func(ctx context.Context, s *session, node string, w io.Writer) error {
				resp, err := s.client.Machine.EtcdLeave(ctx, &machine.EtcdLeaveRequest{})
				if err != nil {
					return client.Describe(err)
				}
				fmt.Fprintf(w, "%s: %s\n", node, resp.Message)
				return nil
			})
		},
	}
}

func newEtcdRemoveMemberCommand(g *globalFlags) *cobra.Command {
	return &cobra.Command{
		Use:   "remove-member ID",
		Short: "Remove another member (by its hexadecimal id) from the etcd cluster, e.g. of a node that is gone",
		Example: `  plinthctl -n 10.5.0.2 etcd members
  plinthctl -n 10.5.0.2 etcd remove-member 8e9e05c52164694d`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			id, err := parseMemberID(args[0])
			if err != nil {
				return err
			}
			if err := g.oneNode("remove a member through one node: give one with -n"); err != nil {
				return err
			}
			return g.onNodes(cmd, false, func(ctx context.Context, s *session, node string, w io.Writer) error {
				if len(s.nodes) > 1 {
					return errors.New("remove a member through one node: give one with -n")
				}
				resp, err := s.client.Machine.EtcdRemoveMember(ctx, &machine.EtcdRemoveMemberRequest{MemberId: id})
				if err != nil {
					return client.Describe(err)
				}
				fmt.Fprintln(w, resp.Message)
				printMembers(w, resp.Members, 0)
				return nil
			})
		},
	}
}

func newEtcdForfeitLeadershipCommand(g *globalFlags) *cobra.Command {
	return &cobra.Command{
		Use:     "forfeit-leadership",
		Short:   "Hand etcd leadership to another member if the node holds it",
		Example: `  plinthctl -n 10.5.0.2 etcd forfeit-leadership`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return g.onNodes(cmd, false, func(ctx context.Context, s *session, node string, w io.Writer) error {
				resp, err := s.client.Machine.EtcdForfeitLeadership(ctx, &machine.EtcdForfeitLeadershipRequest{})
				if err != nil {
					return client.Describe(err)
				}
				fmt.Fprintf(w, "%s: %s\n", node, resp.Message)
				return nil
			})
		},
	}
}
