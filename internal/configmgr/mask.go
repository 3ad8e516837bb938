package configmgr

import (
	"reflect"

	"github.com/plinthos/plinth/internal/textdiff"
	"github.com/plinthos/plinth/pkg/config"
)

// masked returns a copy of c with every secret replaced by a marker, for diffs and logs.
func masked(c *config.MachineConfig) *config.MachineConfig {
	if c == nil {
		return nil
	}
	m := *c
	mark := config.Base64("(secret)")
	maskKey := func(ck config.CertAndKey) config.CertAndKey {
		if len(ck.Key) > 0 {
			ck.Key = mark
		}
		return ck
	}
	m.Machine.Token = maskString(m.Machine.Token)
	m.Machine.CA = maskKey(m.Machine.CA)
	m.Cluster.Secret = maskString(m.Cluster.Secret)
	m.Cluster.Token = maskString(m.Cluster.Token)
	m.Cluster.SecretboxEncryptionSecret = maskString(m.Cluster.SecretboxEncryptionSecret)
	m.Cluster.CA = maskKey(m.Cluster.CA)
	m.Cluster.AggregatorCA = maskKey(m.Cluster.AggregatorCA)
	m.Cluster.Etcd.CA = maskKey(m.Cluster.Etcd.CA)
	if len(m.Cluster.ServiceAccount.Key) > 0 {
		m.Cluster.ServiceAccount.Key = mark
	}
	return &m
}

func maskString(s string) string {
	if s == "" {
		return ""
	}
	return "(secret)"
}

// diffConfigs is the unified diff of two configurations with secrets masked. A changed
// secret shows as a changed "(secret)" line only when its presence changed.
func diffConfigs(a, b *config.MachineConfig) string {
	render := func(c *config.MachineConfig) string {
		if c == nil {
			return ""
		}
		out, err := config.Marshal(masked(c), false)
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
