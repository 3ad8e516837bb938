package cli

import (
	"strings"
	"testing"

	"github.com/plinthos/plinth/pkg/clientconfig"
)

// TestServiceJSONNeedsOneNode: the JSON of several nodes, each under its NODE header, is no
// JSON, so -o json refuses more than one node, before it connects.
func TestServiceJSONNeedsOneNode(t *testing.T) {
	_, pc := isolateHome(t)
	cfg := &clientconfig.Config{Context: "c", Contexts: map[string]*clientconfig.Context{
		"c": {Endpoints: []string{"192.0.2.1"}, Nodes: []string{"10.5.0.2", "10.5.0.3"}, CA: []byte("CA")}}}
	if err := cfg.Save(pc); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{
		{"service", "apid", "-o", "json"},
		{"-n", "10.5.0.2,10.5.0.4", "service", "apid", "-o", "json"},
	} {
		_, err := runCLI(t, args...)
		if err == nil || !strings.Contains(err.Error(), "-o json needs one node: name it with -n") {
			t.Errorf("plinthctl %s: %v", strings.Join(args, " "), err)
		}
	}
	// One node passes the check (and fails later on the context's made-up credentials).
	_, err := runCLI(t, "-n", "10.5.0.2", "service", "apid", "-o", "json")
	if err == nil || strings.Contains(err.Error(), "needs one node") {
		t.Errorf("one node: %v", err)
	}
}
