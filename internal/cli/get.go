package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"
	"go.yaml.in/yaml/v3"

	"github.com/plinthos/plinth/internal/yamlx"
	rpb "github.com/plinthos/plinth/pkg/api/resource"
	"github.com/plinthos/plinth/pkg/client"
)

func newGetCommand(g *globalFlags) *cobra.Command {
	var (
		output    string
		namespace string
		watch     bool
	)
	cmd := &cobra.Command{
		Use:   "get TYPE [ID]",
		Short: "Show resources of the nodes (get rd lists the types)",
		Long: `Show the typed resources machined keeps: configuration, host name, addresses, services,
certificates, versions... 'plinthctl get rd' lists every type with its aliases. Types that
hold secrets are shown only to os:admin.`,
		Example: `  plinthctl get rd
  plinthctl get services
  plinthctl get hostname -o yaml
  plinthctl get services --watch
  plinthctl -n 10.5.0.2,10.5.0.3 get version`,
		Args: cobra.RangeArgs(1, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			if output != "table" && output != "yaml" && output != "json" {
				return fmt.Errorf("--output %q must be table, yaml or json", output)
			}
			s, err := g.connect()
			if err != nil {
				return err
			}
			defer s.client.Close()
			typ := args[0]
			id := ""
			if len(args) == 2 {
				id = args[1]
			}
			if isDefinitions(typ) {
				return s.each(cmd.Context(), cmd.OutOrStdout(), func(ctx context.Context, node string, w io.Writer) error {
					return printDefinitions(ctx, s, w)
				})
			}
			if watch {
				return s.eachStreaming(cmd.Context(), cmd.OutOrStdout(), func(ctx context.Context, node string, w io.Writer) error {
					return watchResources(ctx, s, w, node, namespace, typ, id, output)
				})
			}
			return s.each(cmd.Context(), cmd.OutOrStdout(), func(ctx context.Context, node string, w io.Writer) error {
				return getResources(ctx, s, w, node, namespace, typ, id, output)
			})
		},
	}
	cmd.Flags().StringVarP(&output, "output", "o", "table", "output format: table, yaml or json")
	cmd.Flags().StringVar(&namespace, "namespace", "", "resource namespace (default: the type's)")
	cmd.Flags().BoolVarP(&watch, "watch", "w", false, "keep printing changes")
	return cmd
}

func isDefinitions(typ string) bool {
	switch strings.ToLower(typ) {
	case "rd", "rds", "resourcedefinition", "resourcedefinitions":
		return true
	}
	return false
}

func printDefinitions(ctx context.Context, s *session, w io.Writer) error {
	resp, err := s.client.Resource.Definitions(ctx, &rpb.DefinitionsRequest{})
	if err != nil {
		return client.Describe(err)
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "TYPE\tALIASES\tNAMESPACE\tSENSITIVE")
	for _, d := range resp.Definitions {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%v\n", d.Type, strings.Join(d.Aliases, ","), d.DefaultNamespace, d.Sensitive)
	}
	return tw.Flush()
}

func getResources(ctx context.Context, s *session, w io.Writer, node, ns, typ, id, output string) error {
	var items []*rpb.Resource
	if id != "" {
		resp, err := s.client.Resource.Get(ctx, &rpb.GetRequest{Namespace: ns, Type: typ, Id: id})
		if err != nil {
			return client.Describe(err)
		}
		items = append(items, resp.Resource)
	} else {
		stream, err := s.client.Resource.List(ctx, &rpb.ListRequest{Namespace: ns, Type: typ})
		if err != nil {
			return client.Describe(err)
		}
		for {
			resp, err := stream.Recv()
			if err == io.EOF {
				break
			}
			if err != nil {
				return client.Describe(err)
			}
			items = append(items, resp.Resource)
		}
	}
	p := &resourcePrinter{w: w, node: node, output: output, columns: typeColumns(ctx, s, typ)}
	for _, r := range items {
		if err := p.print("", r); err != nil {
			return err
		}
	}
	return p.flush()
}

func watchResources(ctx context.Context, s *session, w io.Writer, node, ns, typ, id, output string) error {
	stream, err := s.client.Resource.Watch(ctx, &rpb.WatchRequest{Namespace: ns, Type: typ, Id: id})
	if err != nil {
		return client.Describe(err)
	}
	p := &resourcePrinter{w: w, node: node, output: output, event: true, columns: typeColumns(ctx, s, typ)}
	for {
		resp, err := stream.Recv()
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return client.Describe(err)
		}
		if resp.EventType == rpb.EventType_EVENT_TYPE_BOOTSTRAPPED {
			continue
		}
		label := strings.ToLower(strings.TrimPrefix(resp.EventType.String(), "EVENT_TYPE_"))
		if err := p.print(label, resp.Resource); err != nil {
			return err
		}
		if err := p.flush(); err != nil {
			return err
		}
	}
}

