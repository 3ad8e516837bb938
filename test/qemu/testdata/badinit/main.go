// Command badinit is a deliberately broken init for the upgrade tests. By default it says so
// on the console and exits, so the kernel panics ("Attempted to kill init") and, with
// panic=10, reboots. Built with -ldflags "-X main.mode=hang" it hangs instead, forever: only
// the watchdog that stage 0 armed resets the machine. An OS image whose stage-0 init (or
// machined) is this program is an upgrade that must roll back by itself.
package main

import (
	"fmt"
	"os"
	"time"
)

// mode is "exit" or "hang".
var mode = "exit"

func main() {
	if mode == "hang" {
		fmt.Fprintln(os.Stderr, "badinit: this OS build hangs on purpose (upgrade rollback test); only a watchdog resets it")
		for {
			time.Sleep(time.Hour)
		}
	}
	fmt.Fprintln(os.Stderr, "badinit: this OS build is broken on purpose (upgrade rollback test); exiting")
	os.Exit(1)
}
