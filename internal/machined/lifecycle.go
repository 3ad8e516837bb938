package machined

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/plinthos/plinth/internal/events"
	"github.com/plinthos/plinth/internal/machineapi"
)

// stopWith ends Run with result, after publishing the sequence's events under actor.
func (n *node) stopWith(actorID, sequence string, result error) {
	n.events.Publish(events.Event{ActorID: actorID, Type: "sequence", Message: sequence + " started", Data: map[string]string{"sequence": sequence}})
	n.mu.Lock()
	n.exit = result
	n.mu.Unlock()
	// Let the reply reach the caller through apid before the services stop.
	time.AfterFunc(300*time.Millisecond, n.cancel)
}

// Reboot stops every service and boots again (local mode: machined runs itself anew).
func (n *node) Reboot(actorID string) error {
	n.stopWith(actorID, "reboot", ErrReboot)
	return nil
}

// Shutdown stops every service and ends machined.
func (n *node) Shutdown(actorID string) error {
	n.stopWith(actorID, "shutdown", nil)
	return nil
}

// Reset wipes the node's state (configuration, identity, etcd's state; EPHEMERAL's contents
// at the next boot; with WipeAll the boot disk's partition table and boot loader) and shuts
// down or, with reboot, boots again into an unconfigured node.
func (n *node) Reset(actorID string, graceful, reboot bool, wipe machineapi.WipeMode) error {
	_ = graceful // the API left etcd first when asked to (MachineServer.Reset)
	var wiper bootDiskWiper
	if wipe == machineapi.WipeAll {
		w, ok := n.platform.(bootDiskWiper)
		if !ok {
			return fmt.Errorf("wipe mode all: a %s node has no boot disk of its own; use system-disk", n.platform.Name())
		}
		wiper = w
	}
	n.events.Publish(events.Event{ActorID: actorID, Type: "sequence", Message: "reset: wiping the state directory (" + string(wipe) + ")", Data: map[string]string{"sequence": "reset"}})
	for _, name := range []string{"config.yaml", "config.staged.yaml", "node-id", "certified-nodes.json"} {
		if err := os.Remove(n.path(name)); err != nil && !os.IsNotExist(err) {
			return fmt.Errorf("reset: %w", err)
		}
	}
	if err := os.RemoveAll(n.path("apid")); err != nil {
		return fmt.Errorf("reset: %w", err)
	}
	if n.etcd != nil {
		// The node's etcd state goes too: after a reset it joins the cluster afresh (its
		// old member, if still listed, is replaced) or may be bootstrapped again.
		if err := n.etcd.Reset(); err != nil {
			return fmt.Errorf("reset: %w", err)
		}
	}
	if n.opts.EphemeralDir != "" {
		// EPHEMERAL is in use (containerd, kubelet, logs): emptied at the next boot, before
		// anything starts.
		if err := os.WriteFile(n.path(ephemeralWipeMarker), nil, 0o600); err != nil {
			return fmt.Errorf("reset: %w", err)
		}
	}
	if wiper != nil {
		if err := wiper.WipeBootDisk(); err != nil {
			return fmt.Errorf("reset: %w", err)
		}
	}
	result := error(nil)
	if reboot {
		result = ErrReboot
	}
	n.stopWith(actorID, "reset", result)
	return nil
}

// bootDiskWiper is a platform whose node boots from a disk of its own (metal).
type bootDiskWiper interface {
	// WipeBootDisk erases the boot disk's partition tables and boot loader, so that the
	// machine no longer boots from it.
	WipeBootDisk() error
}

// ephemeralWipeMarker, in the state directory, asks the next boot to empty EphemeralDir.
const ephemeralWipeMarker = "wipe-ephemeral"

// wipeEphemeral empties o.EphemeralDir (keeping o.StateDir when it is inside) if a reset
// asked for it, then forgets the request. It runs at boot, before anything uses the
// directory; a power loss while it runs leaves the request, and the next boot finishes.
func wipeEphemeral(o Options, console io.Writer) error {
	marker := filepath.Join(o.StateDir, ephemeralWipeMarker)
	if _, err := os.Stat(marker); err != nil || o.EphemeralDir == "" {
		return nil
	}
	n, err := removeAllExcept(o.EphemeralDir, o.StateDir)
	if err != nil {
		return fmt.Errorf("reset: empty %s: %w", o.EphemeralDir, err)
	}
	if err := os.Remove(marker); err != nil && !os.IsNotExist(err) {
		return fmt.Errorf("reset: %w", err)
	}
	fmt.Fprintf(console, "machined: reset: %s emptied (%d entries removed)\n", o.EphemeralDir, n)
	return nil
}

// removeAllExcept removes everything in dir but keep (and the directories leading to it),
// and returns how many entries of dir and its kept subdirectories it removed.
func removeAllExcept(dir, keep string) (int, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return 0, err
	}
	removed := 0
	for _, e := range entries {
		p := filepath.Join(dir, e.Name())
		switch {
		case p == keep:
			continue
		case e.IsDir() && strings.HasPrefix(keep, p+string(filepath.Separator)):
			n, err := removeAllExcept(p, keep)
			removed += n
			if err != nil {
				return removed, err
			}
			continue
		}
		if err := os.RemoveAll(p); err != nil {
			return removed, err
		}
		removed++
	}
	return removed, nil
}
