package localcluster

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"

	"github.com/plinthos/plinth/pkg/clientconfig"
)

// mergeContext adds the cluster's context to the user's client config at path and makes
// it current; it returns the context's name there (renamed on a clash) and the context
// that was current before.
func mergeContext(path string, cc *clientconfig.Config, out io.Writer) (name, previous string, err error) {
	cfg, err := clientconfig.Load(path)
	if err != nil {
		return "", "", err
	}
	previous = cfg.Context
	renamed := cfg.Merge(cc)
	if err := cfg.Save(path); err != nil {
		return "", "", err
	}
	name = cc.Context
	if n, ok := renamed[name]; ok {
		fmt.Fprintf(out, "context %q already existed in %s: added this cluster's as %q\n", name, path, n)
		name = n
	} else {
		fmt.Fprintf(out, "added context %q to %s\n", name, path)
	}
	fmt.Fprintf(out, "current context is %q\n", cfg.Context)
	return name, previous, nil
}

// removeContexts removes from the user's client config at path every context that trusts
// the CA of the cluster's own plinthconfig (in the state directory): that finds the
// context even when it was renamed on merge, and never touches another cluster's. When
// the current context is removed, restore becomes current if it is still there, else none
// is.
func removeContexts(path, stateDir, restore string, out io.Writer) error {
	own, err := clientconfig.Load(filepath.Join(stateDir, StatePlinthconfig))
	if err != nil {
		return err
	}
	var cas [][]byte
	for _, c := range own.Contexts {
		cas = append(cas, c.CA)
	}
	if len(cas) == 0 {
		if _, err := os.Stat(stateDir); err == nil {
			fmt.Fprintf(out, "no plinthconfig in %s: the client config is left as it is\n", stateDir)
		}
		return nil
	}
	cfg, err := clientconfig.Load(path)
	if err != nil {
		return err
	}
	changed := false
	for _, name := range cfg.Names() {
		ca := cfg.Contexts[name].CA
		if !slices.ContainsFunc(cas, func(c []byte) bool { return string(c) == string(ca) }) {
			continue
		}
		delete(cfg.Contexts, name)
		changed = true
		fmt.Fprintf(out, "removed context %q from %s\n", name, path)
		if cfg.Context == name {
			cfg.Context = ""
			if _, ok := cfg.Contexts[restore]; ok && restore != name {
				cfg.Context = restore
				fmt.Fprintf(out, "it was the current context: %q is current again\n", restore)
			} else {
				fmt.Fprintln(out, "it was the current context: none is current now (pick one with `plinthctl config context NAME`)")
			}
		}
	}
	if !changed {
		return nil
	}
	return cfg.Save(path)
}
