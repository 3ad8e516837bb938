// Command containerd is containerd and its client ctr in one binary, built from the
// upstream packages pinned in payload/go.mod: run as ctr (a symlink /usr/bin/ctr ->
// containerd) it is ctr, else the daemon. The two share most of their code, and machined
// runs ctr for what it asks containerd: one binary saves the node image about 20 MB. The
// daemon's main and ctr's are upstream's (cmd/containerd, cmd/ctr).
package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	_ "github.com/containerd/containerd/v2/cmd/containerd/builtins"
	"github.com/containerd/containerd/v2/cmd/containerd/command"
	"github.com/containerd/containerd/v2/cmd/ctr/app"
)

func main() {
	var err error
	name := filepath.Base(os.Args[0])
	if name == "ctr" {
		err = app.New().Run(context.Background(), os.Args)
	} else {
		name = "containerd"
		err = command.App().Run(context.Background(), os.Args)
	}
	if err != nil {
		_, _ = fmt.Fprintln(os.Stderr, name+":", err)
		os.Exit(1)
	}
}
