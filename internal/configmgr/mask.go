package configmgr

import (
	"reflect"

	"github.com/plinthos/plinth/internal/textdiff"
	"github.com/plinthos/plinth/pkg/config"
)

// diffConfigs is the unified diff of two configurations with every secret masked, as the
// `plinth` struct tags of the configuration types say (see config.TagKey). Secrets are
// written with fingerprints keyed for this diff alone: a secret that changed shows as a
// changed line, one that did not as an unchanged one, and neither reveals the value.
func diffConfigs(a, b *config.MachineConfig) string {
	mask := config.FingerprintMask()
	render := func(c *config.MachineConfig) string {
		if c == nil {
			return ""
		}
		out, err := config.MarshalRedacted(c, mask)
		if err != nil {
			return "(cannot render: " + err.Error() + ")\n"
		}
		return string(out)
	}
	return textdiffUnified(render(a), render(b))
}

func equalYAML(a, b any) bool { return reflect.DeepEqual(a, b) }

func textdiffUnified(a, b string) string {
	return textdiff.Unified("running", "new", a, b, 3)
}
