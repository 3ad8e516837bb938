package config

import "testing"

func TestScrubURL(t *testing.T) {
	mask := func(s string) string { return "<" + s + ">" }
	for _, tt := range []struct{ in, want string }{
		{"https://mirror.example.com/v2", "https://mirror.example.com/v2"},
		{"https://puller:hunter2@mirror.example.com:5000/v2", "https://<puller:hunter2>@mirror.example.com:5000/v2"},
		{"https://ghp_token@github.example/raw.yaml", "https://<ghp_token>@github.example/raw.yaml"},
		{"https://a:b@c@host/x", "https://<a:b@c>@host/x"},
		{"https://@host/x", "https://@host/x"},
		{"https://host/a@b/c", "https://host/a@b/c"},
		{"https://host/m.yaml?token=abc&ref=main", "https://host/m.yaml?token=<abc>&ref=<main>"},
		{"https://host/m.yaml?sig&x=&=y", "https://host/m.yaml?<sig>&x=&=<y>"},
		{"https://host/m.yaml?", "https://host/m.yaml?"},
		{"https://host/m.yaml#access_token=abc", "https://host/m.yaml#<access_token=abc>"},
		{"https://u:p@host?q=1#f", "https://<u:p>@host?q=<1>#<f>"},
		{"tcp://10.0.0.1:5140", "tcp://10.0.0.1:5140"},
		{"user:pass@host:22", "<user:pass>@host:22"},
		{"not a url", "not a url"},
		{"", ""},
	} {
		if got := scrubURL(tt.in, mask); got != tt.want {
			t.Errorf("scrubURL(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}
