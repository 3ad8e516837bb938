package cli

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/plinthos/plinth/internal/atomicfile"
)

// outputFile is one file a command is about to write.
type outputFile struct {
	path string
	data []byte
	perm os.FileMode
}

// writeOutputs writes files, refusing (before writing anything) when one exists and force
// is false. Each file is written atomically.
func writeOutputs(files []outputFile, force bool, report func(path string)) error {
	if !force {
		var existing []string
		for _, f := range files {
			if _, err := os.Stat(f.path); err == nil {
				existing = append(existing, f.path)
			} else if !errors.Is(err, fs.ErrNotExist) {
				return fmt.Errorf("check %s: %w", f.path, err)
			}
		}
		if len(existing) > 0 {
			return fmt.Errorf("refusing to overwrite %s; use --force to replace them, or another output", strings.Join(existing, ", "))
		}
	}
	for _, f := range files {
		if err := os.MkdirAll(filepath.Dir(f.path), 0o755); err != nil {
			return fmt.Errorf("create directory for %s: %w", f.path, err)
		}
		if err := atomicfile.Write(f.path, f.data, f.perm); err != nil {
			return err
		}
		if report != nil {
			report(f.path)
		}
	}
	return nil
}
