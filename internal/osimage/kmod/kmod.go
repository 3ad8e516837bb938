// Package kmod indexes a kernel's module tree (lib/modules/<abi>) and computes which
// modules to load, in order, for a list of wanted ones.
//
// Debian's kernel packages ship no modules.dep (depmod writes it at install time), so the
// index comes from modules.dep when a tree has one and otherwise from each module's
// .modinfo ELF section (depends= and softdep=pre:). Built-in modules come from
// modules.builtin and need no loading.
package kmod

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"debug/elf"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"

	"github.com/klauspost/compress/zstd"
	"github.com/ulikunitz/xz"
)

// Module is one loadable module of the tree.
type Module struct {
	// Name is the kernel's name for it: the file's base name without .ko[.xz|.zst|.gz],
	// with '-' as '_' (virtio-rng.ko is virtio_rng).
	Name string
	// Path is the file relative to the tree root, e.g. kernel/drivers/block/virtio_blk.ko.
	Path string
	// Depends are the modules it needs loaded first.
	Depends []string
	// SoftPre are its optional pre soft dependencies (loaded first when they exist).
	SoftPre []string
}

// Index knows the modules and built-ins of one tree.
type Index struct {
	modules map[string]*Module
	builtin map[string]bool
}

// ModuleName is the kernel's name of a module file path.
func ModuleName(p string) string {
	base := path.Base(filepath.ToSlash(p))
	for _, ext := range []string{".xz", ".zst", ".gz"} {
		base = strings.TrimSuffix(base, ext)
	}
	return strings.ReplaceAll(strings.TrimSuffix(base, ".ko"), "-", "_")
}

func normal(name string) string { return strings.ReplaceAll(name, "-", "_") }

func newIndex() *Index {
	return &Index{modules: map[string]*Module{}, builtin: map[string]bool{}}
}

// ParseModulesDep reads modules.dep ("path: dep-path dep-path...") into an index.
func ParseModulesDep(r io.Reader) (*Index, error) {
	ix := newIndex()
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" {
			continue
		}
		p, deps, ok := strings.Cut(line, ":")
		if !ok {
			return nil, fmt.Errorf("modules.dep line %d: no ':' in %q", n, line)
		}
		m := &Module{Name: ModuleName(p), Path: p}
		for _, d := range strings.Fields(deps) {
			m.Depends = append(m.Depends, ModuleName(d))
		}
		ix.modules[m.Name] = m
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read modules.dep: %w", err)
	}
	return ix, nil
}

// AddBuiltin records the modules listed in modules.builtin (one path per line) as built in.
func (ix *Index) AddBuiltin(r io.Reader) error {
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		if p := strings.TrimSpace(sc.Text()); p != "" {
			ix.builtin[ModuleName(p)] = true
		}
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("read modules.builtin: %w", err)
	}
	return nil
}

// Add puts a module in the index (used when scanning .modinfo).
func (ix *Index) Add(m *Module) { ix.modules[m.Name] = m }

// Lookup returns the module called name ('-' and '_' alike).
func (ix *Index) Lookup(name string) (*Module, bool) {
	m, ok := ix.modules[normal(name)]
	return m, ok
}

// Builtin says whether name is compiled into the kernel.
func (ix *Index) Builtin(name string) bool { return ix.builtin[normal(name)] }

// Modinfo returns the key=value pairs of a module's .modinfo section (keys may repeat).
func Modinfo(ko []byte) ([][2]string, error) {
	f, err := elf.NewFile(bytes.NewReader(ko))
	if err != nil {
		return nil, fmt.Errorf("not an ELF module: %w", err)
	}
	defer f.Close()
	sec := f.Section(".modinfo")
	if sec == nil {
		return nil, errors.New("no .modinfo section")
	}
	data, err := sec.Data()
	if err != nil {
		return nil, fmt.Errorf("read .modinfo: %w", err)
	}
	var kv [][2]string
	for entry := range bytes.SplitSeq(data, []byte{0}) {
		if k, v, ok := strings.Cut(string(entry), "="); ok {
			kv = append(kv, [2]string{k, v})
		}
	}
	return kv, nil
}

// ModuleFromModinfo builds the index entry of the module file at relPath from its .modinfo.
func ModuleFromModinfo(relPath string, ko []byte) (*Module, error) {
	kv, err := Modinfo(ko)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", relPath, err)
	}
	m := &Module{Name: ModuleName(relPath), Path: relPath}
	for _, e := range kv {
		switch e[0] {
		case "name":
			m.Name = normal(e[1])
		case "depends":
			for d := range strings.SplitSeq(e[1], ",") {
				if d = strings.TrimSpace(d); d != "" {
					m.Depends = append(m.Depends, normal(d))
				}
			}
		case "softdep":
			m.SoftPre = append(m.SoftPre, softPre(e[1])...)
		}
	}
	return m, nil
}

// softPre returns the modules after "pre:" and before "post:" in a softdep value.
func softPre(v string) []string {
	var pre []string
	in := false
	for _, f := range strings.Fields(v) {
		switch f {
		case "pre:":
			in = true
		case "post:":
			in = false
		default:
			if in {
				pre = append(pre, normal(f))
			}
		}
	}
	return pre
}

