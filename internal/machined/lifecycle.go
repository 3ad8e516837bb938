package machined

import (
	"fmt"
	"os"
	"time"

	"github.com/plinthos/plinth/internal/events"
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

// Reset wipes the node's state (configuration, identity, logs) and shuts down or, with
// reboot, boots again into an unconfigured node.
func (n *node) Reset(actorID string, graceful, reboot bool) error {
	_ = graceful // the API left etcd first when asked to (MachineServer.Reset)
	n.events.Publish(events.Event{ActorID: actorID, Type: "sequence", Message: "reset: wiping the state directory", Data: map[string]string{"sequence": "reset"}})
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
	result := error(nil)
	if reboot {
		result = ErrReboot
	}
	n.stopWith(actorID, "reset", result)
	return nil
}
