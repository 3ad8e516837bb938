package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/plinthos/plinth/pkg/api/machine"
	"github.com/plinthos/plinth/pkg/client"
)

func newImageCommand(g *globalFlags) *cobra.Command {
	cmd := &cobra.Command{
		Use:     "image",
		Aliases: []string{"images"},
		Short:   "Work with the images of the nodes' Kubernetes containers",
	}
	cmd.AddCommand(newImageListCommand(g), newImageImportCommand(g), newImageRemoveCommand(g))
	return cmd
}

func newImageImportCommand(g *globalFlags) *cobra.Command {
	return &cobra.Command{
		Use:   "import FILE|-",
		Short: "Load an image archive (docker save, or an OCI layout as a tar) into the nodes' Kubernetes image store",
		Long: `Import streams an image archive to each node (-n, or the context's nodes) over the node API,
and the node loads it into the image store of its Kubernetes containers, unpacked: pods that
name the image run it without pulling (imagePullPolicy: IfNotPresent or Never). The archive is
what docker save writes, or an OCI image layout as a tar, plain or gzipped; - reads it from
standard input. Nothing is pulled from a registry.

A file that is not an image archive is refused, and the node's store keeps what it had.
Needs role os:operator.`,
		Example: `  docker save myapp:v1 -o myapp.tar && plinthctl image import myapp.tar
  docker save myapp:v1 | plinthctl -n 10.5.0.2,10.5.0.3 image import -`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			path := args[0]
			if path == "-" {
				tmp, err := spoolStdin(cmd.InOrStdin())
				if err != nil {
					return err
				}
				defer os.Remove(tmp)
				path = tmp
			}
			info, err := os.Stat(path)
			if err != nil {
				return err
			}
			if info.IsDir() {
				return fmt.Errorf("%s is a directory: tar an OCI layout first (tar -C DIR -cf image.tar .)", path)
			}
			return g.onNodes(cmd, true, func(ctx context.Context, s *session, _ string, w io.Writer) error {
				return importArchive(ctx, s, path, w)
			})
		},
	}
}

// importArchive streams the image archive at path to the node of ctx, which imports it.
func importArchive(ctx context.Context, s *session, path string, w io.Writer) error {
	stream, err := s.client.Machine.ImageImport(ctx)
	if err != nil {
		return client.Describe(err)
	}
	err = sendFile(path, w, func(chunk []byte) error {
		return stream.Send(&machine.ImageImportRequest{Chunk: chunk})
	})
	if err != nil {
		if _, cerr := stream.CloseAndRecv(); cerr != nil {
			return client.Describe(cerr) // the node ended the call: its status says why
		}
		return err
	}
	fmt.Fprintln(w, "the node imports it...")
	resp, err := stream.CloseAndRecv()
	if err != nil {
		return client.Describe(err)
	}
	for _, im := range resp.Images {
		fmt.Fprintf(w, "imported %s (%s)\n", im.Name, im.Digest)
	}
	return nil
}

// spoolStdin copies standard input to a temporary file, so that it can be sent to several
// nodes, and returns its path.
func spoolStdin(in io.Reader) (string, error) {
	f, err := os.CreateTemp("", "plinth-image-*.tar")
	if err != nil {
		return "", err
	}
	if _, err := io.Copy(f, in); err != nil {
		f.Close()
		os.Remove(f.Name())
		return "", fmt.Errorf("read standard input: %w", err)
	}
	if err := f.Close(); err != nil {
		os.Remove(f.Name())
		return "", err
	}
	return f.Name(), nil
}

// sendFile sends the file at path in chunks under gRPC's message limit, showing progress
// every 2 s.
func sendFile(path string, w io.Writer, send func([]byte) error) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	info, err := f.Stat()
	if err != nil {
		return err
	}
	buf := make([]byte, upgradeChunk)
	var sent int64
	lastShown := time.Now()
	for {
		n, rerr := f.Read(buf)
		if n > 0 {
			if err := send(buf[:n]); err != nil {
				return client.Describe(err)
			}
			sent += int64(n)
			if time.Since(lastShown) > 2*time.Second {
				fmt.Fprintf(w, "sent %d of %d MiB\n", sent>>20, info.Size()>>20)
				lastShown = time.Now()
			}
		}
		if errors.Is(rerr, io.EOF) {
			break
		}
		if rerr != nil {
			return fmt.Errorf("read %s: %w", path, rerr)
		}
	}
	fmt.Fprintf(w, "sent %d MiB\n", sent>>20)
	return nil
}

func newImageListCommand(g *globalFlags) *cobra.Command {
	return &cobra.Command{
		Use:     "list",
		Aliases: []string{"ls"},
		Short:   "List the images in the nodes' Kubernetes image store",
		Long: `List the images that the nodes' containerd holds for Kubernetes: the bundle the node
image carries (imported at boot) and any pulled since, by name, with their digest and size.
The kubelet image of the node's own Kubernetes version is marked "built in": the node runs
its own kubelet program, that image's, and does not hold the image in containerd's store.`,
		Example: `  plinthctl image list
  plinthctl -n 10.5.0.2,10.5.0.3 image list`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return g.onNodes(cmd, false, func(ctx context.Context, s *session, node string, w io.Writer) error {
				resp, err := s.client.Machine.ImageList(ctx, &machine.ImageListRequest{})
				if err != nil {
					return client.Describe(err)
				}
				tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
				fmt.Fprintln(tw, "IMAGE\tDIGEST\tSIZE")
				for _, im := range resp.Images {
					fmt.Fprintf(tw, "%s\t%s\t%s", im.Name, im.Digest, bytesHuman(im.SizeBytes))
					if im.BuiltIn {
						fmt.Fprint(tw, "\tbuilt in")
					}
					fmt.Fprintln(tw)
				}
				return tw.Flush()
			})
		},
	}
}

func newImageRemoveCommand(g *globalFlags) *cobra.Command {
	return &cobra.Command{
		Use:     "remove IMAGE...",
		Aliases: []string{"rm"},
		Short:   "Remove images from the nodes' Kubernetes image store",
		Long: `Remove takes images out of the image store of the nodes' Kubernetes containers (-n, or the
context's nodes), by name as plinthctl image list shows it; a short name is completed as
Docker does (myapp:v1 is docker.io/library/myapp:v1). An image's content goes once no name
is left on it.

An image a container was made from (running or stopped) is refused: delete its pod first.
A name the node lacks is refused too; on each node either every name is removed or none.
The images the node image carries come back at the node's next boot. Needs role os:operator.`,
		Example: `  plinthctl image remove myapp:v1
  plinthctl -n 10.5.0.3 image rm myapp:v1 myapp:v2`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return g.onNodes(cmd, true, func(ctx context.Context, s *session, node string, w io.Writer) error {
				resp, err := s.client.Machine.ImageRemove(ctx, &machine.ImageRemoveRequest{Names: args})
				if err != nil {
					return client.Describe(err)
				}
				for _, im := range resp.Images {
					fmt.Fprintf(w, "removed %s (%s)\n", im.Name, im.Digest)
				}
				return nil
			})
		},
	}
}
