package docker

import (
	"context"
	"slices"
	"strings"
	"testing"
)

const inspectCP = `[{"Name":"/demo-controlplane-1","Config":{"Image":"plinth/node:v1","Labels":{"plinth.cluster":"demo","plinth.role":"controlplane","plinth.node":"demo-controlplane-1"},"Cmd":null},
 "HostConfig":{"NanoCpus":2000000000,"Memory":2147483648,"PortBindings":{"50000/tcp":[{"HostIp":"127.0.0.1","HostPort":"41001"}],"6443/tcp":[{"HostIp":"127.0.0.1","HostPort":"41002"}]}},
 "NetworkSettings":{"Networks":{"plinth-demo":{"IPAddress":"","IPAMConfig":{"IPv4Address":"10.5.0.2"}}}}}]`

func replaceFake(t *testing.T) *fakeRunner {
	t.Helper()
	seed, err := configArchive([]byte("the seed config"))
	if err != nil {
		t.Fatal(err)
	}
	return newFake().
		on("container inspect demo-controlplane-1", inspectCP).
		fail("container inspect --format {{.Id}} demo-controlplane-1-previous", "Error: No such container: demo-controlplane-1-previous").
		on("cp demo-controlplane-1:/etc/plinth/config.yaml -", string(seed))
}

func TestReplaceKeepsTheNodesSettings(t *testing.T) {
	f := replaceFake(t)
	var said []string
	r, err := testProvisioner(f).Replace(context.Background(), "demo-controlplane-1", "plinth/node:v2", func(format string, a ...any) { said = append(said, format) }, nil)
	if err != nil {
		t.Fatal(err)
	}
	if r.Role != "controlplane" || r.OldImage != "plinth/node:v1" {
		t.Errorf("replacement %+v", r)
	}
	got := f.commands("stop", "rename", "create", "cp -", "start")
	if len(got) != 5 || got[0] != "stop --time 90 demo-controlplane-1" || got[1] != "rename demo-controlplane-1 demo-controlplane-1-previous" ||
		got[3] != "cp - demo-controlplane-1:/" || got[4] != "start demo-controlplane-1" {
		t.Fatalf("commands:\n%s", strings.Join(got, "\n"))
	}
	create := got[2]
	for _, want := range []string{"--ip 10.5.0.2", "--volume demo-controlplane-1-var:/var", "--cpus 2", "--memory 2048m",
		"--publish 127.0.0.1:41001:50000", "--publish 127.0.0.1:41002:6443", "--label plinth.cluster=demo", "plinth/node:v2"} {
		if !strings.Contains(create, want) {
			t.Errorf("the new container lacks %q:\n%s", want, create)
		}
	}
	// The seed configuration read from the old container goes into the new one.
	for _, c := range f.calls {
		if slices.Equal(c.Args, []string{"cp", "-", "demo-controlplane-1:/"}) && !strings.Contains(string(c.Stdin), "the seed config") {
			t.Error("the new container does not get the old one's configuration")
		}
	}
	if err := r.Commit(context.Background()); err != nil {
		t.Fatal(err)
	}
	if rm := f.commands("rm"); len(rm) != 1 || rm[0] != "rm demo-controlplane-1-previous" {
		t.Errorf("commit: %v", rm)
	}
}

func TestReplaceRevertsWhenTheNewContainerFails(t *testing.T) {
	f := replaceFake(t).failOnce("start demo-controlplane-1", "Error: the new one does not start")
	_, err := testProvisioner(f).Replace(context.Background(), "demo-controlplane-1", "plinth/node:v2", func(string, ...any) {}, nil)
	if err == nil || !strings.Contains(err.Error(), "the old container runs again") {
		t.Fatalf("err = %v", err)
	}
	got := f.commands("rm", "rename", "start")
	want := []string{"rename demo-controlplane-1 demo-controlplane-1-previous", "start demo-controlplane-1", "rm --force demo-controlplane-1",
		"rename demo-controlplane-1-previous demo-controlplane-1", "start demo-controlplane-1"}
	if !slices.Equal(got, want) {
		t.Errorf("commands:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

func TestReplaceRefuses(t *testing.T) {
	for _, c := range []struct {
		name, want string
		f          *fakeRunner
	}{
		{"no container", "no container", newFake().fail("container inspect demo-controlplane-1", "Error: No such container: demo-controlplane-1")},
		{"no image", "make image-docker", replaceFake(t).fail("image inspect", "Error: No such image: plinth/node:v2")},
		{"unfinished", "did not finish", replaceFake(t).on("container inspect --format {{.Id}} demo-controlplane-1-previous", "abc")},
		{"load balancer", "not a node", newFake().on("container inspect demo-controlplane-1", strings.Replace(inspectCP, `"plinth.role":"controlplane"`, `"plinth.role":"loadbalancer"`, 1))},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := testProvisioner(c.f).Replace(context.Background(), "demo-controlplane-1", "plinth/node:v2", func(string, ...any) {}, nil)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Errorf("err = %v, want %q", err, c.want)
			}
			if stops := c.f.commands("stop", "rename", "create"); len(stops) > 0 {
				t.Errorf("a refused replacement ran %v", stops)
			}
		})
	}
}
