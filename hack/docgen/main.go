// Command docgen regenerates pkg/config/zz_docs.go and docs/reference/config.md from the
// doc comments of the configuration types, and docs/cli.md from plinthctl's command tree. Run it from the repository root (make generate).
package main

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/plinthos/plinth/internal/cli"
	"github.com/plinthos/plinth/internal/docgen"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "docgen:", err)
		os.Exit(1)
	}
}

func run() error {
	types, err := docgen.Parse("pkg/config")
	if err != nil {
		return err
	}
	src, err := docgen.GoSource("config", types)
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join("pkg", "config", "zz_docs.go"), src, 0o644); err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Join("docs", "reference"), 0o755); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join("docs", "reference", "config.md"), docgen.Markdown("MachineConfig", types), 0o644); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join("docs", "cli.md"), cli.Reference(cli.NewRootCommand()), 0o644)
}
