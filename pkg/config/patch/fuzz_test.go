package patch

import "testing"

func FuzzApply(f *testing.F) {
	docs := []string{
		baseConfig,
		"a: 1\n",
		`{"a": {"b": [1, 2]}, "l": [{"name": "x"}]}`,
		"l: [{name: a, v: 1}, {name: b}]\nm: {x: &a [1, 2], y: *a}\n",
	}
	patches := []string{
		"machine:\n  hostname: x\n  network:\n    interfaces:\n      - name: eth0\n        $patch: delete\n",
		"machine: {install: {$patch: delete}}\n---\ncluster: {name: y}\n",
		"- {op: add, path: /a, value: 1}\n- {op: remove, path: /machine}\n",
		`[{"op": "copy", "from": "", "path": "/c"}, {"op": "move", "from": "/c", "path": "/d"}]`,
		`[{"op": "test", "path": "/a", "value": 1}, {"op": "replace", "path": "", "value": {}}]`,
		"l: [{name: a, $patch: delete}, {name: c, w: 2}]\n",
		"apiVersion: plinth.dev/v1alpha1\nkind: Other\n",
		"- a\n- b\n",
		"",
	}
	for _, d := range docs {
		for _, p := range patches {
			f.Add(d, p)
		}
	}
	f.Fuzz(func(t *testing.T, doc, text string) {
		ps, err := Parse([]byte(text), "fuzz.yaml")
		if err != nil {
			ps = nil
		}
		out, err := Apply([]byte(doc), ps)
		if err != nil {
			return
		}
		// A successful result is one YAML mapping that can be patched again.
		if _, err := Apply(out, nil); err != nil {
			t.Fatalf("result of Apply does not decode: %v\n%s", err, out)
		}
	})
}