// resourcePrinter prints resources as a table (one row each) or as YAML/JSON documents.
type resourcePrinter struct {
	w      io.Writer
	node   string
	output string
	event  bool
	tw     *tabwriter.Writer
	// columns are the type's table columns; without any, the table shows a summary of
	// the spec.
	columns []*rpb.Column
}

// typeColumns returns the table columns of the type named typ (a type or an alias), as the
// node defines them; none when the node does not say (an older node).
func typeColumns(ctx context.Context, s *session, typ string) []*rpb.Column {
	resp, err := s.client.Resource.Definitions(ctx, &rpb.DefinitionsRequest{})
	if err != nil {
		return nil
	}
	for _, d := range resp.Definitions {
		if strings.EqualFold(d.Type, typ) || slices.ContainsFunc(d.Aliases, func(a string) bool { return strings.EqualFold(a, typ) }) {
			return d.PrintColumns
		}
	}
	return nil
}

// columnValue evaluates a column's path ({.a.b}) in spec; lists are joined with commas.
func columnValue(spec map[string]any, path string) string {
	path = strings.TrimSuffix(strings.TrimPrefix(path, "{"), "}")
	var v any = spec
	for _, k := range strings.Split(strings.TrimPrefix(path, "."), ".") {
		m, ok := v.(map[string]any)
		if !ok {
			return "-"
		}
		if v, ok = m[k]; !ok {
			return "-"
		}
	}
	switch t := v.(type) {
	case nil:
		return "-"
	case []any:
		parts := make([]string, 0, len(t))
		for _, x := range t {
			parts = append(parts, fmt.Sprint(x))
		}
		return orDash(strings.Join(parts, ","))
	case map[string]any:
		return summarize(t)
	}
	return orDash(fmt.Sprint(v))
}

func (p *resourcePrinter) print(event string, r *rpb.Resource) error {
	md := r.GetMetadata()
	var spec map[string]any
	if err := yaml.Unmarshal(r.Spec, &spec); err != nil {
		return fmt.Errorf("decode %s/%s: %w", md.Type, md.Id, err)
	}
	doc := map[string]any{
		"node": p.node,
		"metadata": map[string]any{"namespace": md.Namespace, "type": md.Type, "id": md.Id, "version": md.Version,
			"owner": md.Owner, "phase": md.Phase, "created": md.Created.AsTime(), "updated": md.Updated.AsTime()},
		"spec": spec,
	}
	if event != "" {
		doc["event"] = event
	}
	switch p.output {
	case "yaml":
		out, err := yamlx.Marshal(doc)
		if err != nil {
			return err
		}
		_, err = fmt.Fprintf(p.w, "---\n%s", out)
		return err
	case "json":
		out, err := json.MarshalIndent(doc, "", "  ")
		if err != nil {
			return err
		}
		_, err = fmt.Fprintf(p.w, "%s\n", out)
		return err
	}
	if p.tw == nil {
		p.tw = tabwriter.NewWriter(p.w, 0, 4, 2, ' ', 0)
		header := "NODE\tNAMESPACE\tTYPE\tID\tVERSION"
		if p.event {
			header = "EVENT\t" + header
		}
		if len(p.columns) == 0 {
			header += "\tSPEC"
		}
		for _, c := range p.columns {
			header += "\t" + strings.ToUpper(c.Name)
		}
		fmt.Fprintln(p.tw, header)
	}
	row := fmt.Sprintf("%s\t%s\t%s\t%s\t%d", p.node, md.Namespace, md.Type, md.Id, md.Version)
	if p.event {
		row = event + "\t" + row
	}
	if len(p.columns) == 0 {
		row += "\t" + summarize(spec)
	}
	for _, c := range p.columns {
		row += "\t" + columnValue(spec, c.JsonPath)
	}
	fmt.Fprintln(p.tw, row)
	return nil
}

func (p *resourcePrinter) flush() error {
	if p.tw != nil {
		return p.tw.Flush()
	}
	return nil
}

// summarize renders a spec's top-level scalar fields on one line.
func summarize(spec map[string]any) string {
	var parts []string
	for _, k := range slices.Sorted(maps.Keys(spec)) {
		switch v := spec[k].(type) {
		case map[string]any, []any:
			continue
		default:
			s := fmt.Sprint(v)
			if len(s) > 40 {
				s = s[:37] + "..."
			}
			parts = append(parts, k+"="+s)
		}
	}
	return strings.Join(parts, " ")
}
