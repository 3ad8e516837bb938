package docker

import (
	"context"
	"slices"
	"strings"
	"testing"
)

func TestSaveImages(t *testing.T) {
	f := newFake()
	p := testProvisioner(f)
	if err := p.SaveImages(context.Background(), []string{"myapp:dev", "redis:7"}, "/tmp/x.tar"); err != nil {
		t.Fatal(err)
	}
	if got := f.commands("save"); !slices.Equal(got, []string{"save --output /tmp/x.tar myapp:dev redis:7"}) {
		t.Errorf("saved with %v", got)
	}

	f = newFake().fail("image inspect --format {{.Id}} redis:7", "Error: No such image: redis:7")
	err := testProvisioner(f).SaveImages(context.Background(), []string{"myapp:dev", "redis:7"}, "/tmp/x.tar")
	if err == nil || !strings.Contains(err.Error(), "the local Docker engine has no image redis:7") {
		t.Errorf("a missing image: %v", err)
	}
	if got := f.commands("save"); len(got) != 0 {
		t.Errorf("saved although an image is missing: %v", got)
	}
	if err := testProvisioner(newFake()).SaveImages(context.Background(), nil, "/tmp/x.tar"); err == nil {
		t.Error("no images: no error")
	}
}
