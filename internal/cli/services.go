package cli

import (
	"context"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	"github.com/plinthos/plinth/pkg/api/machine"
	"github.com/plinthos/plinth/pkg/client"
)

func newServicesCommand(g *globalFlags) *cobra.Command {
	return &cobra.Command{
		Use:   "services",
		Short: "List the services of the nodes with their state and health",
		Example: `  plinthctl services
  plinthctl -n 10.5.0.2,10.5.0.3 services`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return g.onNodes(cmd, false, func(ctx context.Context, s *session, node string, w io.Writer) error {
				resp, err := s.client.Machine.ServiceList(ctx, &machine.ServiceListRequest{})
				if err != nil {
					return client.Describe(err)
				}
				return writeServices(w, node, resp.Services)
			})
		},
	}
}

// writeServices prints the table of plinthctl services.
func writeServices(w io.Writer, node string, services []*machine.ServiceState) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NODE\tSERVICE\tSTATE\tHEALTH\tSINCE\tRESTARTS\tMESSAGE")
	for _, sv := range services {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%d\t%s\n", node, sv.Id, sv.State, orDash(sv.Health),
			since(sv.Since.AsTime()), sv.Restarts, sv.Message)
	}
	return tw.Flush()
}

func newServiceCommand(g *globalFlags) *cobra.Command {
	var output string
	cmd := &cobra.Command{
		Use:   "service ID [status|start|stop|restart]",
		Short: "Show or control one service",
		Example: `  plinthctl service apid
  plinthctl -n 10.5.0.2 service apid -o json
  plinthctl service trustd restart`,
		Args: cobra.RangeArgs(1, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			action := "status"
			if len(args) == 2 {
				action = args[1]
			}
			if output == "json" && action != "status" {
				return fmt.Errorf("--output json applies to the status, not to %s", action)
			}
			if err := checkOutput(g, output); err != nil {
				return err
			}
			id := args[0]
			return g.onNodes(cmd, false, func(ctx context.Context, s *session, node string, w io.Writer) error {
				var msg string
				var err error
				switch action {
				case "status":
					resp, err := s.client.Machine.ServiceInfo(ctx, &machine.ServiceInfoRequest{Id: id})
					if err != nil {
						return client.Describe(err)
					}
					if output == "json" {
						return printJSON(w, resp.Service)
					}
					printService(w, node, resp.Service)
					return nil
				case "start":
					var r *machine.ServiceStartResponse
					if r, err = s.client.Machine.ServiceStart(ctx, &machine.ServiceStartRequest{Id: id}); err == nil {
						msg = r.Message
					}
				case "stop":
					var r *machine.ServiceStopResponse
					if r, err = s.client.Machine.ServiceStop(ctx, &machine.ServiceStopRequest{Id: id}); err == nil {
						msg = r.Message
					}
				case "restart":
					var r *machine.ServiceRestartResponse
					if r, err = s.client.Machine.ServiceRestart(ctx, &machine.ServiceRestartRequest{Id: id}); err == nil {
						msg = r.Message
					}
				default:
					return fmt.Errorf("unknown action %q: use status, start, stop or restart", action)
				}
				if err != nil {
					return client.Describe(err)
				}
				fmt.Fprintf(w, "%s: %s\n", node, msg)
				return nil
			})
		},
	}
	cmd.Flags().StringVarP(&output, "output", "o", "table", "output format of the status: table, or json (of one node)")
	return cmd
}

// jsonNeedsOneNode refuses more than one node (named with -n, else the context's): their
// JSON documents, each under its NODE header, would not make one JSON document.
func jsonNeedsOneNode(g *globalFlags) error {
	nodes := g.nodes
	if len(nodes) == 0 {
		_, _, _, cc, err := loadClientConfig(g)
		if err != nil {
			return err
		}
		nodes = cc.Nodes
	}
	if len(nodes) > 1 {
		return fmt.Errorf("-o json needs one node: name it with -n (%d nodes are selected: %s)", len(nodes), strings.Join(nodes, ", "))
	}
	return nil
}

// checkOutput checks an --output value of a command that prints a table or, for one node,
// JSON; for json it refuses more than one node.
func checkOutput(g *globalFlags, output string) error {
	switch output {
	case "table":
		return nil
	case "json":
		return jsonNeedsOneNode(g)
	}
	return fmt.Errorf("--output %q must be table or json", output)
}

// printJSON prints an API message as one JSON document with every field, zero values
// included (a service's restarts: 0, health: "" when it has no health check).
func printJSON(w io.Writer, m proto.Message) error {
	out, err := protojson.MarshalOptions{Multiline: true, Indent: "  ", EmitUnpopulated: true}.Marshal(m)
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(w, "%s\n", out)
	return err
}

func printService(w io.Writer, node string, sv *machine.ServiceState) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "NODE\t%s\nID\t%s\nSTATE\t%s\nHEALTH\t%s\nSINCE\t%s\nRUNNER\t%s\nRESTARTS\t%d\nMESSAGE\t%s\n",
		node, sv.Id, sv.State, orDash(sv.Health), since(sv.Since.AsTime()), sv.Runner, sv.Restarts, sv.Message)
	fmt.Fprintln(tw, "HISTORY")
	for _, h := range sv.History {
		fmt.Fprintf(tw, "  %s\t%s -> %s\t%s\n", h.Time.AsTime().Local().Format(time.DateTime), h.From, h.To, h.Message)
	}
	_ = tw.Flush()
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func since(t time.Time) string {
	if t.IsZero() || t.Unix() <= 0 {
		return "-"
	}
	return time.Since(t).Round(time.Second).String() + " ago"
}
