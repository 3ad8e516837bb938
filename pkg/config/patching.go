package config

import (
	"fmt"

	"github.com/plinthos/plinth/pkg/config/patch"
)

// ApplyPatches applies patches to a configuration and strictly decodes the result, so a patch
// that introduces an unknown field or a wrong type is an error. name is used in messages.
func ApplyPatches(c *MachineConfig, patches []patch.Patch, name string) (*MachineConfig, error) {
	if len(patches) == 0 {
		return c, nil
	}
	doc, err := Marshal(c, false)
	if err != nil {
		return nil, err
	}
	out, err := patch.Apply(doc, patches)
	if err != nil {
		return nil, fmt.Errorf("patch %s: %w", name, err)
	}
	d, err := Load(out, "patched "+name)
	if err != nil {
		return nil, fmt.Errorf("patch %s: the result is not a valid configuration:\n%w", name, err)
	}
	return d.Config, nil
}
