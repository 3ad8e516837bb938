package configmgr

import (
	"strings"
	"testing"

	"github.com/plinthos/plinth/pkg/config"
)

// clone is a private deep copy of a configuration, through its YAML form.
func clone(t *testing.T, c *config.MachineConfig) *config.MachineConfig {
	t.Helper()
	doc, err := config.Load(marshal(t, c), "clone")
	if err != nil {
		t.Fatal(err)
	}
	return doc.Config
}

// diffLines returns the removed and added lines of a unified diff that contain s.
func diffLines(diff, s string) (removed, added []string) {
	for _, l := range strings.Split(diff, "\n") {
		switch {
		case strings.HasPrefix(l, "---") || strings.HasPrefix(l, "+++") || !strings.Contains(l, s):
		case strings.HasPrefix(l, "-"):
			removed = append(removed, l)
		case strings.HasPrefix(l, "+"):
			added = append(added, l)
		}
	}
	return removed, added
}

// The cases of TestApplyDiffMasksSecrets: set puts a secret into a configuration, shown is
// the part of the diff line that must show the field (with the secret masked).
var secretCases = []struct {
	name    string
	secrets [2]string // the running one, the new one
	set     func(c *config.MachineConfig, secret string)
	shown   string
	// required: the base configuration always has the field, so it cannot be added.
	required bool
}{
	{
		name:    "machine.env proxy password",
		secrets: [2]string{"oldpass", "hunter2"},
		set: func(c *config.MachineConfig, s string) {
			c.Machine.Env = map[string]string{"HTTPS_PROXY": "http://user:" + s + "@proxy:3128", "NO_PROXY": "10.0.0.0/8"}
		},
		shown: "HTTPS_PROXY: (secret ",
	},
	{
		name:    "machine.files content",
		secrets: [2]string{"db-password-0ld", "db-password-N3w"},
		set: func(c *config.MachineConfig, s string) {
			c.Machine.Files = []config.File{{Path: "/var/lib/app/credentials", Content: "[db]\npassword = " + s + "\n", Op: "overwrite"}}
		},
		shown: "content: (secret ",
	},
	{
		name:    "cluster.inlineManifests Secret",
		secrets: [2]string{"c3VwZXJzZWNyZXQtb2xk", "c3VwZXJzZWNyZXQtbmV3"},
		set: func(c *config.MachineConfig, s string) {
			c.Cluster.InlineManifests = []config.InlineManifest{{
				Name:     "db-credentials",
				Contents: "apiVersion: v1\nkind: Secret\nmetadata:\n  name: db\n  namespace: default\ndata:\n  password: " + s + "\n",
			}}
		},
		shown: "contents: (secret ",
	},
	{
		name:    "machine.kubelet.extraArgs",
		secrets: [2]string{"kubelet-s3cret-old", "kubelet-s3cret-new"},
		set: func(c *config.MachineConfig, s string) {
			c.Machine.Kubelet.ExtraArgs = map[string]string{"registry-password": s, "max-pods": "150"}
		},
		shown: "registry-password: (secret ",
	},
	{
		name:    "cluster.apiServer.extraArgs",
		secrets: [2]string{"oidc-client-s3cret-old", "oidc-client-s3cret-new"},
		set: func(c *config.MachineConfig, s string) {
			c.Cluster.APIServer.ExtraArgs = map[string]string{"oidc-client-secret": s}
		},
		shown: "oidc-client-secret: (secret ",
	},
	{
		name:    "machine.registries mirror credentials",
		secrets: [2]string{"registry-pw-old", "registry-pw-new"},
		set: func(c *config.MachineConfig, s string) {
			c.Machine.Registries.Mirrors = map[string]config.Mirror{
				"docker.io": {Endpoints: []string{"https://puller:" + s + "@mirror.example.com:5000"}},
			}
		},
		shown: "- https://(secret ",
	},
	{
		name:    "cluster.extraManifests URL token",
		secrets: [2]string{"ghtoken0ld", "ghtokenN3w"},
		set: func(c *config.MachineConfig, s string) {
			c.Cluster.ExtraManifests = []string{"https://raw.example.com/org/app/main/app.yaml?token=" + s}
		},
		shown: "app.yaml?token=(secret ",
	},
	{
		name:     "machine.token",
		secrets:  [2]string{"oldtok.0123456789abcdef", "newtok.fedcba9876543210"},
		set:      func(c *config.MachineConfig, s string) { c.Machine.Token = s },
		shown:    "token: (secret ",
		required: true,
	},
}

