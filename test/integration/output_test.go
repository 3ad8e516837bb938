//go:build integration

package integration

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"
)

// The tests assert on plinthctl's structured output (-o json), not on table columns: a
// column match such as "Running  healthy" depends on the column widths and a substring
// such as "healthy" also matches "unhealthy".

// serviceResource is one document of `plinthctl get services -o json`: the Services
// resource of one service (internal/resources.ServiceSpec under spec).
type serviceResource struct {
	Node     string `json:"node"`
	Metadata struct {
		ID string `json:"id"`
	} `json:"metadata"`
	Spec struct {
		State         string `json:"state"`
		Running       bool   `json:"running"`
		Healthy       bool   `json:"healthy"`
		HealthUnknown bool   `json:"healthUnknown"`
		Message       string `json:"message"`
	} `json:"spec"`
}

// decodeServices reads the stream of JSON documents `plinthctl get services -o json`
// prints (one per service) into a map by service ID.
func decodeServices(out string) (map[string]serviceResource, error) {
	svcs := map[string]serviceResource{}
	dec := json.NewDecoder(strings.NewReader(out))
	for {
		var r serviceResource
		err := dec.Decode(&r)
		if errors.Is(err, io.EOF) {
			return svcs, nil
		}
		if err != nil {
			return nil, fmt.Errorf("decode the services: %w\n%s", err, out)
		}
		if r.Metadata.ID == "" {
			return nil, fmt.Errorf("a service without an id:\n%s", out)
		}
		svcs[r.Metadata.ID] = r
	}
}

// services runs `plinthctl get services -o json` with a client config (and any global
// flags before it, e.g. -n) and decodes its output.
func services(tb testing.TB, cfg string, global ...string) (map[string]serviceResource, error) {
	tb.Helper()
	out, err := ctl(tb, cfg, append(global, "get", "services", "-o", "json")...)
	if err != nil {
		return nil, fmt.Errorf("%v: %s", err, out)
	}
	return decodeServices(out)
}

// runningAndHealthy returns nil when each of ids is running and its health check passed;
// a service without a health check, or whose check has not run yet, does not count as
// healthy.
func runningAndHealthy(svcs map[string]serviceResource, ids ...string) error {
	for _, id := range ids {
		s, ok := svcs[id]
		if !ok {
			return fmt.Errorf("no service %q among %d", id, len(svcs))
		}
		if !s.Spec.Running || !s.Spec.Healthy || s.Spec.HealthUnknown {
			return fmt.Errorf("service %s: state %s, running %v, healthy %v, health unknown %v, message %q",
				id, s.Spec.State, s.Spec.Running, s.Spec.Healthy, s.Spec.HealthUnknown, s.Spec.Message)
		}
	}
	return nil
}

// serviceStatus is `plinthctl service ID -o json`: the ServiceState message of the API.
type serviceStatus struct {
	ID       string `json:"id"`
	State    string `json:"state"`
	Health   string `json:"health"`
	Message  string `json:"message"`
	Since    string `json:"since"`
	Runner   string `json:"runner"`
	Restarts int    `json:"restarts"`
	History  []struct {
		Time    string `json:"time"`
		From    string `json:"from"`
		To      string `json:"to"`
		Message string `json:"message"`
	} `json:"history"`
}

func decodeServiceStatus(out string) (serviceStatus, error) {
	var s serviceStatus
	dec := json.NewDecoder(strings.NewReader(out))
	if err := dec.Decode(&s); err != nil {
		return s, fmt.Errorf("decode the service status: %w\n%s", err, out)
	}
	if dec.More() {
		return s, fmt.Errorf("more than one document:\n%s", out)
	}
	return s, nil
}

// TestServiceOutputDecoding pins what the helpers above accept: the documents plinthctl
// prints decode, and a service that is running but unhealthy, or whose health is
// unknown, or that is not running, does not pass for running and healthy; the fields
// asserted on are read from the documents (a wrong JSON name would leave them zero).
func TestServiceOutputDecoding(t *testing.T) {
	doc := func(id, spec string) string {
		return fmt.Sprintf(`{"node": "127.0.0.1:50000", "metadata": {"namespace": "runtime", "type": "Services.runtime.plinth.dev",
  "id": %q, "version": 3, "owner": "ServiceStatusController", "phase": "running", "created": "2026-01-02T03:04:05Z",
  "updated": "2026-01-02T03:04:06Z"}, "spec": %s}
`, id, spec)
	}
	out := doc("apid", `{"state": "Running", "running": true, "healthy": true, "healthUnknown": false}`) +
		doc("trustd", `{"state": "Running", "running": true, "healthy": false, "healthUnknown": false, "message": "dial tcp: connection refused"}`) +
		doc("unchecked", `{"state": "Running", "running": true, "healthy": false, "healthUnknown": true}`) +
		doc("stopped", `{"state": "Finished", "running": false, "healthy": false, "healthUnknown": true, "message": "stopped"}`)
	svcs, err := decodeServices(out)
	if err != nil {
		t.Fatal(err)
	}
	if len(svcs) != 4 {
		t.Fatalf("decoded %d services, want 4", len(svcs))
	}
	if err := runningAndHealthy(svcs, "apid"); err != nil {
		t.Errorf("a running, healthy service: %v", err)
	}
	for _, id := range []string{"trustd", "unchecked", "stopped", "missing"} {
		if err := runningAndHealthy(svcs, "apid", id); err == nil {
			t.Errorf("service %s passed for running and healthy", id)
		}
	}
	if _, err := decodeServices(`NODE     SERVICE  STATE    HEALTH` + "\n" + `apid     Running  unhealthy`); err == nil {
		t.Error("a table decoded as JSON")
	}

	st, err := decodeServiceStatus(`{"id": "kubelet", "state": "Running", "health": "unhealthy", "message": "", "since": "2026-01-02T03:04:05Z",
  "runner": "process kubelet", "restarts": 2, "history": [{"time": "2026-01-02T03:04:05Z", "from": "Waiting", "to": "Running", "message": ""}]}`)
	if err != nil {
		t.Fatal(err)
	}
	if st.ID != "kubelet" || st.State != "Running" || st.Health != "unhealthy" || st.Restarts != 2 || len(st.History) != 1 || st.History[0].To != "Running" {
		t.Errorf("decoded %+v", st)
	}
}
