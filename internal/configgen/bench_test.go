package configgen_test

import (
	"testing"
	"time"

	"github.com/plinthos/plinth/internal/configgen"
	"github.com/plinthos/plinth/pkg/config"
	"github.com/plinthos/plinth/pkg/secrets"
)

// These benchmarks print how long the steps of `plinthctl gen config` and `validate` take;
// they assert nothing.

func BenchmarkGenerateSecrets(b *testing.B) {
	for b.Loop() {
		if _, err := secrets.Generate(time.Now()); err != nil {
			b.Fatal(err)
		}
	}
}

func benchConfigs(b *testing.B) *configgen.Configs {
	b.Helper()
	bundle, err := secrets.Generate(time.Now())
	if err != nil {
		b.Fatal(err)
	}
	cs, err := configgen.Generate(bundle, configgen.Options{ClusterName: "demo", Endpoint: "https://10.5.0.2:6443"})
	if err != nil {
		b.Fatal(err)
	}
	return cs
}

func BenchmarkMarshalWithDocs(b *testing.B) {
	cs := benchConfigs(b)
	for b.Loop() {
		if _, err := config.Marshal(cs.ControlPlane, true); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkLoadAndValidate(b *testing.B) {
	cs := benchConfigs(b)
	data, err := config.Marshal(cs.ControlPlane, true)
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		d, err := config.Load(data, "controlplane.yaml")
		if err != nil {
			b.Fatal(err)
		}
		if err := d.Validate(config.ModeMetal); err != nil {
			b.Fatal(err)
		}
	}
}
