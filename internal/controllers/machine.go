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

	"github.com/plinthos/plinth/internal/controller"
	"github.com/plinthos/plinth/internal/k8s/render"
	"github.com/plinthos/plinth/pkg/config"
)

// Sysctls sets the kernel parameters of machine.sysctls, at boot and whenever they change.
// Validation has refused, for the platform, those the node may not set; a value the kernel
// refuses is logged and the others are still set.
type Sysctls struct {
	// ProcSys is where the sysctls are, normally /proc/sys.
	ProcSys string
	// Defaults are set first; machine.sysctls may override each (the metal platform's
	// hardening defaults, HardeningSysctls).
	Defaults map[string]string
}

// HardeningSysctls are the kernel settings a machine that Plinth boots starts with, before
// machine.sysctls: kernel pointers and the kernel log hidden from unprivileged processes,
// no unprivileged BPF, a hardened BPF JIT, no kexec, protected links and files in
// world-writable directories, no ICMP redirects or source routing.
var HardeningSysctls = map[string]string{
	"kernel.kptr_restrict":                       "1",
	"kernel.dmesg_restrict":                      "1",
	"kernel.perf_event_paranoid":                 "2",
	"kernel.unprivileged_bpf_disabled":           "1",
	"net.core.bpf_jit_harden":                    "2",
	"kernel.kexec_load_disabled":                 "1",
	"fs.protected_symlinks":                      "1",
	"fs.protected_hardlinks":                     "1",
	"fs.protected_fifos":                         "2",
	"fs.protected_regular":                       "2",
	"net.ipv4.conf.all.accept_redirects":         "0",
	"net.ipv4.conf.default.accept_redirects":     "0",
	"net.ipv4.conf.all.send_redirects":           "0",
	"net.ipv4.conf.all.accept_source_route":      "0",
	"net.ipv6.conf.all.accept_redirects":         "0",
	"net.ipv6.conf.default.accept_redirects":     "0",
	"net.ipv4.conf.all.rp_filter":                "1",
	"net.ipv4.icmp_echo_ignore_broadcasts":       "1",
	"net.ipv4.icmp_ignore_bogus_error_responses": "1",
}

// Name implements controller.Controller.
func (c *Sysctls) Name() string { return "runtime.Sysctls" }

// Inputs implements controller.Controller.
func (c *Sysctls) Inputs() []controller.Input { return []controller.Input{machineConfigInput} }

// Outputs implements controller.Controller: the kernel is its only output.
func (c *Sysctls) Outputs() []controller.Output { return nil }

// followConfig calls apply with the machine configuration at each event of rt, once there
// is one, until ctx ends.
func followConfig(ctx context.Context, rt controller.Runtime, apply func(*config.MachineConfig)) error {
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
		if cfg != nil {
			apply(cfg)
		}
	}
}

