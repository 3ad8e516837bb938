// Command machined is the init and node agent of a Plinth node. The node runtime (services,
// resources, the API) is the subject of a later milestone; today machined loads and
// validates the machine configuration it would run with, so that the configuration path is
// exercised end to end.
package main

import (
	"flag"
	"fmt"
	"log/slog"
	"os"

	"github.com/plinthos/plinth/internal/version"
	"github.com/plinthos/plinth/pkg/config"
)

func main() {
	configPath := flag.String("config", "", "machine configuration file")
	mode := flag.String("platform", "metal", "platform the configuration is validated for: docker, metal or cloud")
	showVersion := flag.Bool("version", false, "print the version and exit")
	flag.Parse()
	log := slog.New(slog.NewTextHandler(os.Stderr, nil)).With("component", "machined")
	if *showVersion {
		fmt.Println("machined", version.Tag)
		return
	}
	if err := run(log, *configPath, *mode); err != nil {
		log.Error("machined cannot start", "error", err)
		os.Exit(1)
	}
	log.Error("the node runtime is not implemented in this version; only configuration loading is", "version", version.Tag)
	os.Exit(2)
}

func run(log *slog.Logger, path, modeName string) error {
	if path == "" {
		return fmt.Errorf("no configuration: pass --config FILE")
	}
	m, err := config.ParseMode(modeName)
	if err != nil {
		return err
	}
	doc, err := config.LoadFile(path)
	if err != nil {
		return err
	}
	if err := doc.Validate(m); err != nil {
		return fmt.Errorf("invalid configuration:\n%w", err)
	}
	log.Info("configuration is valid", "file", path, "type", doc.Config.Machine.Type, "cluster", doc.Config.Cluster.Name)
	return nil
}
