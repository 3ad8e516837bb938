package docker

import (
	"context"
	"errors"
	"fmt"
	"strings"
)

// SaveImages writes the local engine's images to path as one docker save archive, which
// the nodes' image import takes. An image the engine lacks is named in the error.
func (p *Provisioner) SaveImages(ctx context.Context, images []string, path string) error {
	if len(images) == 0 {
		return errors.New("name the images to save")
	}
	if err := p.ping(ctx); err != nil {
		return err
	}
	for _, im := range images {
		if _, err := p.run(ctx, "image", "inspect", "--format", "{{.Id}}", im); err != nil {
			if isNoSuch(err) {
				return fmt.Errorf("the local Docker engine has no image %s (docker images lists what it has; docker pull or docker build it first)", im)
			}
			return err
		}
	}
	if _, err := p.run(ctx, append([]string{"save", "--output", path}, images...)...); err != nil {
		return fmt.Errorf("save %s: %w", strings.Join(images, " "), err)
	}
	return nil
}