// TestApplyDiffMasksSecrets (security finding 8): the diff of an apply (and of a dry run)
// shows that a secret was added, changed or kept, and never the secret itself.
func TestApplyDiffMasksSecrets(t *testing.T) {
	base := generated(t).ControlPlane
	for _, tc := range secretCases {
		t.Run(tc.name, func(t *testing.T) {
			variant := func(secret string) *config.MachineConfig {
				c := clone(t, base)
				tc.set(c, secret)
				return c
			}
			assertHidden := func(what, diff string) {
				t.Helper()
				for _, s := range tc.secrets {
					if strings.Contains(diff, s) {
						t.Errorf("%s: the diff shows the secret %q:\n%s", what, s, diff)
					}
				}
				if strings.Contains(diff, "(cannot render") {
					t.Errorf("%s: %s", what, diff)
				}
			}

			// Added: the new secret's field shows as added.
			if !tc.required {
				m, _, _, _ := newManager(t)
				boot(t, m, marshal(t, base))
				res, err := m.Apply(marshal(t, variant(tc.secrets[1])), ModeAuto, true, 0)
				if err != nil {
					t.Fatalf("dry run: %v", err)
				}
				assertHidden("added", res.Diff)
				if removed, added := diffLines(res.Diff, tc.shown); len(removed) != 0 || len(added) != 1 {
					t.Errorf("added: want one added line with %q, got -%q +%q in\n%s", tc.shown, removed, added, res.Diff)
				}
			}

			// Changed: removed and added lines with different markers, in a dry run and in
			// a real apply.
			for _, dryRun := range []bool{true, false} {
				m, _, _, _ := newManager(t)
				boot(t, m, marshal(t, variant(tc.secrets[0])))
				res, err := m.Apply(marshal(t, variant(tc.secrets[1])), ModeAuto, dryRun, 0)
				if err != nil {
					t.Fatalf("apply (dry run %v): %v", dryRun, err)
				}
				assertHidden("changed", res.Diff)
				removed, added := diffLines(res.Diff, tc.shown)
				if len(removed) != 1 || len(added) != 1 || removed[0][1:] == added[0][1:] {
					t.Errorf("changed (dry run %v): want a removed and an added line with %q, masked differently; got -%q +%q in\n%s",
						dryRun, tc.shown, removed, added, res.Diff)
				}
			}

			// Kept: an unchanged secret is no change, even when something else changes.
			m, _, _, _ := newManager(t)
			boot(t, m, marshal(t, variant(tc.secrets[1])))
			next := variant(tc.secrets[1])
			next.Machine.Network.Hostname = "renamed"
			res, err := m.Apply(marshal(t, next), ModeAuto, true, 0)
			if err != nil {
				t.Fatalf("dry run: %v", err)
			}
			assertHidden("kept", res.Diff)
			if removed, added := diffLines(res.Diff, tc.shown); len(removed) != 0 || len(added) != 0 {
				t.Errorf("kept: an unchanged secret shows as changed: -%q +%q", removed, added)
			}
			if !strings.Contains(res.Diff, "+    hostname: renamed") {
				t.Errorf("kept: the diff lacks the hostname change:\n%s", res.Diff)
			}
			// Masking worked on a copy: the running configuration still holds the secret.
			if cur, _ := m.Current(); !strings.Contains(string(marshal(t, cur)), tc.secrets[1]) {
				t.Error("the diff masked the running configuration itself")
			}
		})
	}
}

// TestApplyDiffFingerprintsDifferPerDiff: the marker of a secret is keyed anew for each
// diff, so that markers of two diffs cannot be compared (nor a weak secret guessed from a
// marker).
func TestApplyDiffFingerprintsDifferPerDiff(t *testing.T) {
	cp := generated(t).ControlPlane
	a := diffConfigs(nil, cp)
	b := diffConfigs(nil, cp)
	_, la := diffLines(a, "  token: (secret ")
	_, lb := diffLines(b, "  token: (secret ")
	if len(la) != 2 || len(lb) != 2 {
		t.Fatalf("want the machine and cluster tokens masked, got %q and %q", la, lb)
	}
	if la[0] == lb[0] {
		t.Errorf("two diffs mask the same token alike: %q", la[0])
	}
}
