package docker

import (
	"slices"
	"testing"
)

func TestParseStatusCapBnd(t *testing.T) {
	status := []byte("Name:\tcat\nCapInh:\t0000000000000000\nCapPrm:\t000001fffeffffff\nCapBnd:\t000001fffeffffff\nCapAmb:\t0000000000000000\n")
	got, err := ParseStatusCapBnd(status)
	if err != nil || got != 0x1fffeffffff {
		t.Fatalf("CapBnd = %#x, %v", got, err)
	}
	if _, err := ParseStatusCapBnd([]byte("Name:\tcat\n")); err == nil {
		t.Error("a status without CapBnd parsed")
	}
	if _, err := ParseCapMask("zz"); err == nil {
		t.Error("a mask that is not hex parsed")
	}
	if v, err := ParseCapMask(" 0x3 "); err != nil || v != 3 {
		t.Errorf("0x3 = %d, %v", v, err)
	}
}

func TestCapNames(t *testing.T) {
	if got := CapNames(0b1000000000000000000000001, LastKnownCap); !slices.Equal(got, []string{"CHOWN", "SYS_RESOURCE"}) {
		t.Errorf("names %v", got)
	}
	if got := CapNames(1<<21|1<<40, 39); !slices.Equal(got, []string{"SYS_ADMIN"}) {
		t.Errorf("names up to cap 39: %v", got)
	}
	if n := len(CapNames(^uint64(0), LastKnownCap)); n != 41 {
		t.Errorf("%d names for a full set, want 41", n)
	}
	if CapName(24) != "SYS_RESOURCE" || CapName(40) != "CHECKPOINT_RESTORE" || CapName(45) != "CAP_45" {
		t.Errorf("names: %s %s %s", CapName(24), CapName(40), CapName(45))
	}
}

func TestCapFlags(t *testing.T) {
	for _, tc := range []struct {
		name string
		set  CapSet
		want []string
	}{
		{"full set", CapSet{Bounding: 0x1ffffffffff, LastCap: 40}, []string{"--cap-add=ALL"}},
		{"these hosts: no SYS_RESOURCE", CapSet{Bounding: 0x1fffeffffff, LastCap: 40},
			[]string{"--cap-add=ALL", "--cap-drop=SYS_RESOURCE"}},
		{"two missing", CapSet{Bounding: 0x1ffffffffff &^ (1<<16 | 1<<22), LastCap: 40},
			[]string{"--cap-add=ALL", "--cap-drop=SYS_MODULE", "--cap-drop=SYS_BOOT"}},
		{"older kernel, last cap 37", CapSet{Bounding: 0x3fffffffff, LastCap: 37}, []string{"--cap-add=ALL"}},
		{"newer kernel than this table", CapSet{Bounding: 0xfffffffffff &^ (1 << 24), LastCap: 43},
			[]string{"--cap-add=ALL", "--cap-drop=SYS_RESOURCE"}},
	} {
		if got := tc.set.Flags(); !slices.Equal(got, tc.want) {
			t.Errorf("%s: flags %v, want %v", tc.name, got, tc.want)
		}
	}
}

func TestHostCaps(t *testing.T) {
	c, err := HostCaps()
	if err != nil {
		t.Fatal(err)
	}
	if c.LastCap < 30 || c.Bounding == 0 {
		t.Errorf("host caps %+v look wrong", c)
	}
	t.Logf("host bounding set %#x, last cap %d, missing %v", c.Bounding, c.LastCap, c.Missing())
}
