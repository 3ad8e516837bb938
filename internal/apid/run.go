package apid

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"os"
	"strconv"
	"strings"

	"github.com/plinthos/plinth/internal/ports"
)

// Main is the entry point of the apid process (`machined apid ...`): it parses args, serves
// until ctx is cancelled, and returns an error to print.
func Main(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("apid", flag.ContinueOnError)
	identityDir := fs.String("identity-dir", "", "directory with ca.crt, apid.crt and apid.key")
	socket := fs.String("machined-socket", "", "machined's unix socket")
	listen := fs.String("listen", ":"+strconv.Itoa(ports.NodeAPI), "address to serve the node API on")
	self := fs.String("self", "", "comma-separated names and addresses of this node")
	port := fs.String("peer-port", strconv.Itoa(ports.NodeAPI), "apid port of other nodes")
	forward := fs.Bool("forward", false, "forward requests that name another node (control planes only; needs a certificate with client usage)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *identityDir == "" || *socket == "" {
		return fmt.Errorf("apid needs --identity-dir and --machined-socket")
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, nil)).With("component", "apid")
	srv, err := New(Config{Identity: FilesIn(*identityDir), MachinedSocket: *socket, Self: splitList(*self), Forward: *forward, Port: *port, Log: log})
	if err != nil {
		return err
	}
	l, err := net.Listen("tcp", *listen)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", *listen, err)
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(l) }()
	select {
	case <-ctx.Done():
		srv.Stop()
		<-errc
		return nil
	case err := <-errc:
		srv.Stop()
		return err
	}
}

func splitList(s string) []string {
	var out []string
	for _, v := range strings.Split(s, ",") {
		if v = strings.TrimSpace(v); v != "" {
			out = append(out, v)
		}
	}
	return out
}
