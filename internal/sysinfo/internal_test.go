package sysinfo

import "testing"

func TestFormatKmsgRecord(t *testing.T) {
	for _, tc := range []struct {
		in, want string
		bad      bool
	}{
		{in: "6,339,5140900,-;NET: Registered protocol family 10", want: "[    5.140900] NET: Registered protocol family 10"},
		{in: "0,1,0,-;", want: "[    0.000000] "},
		{in: "4,2,123456789012,c;x", want: "[123456.789012] x"},
		{in: "6,3,7,-,caller=T12;a;b", want: "[    0.000007] a;b"},
		{in: `6,4,1,-;bad \x0a escape`, want: `[    0.000001] bad \x0a escape`},
		{in: "no semicolon", bad: true},
		{in: "6,1,2;too few fields", bad: true},
		{in: "x,1,2,-;bad priority", bad: true},
		{in: "6,y,2,-;bad sequence", bad: true},
		{in: "6,1,-2,-;bad time", bad: true},
	} {
		got, err := formatKmsgRecord(tc.in)
		if tc.bad {
			if err == nil {
				t.Errorf("%q: no error, got %q", tc.in, got)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("%q: got %q, %v; want %q", tc.in, got, err, tc.want)
		}
	}
}

func TestRecordsSplitsReads(t *testing.T) {
	r := &kmsgReader{}
	var got []string
	for _, chunk := range []string{"6,0,1,-;he", "llo\n SUBSYS", "TEM=x\n6,1,2,-;wor", "ld\n"} {
		got = append(got, r.records([]byte(chunk))...)
	}
	want := []string{"[    0.000001] hello", "[    0.000002] world"}
	if len(got) != 2 || got[0] != want[0] || got[1] != want[1] {
		t.Fatalf("got %q, want %q", got, want)
	}
	if r.pending != nil {
		t.Fatalf("pending %q left", r.pending)
	}
}

func TestUnescapeOctal(t *testing.T) {
	for in, want := range map[string]string{
		`/plain`:             "/plain",
		`/a\040b`:            "/a b",
		`/tab\011nl\012`:     "/tab\tnl\n",
		`/back\134slash`:     `/back\slash`,
		`/short\04`:          `/short\04`,
		`/notoctal\089`:      `/notoctal\089`,
		`/toobig\777`:        `/toobig\777`,
		`\040\040`:           "  ",
		`/trailing\`:         `/trailing\`,
		`/mixed\040and\\040`: `/mixed and\ `,
	} {
		if got := unescapeOctal(in); got != want {
			t.Errorf("unescapeOctal(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestParseStatComm(t *testing.T) {
	p, err := parseStat("9 ()) (x) S 3 0 0 0 0 0 0 0 0 0 5 5 0 0 0 0 2 0 0 4096 1 0", 100, 4096)
	if err != nil {
		t.Fatal(err)
	}
	if p.PID != 9 || p.Command != ")) (x" || p.State != "S" || p.PPID != 3 || p.Threads != 2 ||
		p.CPUSeconds != 0.1 || p.VirtualBytes != 4096 || p.ResidentBytes != 4096 {
		t.Fatalf("got %+v", p)
	}
}

func TestClockTicksDefault(t *testing.T) {
	if got := clockTicks(t.TempDir()); got != defaultClockTicks {
		t.Fatalf("clockTicks of a tree without auxv = %v", got)
	}
	if got := clockTicks("/proc"); got <= 0 {
		t.Fatalf("clockTicks(/proc) = %v", got)
	}
}
