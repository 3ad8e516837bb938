// Command machined is the init and node agent of a Plinth node. The same binary runs the
// node API front as `machined apid`, and the load balancer in front of a local cluster's
// control planes as `machined loadbalancer`.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/plinthos/plinth/internal/apid"
	"github.com/plinthos/plinth/internal/loadbalancer"
	"github.com/plinthos/plinth/internal/machined"
	"github.com/plinthos/plinth/internal/reaper"
	"github.com/plinthos/plinth/internal/version"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	if len(os.Args) > 1 && os.Args[1] == "apid" {
		if err := apid.Main(ctx, os.Args[2:]); err != nil {
			fmt.Fprintln(os.Stderr, "apid:", err)
			os.Exit(1)
		}
		return
	}
	if len(os.Args) > 1 && os.Args[1] == "loadbalancer" {
		if err := loadbalancer.Main(ctx, os.Args[2:], os.Stderr); err != nil {
			fmt.Fprintln(os.Stderr, "loadbalancer:", err)
			os.Exit(1)
		}
		return
	}
	var opts machined.Options
	fs := flag.NewFlagSet("machined", flag.ExitOnError)
	fs.StringVar(&opts.Mode, "mode", machined.ModeLocal, "how machined runs: local (an ordinary process, all state under --state-dir) or docker (PID 1 of a node container; the same names as plinthctl validate --mode)")
	fs.StringVar(&opts.StateDir, "state-dir", "", "directory for the configuration, identity, logs and sockets (docker mode: /var/lib/plinth)")
	fs.StringVar(&opts.ConfigPath, "config", "", "machine configuration file, used when none is stored yet (docker mode: "+machined.ContainerConfigPath+")")
	fs.StringVar(&opts.Address, "address", "", "the node's address; apid and trustd listen on it (local mode: 127.0.0.1; docker mode: the first address of its interfaces)")
	fs.IntVar(&opts.APIPort, "api-port", 50000, "node API (apid) port")
	fs.IntVar(&opts.TrustdPort, "trustd-port", 50001, "trustd port (control-plane nodes)")
	fs.IntVar(&opts.PeerAPIPort, "peer-api-port", 0, "apid port of other nodes (default: --api-port)")
	fs.Func("trustd-endpoint", "HOST:PORT of a control plane's trustd, for workers; repeat it or separate with commas to try several in order (default: the control-plane endpoint's host, port 50001)", func(v string) error {
		for _, e := range strings.Split(v, ",") {
			if e = strings.TrimSpace(e); e != "" {
				opts.TrustdEndpoints = append(opts.TrustdEndpoints, e)
			}
		}
		return nil
	})
	fs.StringVar(&opts.Hostname, "hostname", "", "host name when the configuration sets none")
	showVersion := fs.Bool("version", false, "print the version and exit")
	_ = fs.Parse(os.Args[1:])
	if *showVersion {
		fmt.Println("machined", version.Tag)
		return
	}
	pid1 := os.Getpid() == 1
	if reaper.Needed() {
		go reaper.Run(ctx, slog.Default())
	}
	err := machined.Run(ctx, opts, os.Stderr)
	if err == nil || errors.Is(err, machined.ErrReboot) {
		p, perr := machined.PlatformFor(opts.Mode)
		if perr != nil {
			fmt.Fprintln(os.Stderr, "machined:", perr)
			os.Exit(1)
		}
		// The reaper (ctx) keeps reaping while the platform stops what is left.
		herr := p.Halt(errors.Is(err, machined.ErrReboot))
		if herr == nil {
			return
		}
		err = herr
	}
	fmt.Fprintln(os.Stderr, "machined:", err)
	if pid1 {
		// PID 1 must not exit (the kernel would panic): show the reason and wait to be
		// stopped or rebooted.
		fmt.Fprintln(os.Stderr, "machined: cannot go on; waiting to be stopped")
		<-ctx.Done()
	}
	os.Exit(1)
}
