package controllers

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"

	"github.com/plinthos/plinth/internal/atomicfile"
	"github.com/plinthos/plinth/internal/controller"
	"github.com/plinthos/plinth/internal/resources"
)

// NodeIdentity gives the node a random identity, created once and kept in the state
// directory so it survives reboots.
type NodeIdentity struct {
	StateDir string
}

// Name implements controller.Controller.
func (c *NodeIdentity) Name() string { return "cluster.NodeIdentity" }

// Inputs implements controller.Controller.
func (c *NodeIdentity) Inputs() []controller.Input { return nil }

// Outputs implements controller.Controller.
func (c *NodeIdentity) Outputs() []controller.Output {
	return []controller.Output{{Type: resources.NodeIdentityType}}
}

// Run implements controller.Controller.
func (c *NodeIdentity) Run(ctx context.Context, rt controller.Runtime, log *slog.Logger) error {
	path := filepath.Join(c.StateDir, "node-id")
	data, err := os.ReadFile(path)
	id := strings.TrimSpace(string(data))
	switch {
	case errors.Is(err, fs.ErrNotExist) || err == nil && id == "":
		buf := make([]byte, 16)
		if _, err := rand.Read(buf); err != nil {
			return fmt.Errorf("generate node id: %w", err)
		}
		id = hex.EncodeToString(buf)
		if err := atomicfile.Write(path, []byte(id+"\n"), 0o600); err != nil {
			return err
		}
		log.Info("created the node identity", "id", id)
	case err != nil:
		return fmt.Errorf("read node id: %w", err)
	}
	if err := set(ctx, rt, resources.NamespaceCluster, resources.NodeIdentityType, resources.LocalID, resources.NodeIdentitySpec{NodeID: id}); err != nil {
		return err
	}
	<-ctx.Done()
	return nil
}