// ReadFile returns a module's contents, decompressed when the file is .ko.xz, .ko.zst or .ko.gz.
func ReadFile(p string) ([]byte, error) {
	raw, err := os.ReadFile(p)
	if err != nil {
		return nil, err
	}
	var r io.Reader
	switch {
	case strings.HasSuffix(p, ".ko"):
		return raw, nil
	case strings.HasSuffix(p, ".ko.xz"):
		if r, err = xz.NewReader(bytes.NewReader(raw)); err != nil {
			return nil, fmt.Errorf("%s: %w", p, err)
		}
	case strings.HasSuffix(p, ".ko.zst"):
		d, err := zstd.NewReader(bytes.NewReader(raw))
		if err != nil {
			return nil, fmt.Errorf("%s: %w", p, err)
		}
		defer d.Close()
		r = d
	case strings.HasSuffix(p, ".ko.gz"):
		if r, err = gzip.NewReader(bytes.NewReader(raw)); err != nil {
			return nil, fmt.Errorf("%s: %w", p, err)
		}
	default:
		return nil, fmt.Errorf("%s: not a kernel module file", p)
	}
	out, err := io.ReadAll(r)
	if err != nil {
		return nil, fmt.Errorf("decompress %s: %w", p, err)
	}
	return out, nil
}

// ScanTree indexes the module tree at root (lib/modules/<abi>): from modules.dep when
// present, otherwise from the .modinfo of every module modules.order lists; built-ins from
// modules.builtin.
func ScanTree(root string) (*Index, error) {
	var ix *Index
	if f, err := os.Open(filepath.Join(root, "modules.dep")); err == nil {
		ix, err = ParseModulesDep(f)
		f.Close()
		if err != nil {
			return nil, fmt.Errorf("%s: %w", root, err)
		}
	} else {
		order, err := os.ReadFile(filepath.Join(root, "modules.order"))
		if err != nil {
			return nil, fmt.Errorf("module tree %s has neither modules.dep nor modules.order: %w", root, err)
		}
		ix = newIndex()
		for rel := range strings.FieldsSeq(string(order)) {
			p, err := findModuleFile(root, rel)
			if err != nil {
				return nil, err
			}
			ko, err := ReadFile(filepath.Join(root, p))
			if err != nil {
				return nil, fmt.Errorf("module index: %w", err)
			}
			m, err := ModuleFromModinfo(p, ko)
			if err != nil {
				return nil, fmt.Errorf("module index: %w", err)
			}
			ix.Add(m)
		}
	}
	if f, err := os.Open(filepath.Join(root, "modules.builtin")); err == nil {
		err = ix.AddBuiltin(f)
		f.Close()
		if err != nil {
			return nil, err
		}
	} else if !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("module index: %w", err)
	}
	return ix, nil
}

// findModuleFile finds rel (as modules.order names it, .ko) as shipped, maybe compressed.
func findModuleFile(root, rel string) (string, error) {
	for _, ext := range []string{"", ".xz", ".zst", ".gz"} {
		if _, err := os.Stat(filepath.Join(root, rel+ext)); err == nil {
			return rel + ext, nil
		}
	}
	return "", fmt.Errorf("module index: modules.order names %s but %s has no such file", rel, root)
}

// Closure returns the modules to load for want, in load order (every module after the
// modules it depends on, wanted ones in the order given), and which of want are built in.
// A wanted module that is neither a module nor built in is an error; a missing optional
// soft dependency is skipped.
func (ix *Index) Closure(want []string) (load []*Module, builtin []string, err error) {
	const (
		visiting = 1
		done     = 2
	)
	state := map[string]int{}
	var visit func(name string, chain []string, optional bool) error
	visit = func(name string, chain []string, optional bool) error {
		name = normal(name)
		switch state[name] {
		case done:
			return nil
		case visiting:
			return fmt.Errorf("module dependency cycle: %s", strings.Join(append(chain, name), " -> "))
		}
		if ix.builtin[name] {
			state[name] = done
			if len(chain) == 0 {
				builtin = append(builtin, name)
			}
			return nil
		}
		m, ok := ix.modules[name]
		if !ok {
			if optional {
				return nil
			}
			if len(chain) > 0 {
				return fmt.Errorf("module %s (needed by %s) is neither a module of this kernel nor built in", name, strings.Join(chain, " -> "))
			}
			return fmt.Errorf("module %s is neither a module of this kernel nor built in", name)
		}
		state[name] = visiting
		chain = append(slices.Clone(chain), name)
		for _, d := range m.SoftPre {
			if err := visit(d, chain, true); err != nil {
				return err
			}
		}
		for _, d := range m.Depends {
			if err := visit(d, chain, false); err != nil {
				return err
			}
		}
		state[name] = done
		load = append(load, m)
		return nil
	}
	for _, w := range want {
		if err := visit(w, nil, false); err != nil {
			return nil, nil, err
		}
	}
	return load, builtin, nil
}
