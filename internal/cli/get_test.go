package cli

import "testing"

func TestColumnValue(t *testing.T) {
	spec := map[string]any{"hostname": "cp-1", "addresses": []any{"10.5.0.2", "fd00::2"}, "mtu": 1500,
		"nested": map[string]any{"a": "b"}, "empty": nil, "list": []any{}}
	for path, want := range map[string]string{
		"{.hostname}": "cp-1", "{.addresses}": "10.5.0.2,fd00::2", "{.mtu}": "1500", "{.nested.a}": "b",
		"{.missing}": "-", "{.empty}": "-", "{.list}": "-", "{.hostname.deeper}": "-",
	} {
		if got := columnValue(spec, path); got != want {
			t.Errorf("columnValue(%s) = %q, want %q", path, got, want)
		}
	}
}
