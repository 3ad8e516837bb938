// Command sleeper stands in for machined in the provisioner's integration test: it runs
// until a signal tells it how to end, like a node container does. SIGUSR1 exits 81 (a
// reboot), SIGUSR2 or SIGTERM exits 0 (a shutdown). `sleeper reboot` and `sleeper shutdown`
// (through docker exec) send those signals to PID 1: the node ends by itself, as machined
// does, whereas `docker kill` would count as a manual stop and defeat the restart policy.
// Every connection to port 50000 gets the host name and the configuration the provisioner
// copied to /etc/plinth/config.yaml, one per line.
package main

import (
	"fmt"
	"net"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	if len(os.Args) > 1 {
		sig := map[string]syscall.Signal{"reboot": syscall.SIGUSR1, "shutdown": syscall.SIGUSR2}[os.Args[1]]
		if sig == 0 {
			fmt.Fprintln(os.Stderr, "usage: sleeper [reboot|shutdown]")
			os.Exit(2)
		}
		if err := syscall.Kill(1, sig); err != nil {
			fmt.Fprintln(os.Stderr, "sleeper:", err)
			os.Exit(1)
		}
		return
	}
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGUSR1, syscall.SIGUSR2, syscall.SIGTERM)
	cfg, err := os.ReadFile("/etc/plinth/config.yaml")
	if err != nil {
		fmt.Fprintln(os.Stderr, "sleeper:", err)
	}
	host, _ := os.Hostname()
	fmt.Fprintf(os.Stderr, "sleeper: up as %s\n", host)
	l, err := net.Listen("tcp", ":50000")
	if err != nil {
		fmt.Fprintln(os.Stderr, "sleeper:", err)
		os.Exit(1)
	}
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			fmt.Fprintf(c, "%s\n%s\n", host, cfg)
			c.Close()
		}
	}()
	switch <-sigs {
	case syscall.SIGUSR1:
		fmt.Fprintln(os.Stderr, "sleeper: rebooting (exit 81)")
		os.Exit(81)
	default:
		fmt.Fprintln(os.Stderr, "sleeper: shutting down (exit 0)")
		os.Exit(0)
	}
}
