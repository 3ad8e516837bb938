package localcluster

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/plinthos/plinth/internal/atomicfile"
)

// checkStateDirFree refuses a state directory that holds a cluster's files already.
func checkStateDirFree(dir, name string) error {
	var existing []string
	for _, file := range StateFiles {
		p := filepath.Join(dir, file)
		if _, err := os.Stat(p); err == nil {
			existing = append(existing, p)
		} else if !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("check %s: %w", p, err)
		}
	}
	if len(existing) > 0 {
		return fmt.Errorf("the state directory %s holds files of an earlier cluster (%s): remove them with `plinthctl cluster destroy --name %s`, or pass another --state-dir",
			dir, strings.Join(existing, ", "), name)
	}
	return nil
}

// stateFile is one file of the state directory to write.
type stateFile struct {
	name string
	data []byte
}

// writeStateFiles writes files into dir (made if missing), each atomically and readable
// by the owner only, and reports each one it created.
func writeStateFiles(dir string, out io.Writer, files []stateFile) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("create the state directory %s: %w", dir, err)
	}
	for _, f := range files {
		p := filepath.Join(dir, f.name)
		if err := atomicfile.Write(p, f.data, 0o600); err != nil {
			return err // names the file
		}
		fmt.Fprintf(out, "created %s\n", p)
	}
	return nil
}

// removeStateFiles removes the state files and then the directory if it is empty; it
// never removes anything else. It reports what it removed.
func removeStateFiles(dir string, out io.Writer) error {
	var errs []error
	removed := 0
	for _, file := range StateFiles {
		err := os.Remove(filepath.Join(dir, file))
		switch {
		case err == nil:
			removed++
		case !errors.Is(err, fs.ErrNotExist):
			errs = append(errs, err)
		}
	}
	if err := os.Remove(dir); err == nil {
		fmt.Fprintf(out, "removed the state directory %s\n", dir)
	} else if removed > 0 && !errors.Is(err, fs.ErrNotExist) {
		fmt.Fprintf(out, "removed the cluster's files from %s (other files are left there)\n", dir)
	}
	return errors.Join(errs...)
}
