//go:build e2e

package e2e

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
)

// The tests read structured output (kubectl -o json, plinthctl -o json) rather than
// table columns: a substring such as "healthy" also matches "unhealthy", and "Ready"
// matches "NotReady".

// nodeReadiness decodes `kubectl get nodes -o json` into each node's Ready condition
// status ("True", "False", "Unknown"; "" when the node has no Ready condition yet).
func nodeReadiness(out string) (map[string]string, error) {
	var list struct {
		Items []struct {
			Metadata struct {
				Name string `json:"name"`
			} `json:"metadata"`
			Status struct {
				Conditions []struct {
					Type   string `json:"type"`
					Status string `json:"status"`
				} `json:"conditions"`
			} `json:"status"`
		} `json:"items"`
	}
	if err := json.Unmarshal([]byte(out), &list); err != nil {
		return nil, fmt.Errorf("decode the nodes: %w\n%s", err, out)
	}
	ready := map[string]string{}
	for _, n := range list.Items {
		ready[n.Metadata.Name] = ""
		for _, c := range n.Status.Conditions {
			if c.Type == "Ready" {
				ready[n.Metadata.Name] = c.Status
			}
		}
	}
	return ready, nil
}

// nodesReady returns nil when exactly the named nodes exist and each is Ready.
func nodesReady(ready map[string]string, names ...string) error {
	for _, n := range names {
		status, ok := ready[n]
		if !ok {
			return fmt.Errorf("node %s missing (nodes: %v)", n, ready)
		}
		if status != "True" {
			return fmt.Errorf("node %s is not Ready (Ready condition %q)", n, status)
		}
	}
	if len(ready) != len(names) {
		return fmt.Errorf("nodes %v, want only %v", ready, names)
	}
	return nil
}

// checkNodesReady runs `kubectl get nodes -o json` (after any extra arguments, e.g.
// --context) and reports whether exactly the named nodes exist, all Ready.
func (e *env) checkNodesReady(kubectlArgs []string, names ...string) error {
	e.t.Helper()
	out := e.kube(append(kubectlArgs, "get", "nodes", "-o", "json")...)
	ready, err := nodeReadiness(out)
	if err != nil {
		return err
	}
	return nodesReady(ready, names...)
}

// serviceStatus is `plinthctl service ID -o json`: the ServiceState message of the API.
type serviceStatus struct {
	ID       string `json:"id"`
	State    string `json:"state"`
	Health   string `json:"health"` // "healthy", "unhealthy" or "" without a health check
	Message  string `json:"message"`
	Restarts int    `json:"restarts"`
}

func decodeServiceStatus(out string) (serviceStatus, error) {
	var s serviceStatus
	if err := json.Unmarshal([]byte(out), &s); err != nil {
		return s, fmt.Errorf("decode the service status: %w\n%s", err, out)
	}
	if s.ID == "" {
		return s, fmt.Errorf("no service id in:\n%s", out)
	}
	return s, nil
}

// runningHealthyNeverRestarted returns nil when the service runs, its health check passed
// and it was not restarted.
func runningHealthyNeverRestarted(s serviceStatus) error {
	if s.State != "Running" || s.Health != "healthy" || s.Restarts != 0 {
		return fmt.Errorf("service %s: state %s, health %q, %d restarts, message %q", s.ID, s.State, s.Health, s.Restarts, s.Message)
	}
	return nil
}

// TestOutputDecoding checks the decoders and predicates above without a cluster: a
// NotReady, unknown, missing or extra node and an unhealthy or restarted service fail.
func TestOutputDecoding(t *testing.T) {
	node := func(name, ready string) string {
		return fmt.Sprintf(`{"kind": "Node", "metadata": {"name": %q}, "status": {"conditions": [
  {"type": "MemoryPressure", "status": "False"}, {"type": "Ready", "status": %q}]}}`, name, ready)
	}
	list := func(items ...string) string {
		return `{"apiVersion": "v1", "kind": "List", "items": [` + strings.Join(items, ",") + `]}`
	}
	for _, tc := range []struct {
		out  string
		want bool
	}{
		{list(node("cp", "True"), node("w", "True")), true},
		{list(node("cp", "True"), node("w", "False")), false},
		{list(node("cp", "True"), node("w", "Unknown")), false},
		{list(node("cp", "True"), `{"metadata": {"name": "w"}, "status": {}}`), false},
		{list(node("cp", "True")), false},
		{list(node("cp", "True"), node("w", "True"), node("x", "True")), false},
	} {
		ready, err := nodeReadiness(tc.out)
		if err != nil {
			t.Fatal(err)
		}
		if err := nodesReady(ready, "cp", "w"); (err == nil) != tc.want {
			t.Errorf("nodesReady(%v) = %v, want ok %v", ready, err, tc.want)
		}
	}
	if _, err := nodeReadiness("NAME   STATUS     ROLES\nw      NotReady   <none>\n"); err == nil {
		t.Error("a table decoded as JSON")
	}

	for _, tc := range []struct {
		out  string
		want bool
	}{
		{`{"id": "kubelet", "state": "Running", "health": "healthy", "restarts": 0}`, true},
		{`{"id": "kubelet", "state": "Running", "health": "unhealthy", "restarts": 0}`, false},
		{`{"id": "kubelet", "state": "Running", "health": "", "restarts": 0}`, false},
		{`{"id": "kubelet", "state": "Running", "health": "healthy", "restarts": 1}`, false},
		{`{"id": "kubelet", "state": "Waiting", "health": "", "restarts": 0, "message": "restarting in 1s"}`, false},
	} {
		st, err := decodeServiceStatus(tc.out)
		if err != nil {
			t.Fatal(err)
		}
		if err := runningHealthyNeverRestarted(st); (err == nil) != tc.want {
			t.Errorf("%s: %v, want ok %v", tc.out, err, tc.want)
		}
	}
}
