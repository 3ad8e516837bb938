package cli

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/spf13/cobra"

	"github.com/plinthos/plinth/pkg/api/machine"
	"github.com/plinthos/plinth/pkg/client"
)

func newLogsCommand(g *globalFlags) *cobra.Command {
	var (
		follow, previous, kubernetes bool
		tail                         int32
	)
	cmd := &cobra.Command{
		Use:   "logs SERVICE",
		Short: "Show a service's logs (also from the previous boot)",
		Long: `Show the logs of a service (or of machined itself). Logs are kept in memory and on disk,
so --previous shows the log of the previous boot, after a reboot.`,
		Example: `  plinthctl logs apid
  plinthctl logs machined -f --tail 20
  plinthctl logs apid --previous`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return g.onNodes(cmd, true, func(ctx context.Context, s *session, node string, w io.Writer) error {
				stream, err := s.client.Machine.Logs(ctx, &machine.LogsRequest{Service: args[0], Follow: follow, TailLines: tail, Previous: previous, Kubernetes: kubernetes})
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
	cmd.Flags().BoolVarP(&follow, "follow", "f", false, "keep printing new lines")
	cmd.Flags().Int32Var(&tail, "tail", -1, "how many of the last lines to show first (-1: all kept in memory)")
	cmd.Flags().BoolVar(&previous, "previous", false, "show the log of the previous boot")
	cmd.Flags().BoolVarP(&kubernetes, "kubernetes", "k", false, "the log of a Kubernetes container instead of a service")
	return cmd
}

// copyChunks writes received chunks until the stream ends; a cancelled context is a clean end.
func copyChunks(ctx context.Context, w io.Writer, recv func() ([]byte, error)) error {
	for {
		data, err := recv()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return client.Describe(err)
		}
		if _, err := w.Write(data); err != nil {
			return err
		}
	}
}

func newEventsCommand(g *globalFlags) *cobra.Command {
	var (
		tail    int32
		actorID string
		sinceID string
		follow  bool
	)
	cmd := &cobra.Command{
		Use:   "events",
		Short: "Show the node's events: sequences, services, configuration changes",
		Example: `  plinthctl events
  plinthctl events -f --tail 0
  plinthctl events --actor-id 3f2a...`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return g.onNodes(cmd, true, func(ctx context.Context, s *session, node string, w io.Writer) error {
				stream, err := s.client.Machine.Events(ctx, &machine.EventsRequest{TailEvents: tail, ActorId: actorID, SinceId: sinceID, Follow: follow})
				if err != nil {
					return client.Describe(err)
				}
				for {
					ev, err := stream.Recv()
					if err == io.EOF {
						return nil
					}
					if err != nil {
						if ctx.Err() != nil {
							return nil
						}
						return client.Describe(err)
					}
					writeEvent(w, ev)
				}
			})
		},
	}
	cmd.Flags().Int32Var(&tail, "tail", -1, "how many past events to show first (-1: all kept)")
	cmd.Flags().StringVar(&actorID, "actor-id", "", "only the events of this actor (an operation's id)")
	cmd.Flags().StringVar(&sinceID, "since-id", "", "only events after this id")
	cmd.Flags().BoolVarP(&follow, "follow", "f", false, "keep printing new events")
	return cmd
}

// writeEvent prints one line of plinthctl events.
func writeEvent(w io.Writer, ev *machine.EventsResponse) {
	actor := ev.ActorId
	if actor == "" {
		actor = "-"
	}
	fmt.Fprintf(w, "%s  %s  %-8s  %s  actor=%s\n", ev.Time.AsTime().Local().Format(time.DateTime), ev.Id, ev.Type, ev.Message, actor)
}
