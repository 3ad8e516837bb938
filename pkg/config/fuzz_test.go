package config_test

import (
	"errors"
	"flag"
	"os"
	"reflect"
	"testing"

	"github.com/plinthos/plinth/pkg/config"
)

// TestMain shortens the time the fuzzing engine spends minimizing each input that finds
// new coverage, unless -fuzzminimizetime is given. Seeds are full configurations of
// several kilobytes, and minimizing one of them is quadratic in its size: with the default
// of 60s, `go test -fuzz=FuzzLoad -fuzztime=60s` would spend its whole time minimizing
// the first interesting input instead of fuzzing.
func TestMain(m *testing.M) {
	flag.Parse()
	if f := flag.Lookup("test.fuzz"); f != nil && f.Value.String() != "" {
		set := false
		flag.Visit(func(f *flag.Flag) { set = set || f.Name == "test.fuzzminimizetime" })
		if !set {
			if err := flag.Set("test.fuzzminimizetime", "2s"); err != nil {
				panic(err)
			}
		}
	}
	os.Exit(m.Run())
}

// FuzzLoad checks that Load never panics, that whatever it accepts can be encoded and
// loaded back to the same configuration, that it can be encoded with its secrets masked
// without changing it, and that validating and defaulting an accepted configuration never
// panics either.
//
// Configurations are compared with empty lists and maps treated as absent: the YAML form
// leaves empty values out, so `sysctls: {}` and no sysctls are the same configuration.
func FuzzLoad(f *testing.F) {
	fx := generated(f)
	for _, c := range []*config.MachineConfig{fx.controlPlane, fx.worker} {
		for _, withDocs := range []bool{false, true} {
			out, err := config.Marshal(c, withDocs)
			if err != nil {
				f.Fatal(err)
			}
			f.Add(out)
		}
	}
	for _, s := range []string{
		"",
		"---\n---\n",
		header,
		header + "machine:\n  netwrk: {}\n",
		header + "machine:\n  type: [a]\n  install:\n    wipe: maybe\n",
		header + "machine:\n  files:\n    - path: /var/a\n      content: x\n      permissions: 0644\n      op: append\n",
		header + "machine:\n  files:\n    - {path: /var/a, permissions: '0600'}\n    - {path: /var/b, permissions: 420}\n",
		header + "machine:\n  ca:\n    crt: aGVsbG8=\n    key: 'not*base64'\n",
		header + "machine:\n  certSANs: &s [a, b]\ncluster:\n  apiServer:\n    certSANs: *s\n",
		header + "machine:\n  network:\n    interfaces:\n      - name: bond0\n        bond: {interfaces: [], mode: 802.3ad}\n        vlans: [{vlanId: 10, routes: [{metric: 4294967295}]}]\n",
		header + "machine:\n  sysctls: {}\n  env: {A: '', 'B C': \"\\t\"}\n  kubelet:\n    nodeTaints: {a: ':NoSchedule'}\n",
		header + "cluster:\n  inlineManifests:\n    - name: x\n      contents: |\n        a: b\n        ---\n        c: d\n",
		header + "machine:\n  install: !!map {disk: !!str /dev/sda, wipe: !!bool true}\n  network: {interfaces: [&i {name: eth0, mtu: !!int 1500}, *i]}\n",
		header + "machine:\n  token: !!binary aGVsbG8=\n  sysctls: {~: a, 1: b, 0x1: c}\n  install: {wipe: !!bool yes}\n",
		header + "---\n" + header,
		"apiVersion: v1\nkind: Pod\n",
		"kind: MachineConfig\n",
		"- a\n- b\n",
		"machine: [\n",
		header + "machine:\n\ttype: worker\n",
	} {
		f.Add([]byte(s))
	}

	f.Fuzz(func(t *testing.T, data []byte) {
		d, err := config.Load(data, "fuzz.yaml")
		if err != nil {
			var ps config.Problems
			if !errors.As(err, &ps) || len(ps) == 0 {
				t.Fatalf("Load error is not a non-empty config.Problems: %T %v", err, err)
			}
			if d != nil {
				t.Fatal("Load returned both a document and an error")
			}
			return
		}
		if d == nil || d.Config == nil {
			t.Fatal("Load returned neither a document nor an error")
		}
		want := normalized(d.Config)
		for _, withDocs := range []bool{false, true} {
			out, err := config.Marshal(d.Config, withDocs)
			if err != nil {
				t.Fatalf("Marshal(withDocs=%v) of a loaded config: %v", withDocs, err)
			}
			d2, err := config.Load(out, "marshalled.yaml")
			if err != nil {
				t.Fatalf("Load of Marshal(withDocs=%v) output: %v\ninput:\n%q\noutput:\n%s", withDocs, err, data, out)
			}
			if got := normalized(d2.Config); !reflect.DeepEqual(got, want) {
				t.Fatalf("round trip (withDocs=%v) changed the config\n got %#v\nwant %#v\ninput:\n%q\noutput:\n%s",
					withDocs, got, want, data, out)
			}
		}
		// Masking secrets (for apply-config diffs) works on anything Load accepts and
		// leaves the configuration alone.
		if _, err := config.MarshalRedacted(d.Config, config.FingerprintMask()); err != nil {
			t.Fatalf("MarshalRedacted of a loaded config: %v", err)
		}
		if got := normalized(d.Config); !reflect.DeepEqual(got, want) {
			t.Fatalf("MarshalRedacted changed the config\n got %#v\nwant %#v", got, want)
		}
		// Validation must not panic on anything Load accepts; one mode per input keeps
		// executions fast (the modes differ only in the install disk rule).
		mode := config.Modes[len(data)%len(config.Modes)]
		_ = config.Validate(d.Config, mode)
		_ = d.Validate(mode)
		c := deepCopy(d.Config)
		config.ApplyDefaults(c)
	})
}
