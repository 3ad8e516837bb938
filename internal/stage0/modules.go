package stage0

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"
)

// ReadLoadList reads plinth.load: one module file name per line, in load order. Blank lines
// and lines starting with # are skipped. A name must be a plain file name (no directory).
func ReadLoadList(path string) ([]string, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read module list: %w", err)
	}
	var names []string
	sc := bufio.NewScanner(bytes.NewReader(data))
	for line := 1; sc.Scan(); line++ {
		name := strings.TrimSpace(sc.Text())
		if name == "" || strings.HasPrefix(name, "#") {
			continue
		}
		if strings.ContainsRune(name, '/') || name == "." || name == ".." {
			return nil, fmt.Errorf("%s:%d: %q is not a module file name", path, line, name)
		}
		names = append(names, name)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	return names, nil
}

// ModuleFailure is a module that did not load.
type ModuleFailure struct {
	Name string
	Err  error
}

func (f ModuleFailure) String() string { return f.Name + ": " + f.Err.Error() }

// LoadModules loads each named module from dir in order. A module that is already loaded
// or built in (EEXIST) is fine; any other failure is recorded and loading goes on: a module
// that was not needed costs nothing, and one that was shows up later with this list.
func LoadModules(sys System, log *Log, dir string, names []string) []ModuleFailure {
	var failures []ModuleFailure
	for _, name := range names {
		err := sys.LoadModule(filepath.Join(dir, name))
		switch {
		case err == nil:
			log.Debugf("loaded module %s", name)
		case errors.Is(err, unix.EEXIST):
			log.Debugf("module %s is already loaded or built in", name)
		default:
			err = explainModuleError(err)
			log.Warnf("module %s: %v", name, err)
			failures = append(failures, ModuleFailure{Name: name, Err: err})
		}
	}
	return failures
}

// explainModuleError adds a hint to the errors whose errno alone misleads.
func explainModuleError(err error) error {
	var pe *os.PathError
	switch {
	case errors.As(err, &pe) && errors.Is(err, os.ErrNotExist):
		return fmt.Errorf("%w (the file is not in the initramfs)", err)
	case errors.Is(err, unix.ENOENT):
		// finit_module answers ENOENT for an unknown symbol.
		return fmt.Errorf("%w (unknown symbol: a dependency is missing or comes later in plinth.load; see the kernel log)", err)
	case errors.Is(err, unix.ENOEXEC):
		return fmt.Errorf("%w (not a module for this kernel, or compressed)", err)
	}
	return err
}
