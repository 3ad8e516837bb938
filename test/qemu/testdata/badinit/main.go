// Command badinit is a deliberately broken init for the upgrade tests: it says so on the
// console and exits, so the kernel panics ("Attempted to kill init") and, with panic=10,
// reboots. An OS image whose stage-0 init (or machined) is this program is an upgrade that
// must roll back by itself.
package main

import (
	"fmt"
	"os"
)

func main() {
	fmt.Fprintln(os.Stderr, "badinit: this OS build is broken on purpose (upgrade rollback test); exiting")
	os.Exit(1)
}
