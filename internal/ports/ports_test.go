package ports

import "testing"

func TestURLs(t *testing.T) {
	for _, tc := range []struct{ got, want string }{
		{EtcdPeerURL("10.5.0.2"), "https://10.5.0.2:2380"},
		{EtcdPeerURL("fd00::2"), "https://[fd00::2]:2380"},
		{EtcdClientURL("127.0.0.1"), "https://127.0.0.1:2379"},
		{KubeAPIURL("10.5.0.2"), "https://10.5.0.2:6443"},
		{HostPort("::1", NodeAPI), "[::1]:50000"},
	} {
		if tc.got != tc.want {
			t.Errorf("got %s, want %s", tc.got, tc.want)
		}
	}
}
