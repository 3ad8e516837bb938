package config

import "testing"

func TestSizeMatches(t *testing.T) {
	for _, c := range []struct {
		sel  string
		size int64
		want bool
	}{
		{">= 32GB", 32e9, true}, {">= 32GB", 32e9 - 1, false}, {"> 1GiB", 1<<30 + 1, true}, {"> 1GiB", 1 << 30, false},
		{"<= 2TB", 2e12, true}, {"< 2TB", 2e12, false}, {"4GiB", 4 << 30, true}, {"== 4GiB", 4<<30 + 512, false},
		{" >= 0.5 GB ", 5e8, true},
	} {
		got, err := SizeMatches(c.sel, c.size)
		if err != nil || got != c.want {
			t.Errorf("SizeMatches(%q, %d) = %v, %v; want %v", c.sel, c.size, got, err, c.want)
		}
	}
	for _, bad := range []string{"", "32", ">= GB", "big", ">= -1GB"} {
		if _, err := SizeMatches(bad, 1); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}
