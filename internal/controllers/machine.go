package controllers

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/plinthos/plinth/internal/atomicfile"
	"github.com/plinthos/plinth/internal/controller"
	"github.com/plinthos/plinth/pkg/config"
)

// Sysctls sets the kernel parameters of machine.sysctls, at boot and whenever they change.
// Validation has refused, for the platform, those the node may not set; a value the kernel
// refuses is logged and the others are still set.
type Sysctls struct {
	// ProcSys is where the sysctls are, normally /proc/sys.
	ProcSys string
}

// Name implements controller.Controller.
func (c *Sysctls) Name() string { return "runtime.Sysctls" }

// Inputs implements controller.Controller.
func (c *Sysctls) Inputs() []controller.Input { return []controller.Input{machineConfigInput} }

// Outputs implements controller.Controller: the kernel is its only output.
func (c *Sysctls) Outputs() []controller.Output { return nil }

// Run implements controller.Controller.
func (c *Sysctls) Run(ctx context.Context, rt controller.Runtime, log *slog.Logger) error {
	applied := map[string]string{}
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-rt.EventCh():
		}
		cfg, err := machineConfig(rt)
		if err != nil {
			return err
		}
		if cfg == nil {
			continue
		}
		for _, k := range slices.Sorted(maps.Keys(cfg.Machine.Sysctls)) {
			v := cfg.Machine.Sysctls[k]
			if applied[k] == v {
				continue
			}
			if err := setSysctl(c.ProcSys, k, v); err != nil {
				log.Error("sysctl not set", "name", k, "error", err)
				continue
			}
			applied[k] = v
			log.Info("sysctl set", "name", k, "value", v)
		}
	}
}

// setSysctl writes value to the sysctl name (dotted) under procSys.
func setSysctl(procSys, name, value string) error {
	if strings.Contains(name, "/") || strings.Contains(name, "..") {
		return fmt.Errorf("%q is not a sysctl name", name)
	}
	p := filepath.Join(procSys, strings.ReplaceAll(name, ".", "/"))
	f, err := os.OpenFile(p, os.O_WRONLY|os.O_TRUNC, 0)
	if err != nil {
		return fmt.Errorf("sysctl %s: %w", name, err)
	}
	if _, err := f.WriteString(value); err != nil {
		f.Close()
		return fmt.Errorf("sysctl %s = %q: %w", name, value, err)
	}
	return f.Close()
}

// writeMachineFiles writes machine.files under root (the node's / in production) and
// returns the contents of those under prefix, for the generation of their consumer. It is
// idempotent, so it runs at every boot and every change: `create` leaves an existing file
// alone, `overwrite` replaces it atomically, `append` adds the content unless the file
// already ends with it.
func writeMachineFiles(root string, files []config.File, prefix string) ([][]byte, error) {
	var consumed [][]byte
	var errs []error
	for _, f := range files {
		p := filepath.Join(root, filepath.FromSlash(f.Path))
		perm := fs.FileMode(0o644)
		if f.Permissions != 0 {
			perm = fs.FileMode(f.Permissions)
		}
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			errs = append(errs, fmt.Errorf("machine.files %s: %w", f.Path, err))
			continue
		}
		old, err := os.ReadFile(p)
		exists := err == nil
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			errs = append(errs, fmt.Errorf("machine.files %s: %w", f.Path, err))
			continue
		}
		var data []byte
		switch f.Op {
		case "", "create":
			if exists {
				data = old
				break
			}
			data = []byte(f.Content)
		case "overwrite":
			data = []byte(f.Content)
		case "append":
			data = old
			if !bytes.HasSuffix(old, []byte(f.Content)) {
				data = append(slices.Clone(old), f.Content...)
			}
		default:
			errs = append(errs, fmt.Errorf("machine.files %s: unknown op %q", f.Path, f.Op))
			continue
		}
		if !exists || !bytes.Equal(data, old) {
			if err := atomicfile.Write(p, data, perm); err != nil {
				errs = append(errs, fmt.Errorf("machine.files: %w", err))
				continue
			}
		}
		if strings.HasPrefix(f.Path, prefix) {
			consumed = append(consumed, []byte(f.Path), data)
		}
	}
	return consumed, errors.Join(errs...)
}
