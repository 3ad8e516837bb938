// Command plinth-init is /init of Plinth's initramfs (stage 0): it finds the root partition,
// switches root to it and executes machined. See docs/boot.md.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"runtime/debug"
	"syscall"

	"github.com/plinthos/plinth/internal/clock"
	"github.com/plinthos/plinth/internal/stage0"
)

func main() {
	if os.Getpid() != 1 {
		fmt.Fprintln(os.Stderr, "plinth-init is the /init of Plinth's initramfs and runs only as PID 1")
		os.Exit(2)
	}
	sys := stage0.LinuxSystem{}
	log := stage0.NewLog(os.Stderr)
	var cl stage0.Cmdline
	err := func() (err error) {
		defer func() {
			if r := recover(); r != nil {
				err = fmt.Errorf("stage 0 crashed: %v\n%s", r, debug.Stack())
			}
		}()
		cl, err = stage0.Run(context.Background(), stage0.Config{
			Root: "/", Sys: sys, Log: log, Clock: clock.Real{},
		})
		return err
	}()
	// A signal's default action would make the runtime exit, and PID 1 exiting panics the
	// kernel, scrolling the reason off some consoles.
	signal.Ignore(syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP, syscall.SIGQUIT, syscall.SIGUSR1, syscall.SIGUSR2, syscall.SIGPIPE)
	stage0.Halt(sys, log, cl, err)
}
