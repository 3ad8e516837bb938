// Command plinthctl is the command-line client of Plinth.
package main

import (
	"fmt"
	"os"

	"github.com/plinthos/plinth/internal/cli"
)

func main() {
	if err := cli.NewRootCommand().Execute(); err != nil {
		fmt.Fprintln(os.Stderr, "error:", err)
		os.Exit(1)
	}
}
