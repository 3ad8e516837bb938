package stage0

import (
	"strings"
	"testing"
	"time"
)

func TestParseCmdline(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    Cmdline
		part    string
		wantErr string
	}{
		{
			name: "defaults",
			in:   "BOOT_IMAGE=/plinth/A/vmlinuz console=ttyS0 quiet\n",
			want: Cmdline{Slot: "A", RootWait: 30 * time.Second},
			part: "ROOT-A",
		},
		{
			name: "all keys",
			in:   "console=ttyS0 plinth.slot=B plinth.debug plinth.rootwait=5 panic=10",
			want: Cmdline{Slot: "B", Debug: true, RootWait: 5 * time.Second, Panic: 10},
			part: "ROOT-B",
		},
		{
			name: "root overrides the slot",
			in:   "plinth.slot=B plinth.root=TEST-ROOT",
			want: Cmdline{Slot: "B", Root: "TEST-ROOT", RootWait: 30 * time.Second},
			part: "TEST-ROOT",
		},
		{
			name: "later key wins, unknown keys ignored",
			in:   "plinth.slot=B plinth.unknown=1 plinth.slot=A plinth.debug=1 plinth.debug=0",
			want: Cmdline{Slot: "A", RootWait: 30 * time.Second},
			part: "ROOT-A",
		},
		{
			name: "quoted value",
			in:   `foo="a b c" plinth.root="ROOT A"  plinth.rootwait=0`,
			want: Cmdline{Slot: "A", Root: "ROOT A", RootWait: 0},
			part: "ROOT A",
		},
		{
			name: "init arguments after -- are not ours",
			in:   "panic=-1 -- plinth.slot=B",
			want: Cmdline{Slot: "A", RootWait: 30 * time.Second, Panic: -1},
			part: "ROOT-A",
		},
		{
			name:    "bad slot keeps panic",
			in:      "plinth.slot=C panic=5",
			want:    Cmdline{Slot: "A", RootWait: 30 * time.Second, Panic: 5},
			wantErr: "plinth.slot=C: the slot must be A or B",
		},
		{
			name:    "bad rootwait",
			in:      "plinth.rootwait=soon",
			want:    Cmdline{Slot: "A", RootWait: 30 * time.Second},
			wantErr: "plinth.rootwait=soon: want a whole number of seconds",
		},
		{
			name:    "negative rootwait",
			in:      "plinth.rootwait=-1",
			want:    Cmdline{Slot: "A", RootWait: 30 * time.Second},
			wantErr: "plinth.rootwait=-1",
		},
		{
			name:    "empty root",
			in:      "plinth.root=",
			want:    Cmdline{Slot: "A", RootWait: 30 * time.Second},
			wantErr: "want a GPT partition name",
		},
		{
			name:    "bad debug",
			in:      "plinth.debug=maybe",
			want:    Cmdline{Slot: "A", RootWait: 30 * time.Second},
			wantErr: "plinth.debug=maybe: want 1 or 0",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseCmdline(tt.in)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error = %v, want it to contain %q", err, tt.wantErr)
				}
			} else if err != nil {
				t.Fatal(err)
			}
			if got != tt.want {
				t.Errorf("got %+v, want %+v", got, tt.want)
			}
			if tt.part != "" && got.PartName() != tt.part {
				t.Errorf("PartName = %q, want %q", got.PartName(), tt.part)
			}
		})
	}
}