// Run implements controller.Controller.
func (c *Sysctls) Run(ctx context.Context, rt controller.Runtime, log *slog.Logger) error {
	applied := map[string]string{}
	return followConfig(ctx, rt, func(cfg *config.MachineConfig) {
		want := maps.Clone(c.Defaults)
		if want == nil {
			want = map[string]string{}
		}
		maps.Copy(want, cfg.Machine.Sysctls)
		for _, k := range slices.Sorted(maps.Keys(want)) {
			v := want[k]
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
	})
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

// MachineFiles writes machine.files at boot and whenever they change, on platforms where
// no other controller does (on Kubernetes nodes KubeletFiles writes them, since containerd
// reads the drop-ins among them).
type MachineFiles struct {
	// Root is the node's root, normally /.
	Root string
}

// Name implements controller.Controller.
func (c *MachineFiles) Name() string { return "runtime.MachineFiles" }

// Inputs implements controller.Controller.
func (c *MachineFiles) Inputs() []controller.Input { return []controller.Input{machineConfigInput} }

// Outputs implements controller.Controller: the files are its only output.
func (c *MachineFiles) Outputs() []controller.Output { return nil }

// Run implements controller.Controller. A file that cannot be written is logged and tried
// again at the next change; the others are written.
func (c *MachineFiles) Run(ctx context.Context, rt controller.Runtime, log *slog.Logger) error {
	return followConfig(ctx, rt, func(cfg *config.MachineConfig) {
		if _, err := writeMachineFiles(c.Root, cfg.Machine.Files, render.CRIConfDir+"/"); err != nil {
			log.Error("machine.files", "error", err)
		}
	})
}

// machineFileRoots are the trees machine.files may write (as validation allows); each file
// is written through an os.Root of its tree, so no symbolic link inside the tree (a pod's
// hostPath may make one under /var) leads a write out of it.
var machineFileRoots = []string{"/var", "/etc/cri/conf.d"}

// writeMachineFiles writes machine.files under root (the node's / in production) and
// returns the contents of those under prefix, for the generation of their consumer. It is
// idempotent, so it runs at every boot and every change: `create` leaves an existing file's
// content alone, `overwrite` replaces it atomically, `append` adds the content unless the
// file already ends with it; the mode is set in every case. Files under prefix that the
// configuration no longer lists are removed (prefix is a tree owned by machine.files:
// containerd imports every drop-in there).
func writeMachineFiles(root string, files []config.File, prefix string) ([][]byte, error) {
	var consumed [][]byte
	var errs []error
	wanted := map[string]bool{}
	for _, f := range files {
		if strings.HasPrefix(f.Path, prefix) {
			wanted[f.Path] = true // kept even if writing it fails now
		}
		data, err := writeMachineFile(root, f)
		if err != nil {
			errs = append(errs, fmt.Errorf("machine.files %s: %w", f.Path, err))
			continue
		}
		if strings.HasPrefix(f.Path, prefix) {
			consumed = append(consumed, []byte(f.Path), data)
		}
	}
	if err := removeStale(root, strings.TrimSuffix(prefix, "/"), wanted); err != nil {
		errs = append(errs, err)
	}
	return consumed, errors.Join(errs...)
}

// openTree opens the tree of machineFileRoots that holds path, and path relative to it.
func openTree(root, path string) (*os.Root, string, error) {
	for _, tree := range machineFileRoots {
		rel, ok := strings.CutPrefix(path, tree+"/")
		if !ok {
			continue
		}
		dir := filepath.Join(root, filepath.FromSlash(tree))
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return nil, "", err
		}
		r, err := os.OpenRoot(dir)
		if err != nil {
			return nil, "", err
		}
		return r, filepath.FromSlash(rel), nil
	}
	return nil, "", fmt.Errorf("not under %s", strings.Join(machineFileRoots, " or "))
}

// fileMode maps machine.files permissions (octal, with the setuid, setgid and sticky
// bits) to an fs.FileMode.
func fileMode(p config.FileMode) fs.FileMode {
	if p == 0 {
		return 0o644
	}
	m := fs.FileMode(p & 0o777)
	if p&0o4000 != 0 {
		m |= fs.ModeSetuid
	}
	if p&0o2000 != 0 {
		m |= fs.ModeSetgid
	}
	if p&0o1000 != 0 {
		m |= fs.ModeSticky
	}
	return m
}

// writeMachineFile writes one file and returns its content.
func writeMachineFile(root string, f config.File) ([]byte, error) {
	r, rel, err := openTree(root, f.Path)
	if err != nil {
		return nil, err
	}
	defer r.Close()
	if err := r.MkdirAll(filepath.Dir(rel), 0o755); err != nil {
		return nil, err
	}
	old, err := r.ReadFile(rel)
	exists := err == nil
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, err
	}
	var data []byte
	switch f.Op {
	case "", "create":
		data = []byte(f.Content)
		if exists {
			data = old
		}
	case "overwrite":
		data = []byte(f.Content)
	case "append":
		data = old
		if !bytes.HasSuffix(old, []byte(f.Content)) {
			data = append(slices.Clone(old), f.Content...)
		}
	default:
		return nil, fmt.Errorf("unknown op %q", f.Op)
	}
	mode := fileMode(f.Permissions)
	if !exists || !bytes.Equal(data, old) {
		// A temporary file beside it, renamed over it: a reader sees the old or the new.
		tmp := rel + ".plinth-tmp"
		_ = r.Remove(tmp)
		w, err := r.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
		if err != nil {
			return nil, err
		}
		_, werr := w.Write(data)
		if cerr := w.Close(); werr == nil {
			werr = cerr
		}
		if werr == nil {
			werr = r.Rename(tmp, rel)
		}
		if werr != nil {
			_ = r.Remove(tmp)
			return nil, werr
		}
	}
	// The mode is set every time, so a change of permissions alone applies too.
	if err := r.Chmod(rel, mode); err != nil {
		return nil, err
	}
	return data, nil
}

// removeStale removes the regular files directly in the tree dir (under root) that are not
// wanted.
func removeStale(root, dir string, wanted map[string]bool) error {
	r, err := os.OpenRoot(filepath.Join(root, filepath.FromSlash(dir)))
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	defer r.Close()
	d, err := r.Open(".")
	if err != nil {
		return err
	}
	entries, err := d.ReadDir(-1)
	d.Close()
	if err != nil {
		return err
	}
	var errs []error
	for _, e := range entries {
		if e.Type().IsRegular() && !wanted[dir+"/"+e.Name()] {
			if err := r.Remove(e.Name()); err != nil {
				errs = append(errs, fmt.Errorf("remove %s/%s, no longer in machine.files: %w", dir, e.Name(), err))
			}
		}
	}
	return errors.Join(errs...)
}
