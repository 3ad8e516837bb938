package cli

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestSupportKeepsAnExistingBundle: an existing archive is refused before anything is
// collected, and left as it was.
func TestSupportKeepsAnExistingBundle(t *testing.T) {
	isolateHome(t)
	path := filepath.Join(t.TempDir(), "support.tar.gz")
	if err := os.WriteFile(path, []byte("old"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := runCLI(t, "support", "-O", path)
	if err == nil || !strings.Contains(err.Error(), "refusing to overwrite "+path+"; use --force") {
		t.Errorf("support over an existing bundle: %v", err)
	}
	if data, _ := os.ReadFile(path); string(data) != "old" {
		t.Errorf("the existing bundle changed: %q", data)
	}
}
