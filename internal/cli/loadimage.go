package cli

import (
	"context"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/plinthos/plinth/internal/localcluster"
	"github.com/plinthos/plinth/internal/provision/docker"
	"github.com/plinthos/plinth/pkg/client"
)

func newClusterLoadImageCommand(g *globalFlags) *cobra.Command {
	f := &clusterFlags{}
	cmd := &cobra.Command{
		Use:   "load-image IMAGE...",
		Short: "Copy images from the local Docker engine into every node of a local cluster",
		Long: `Load-image saves the images from the local Docker engine (docker save) into one archive
and imports it over the node API into the Kubernetes image store of every node of the
cluster (or of the nodes given with -n, by address), as plinthctl image import does. Pods
then run them without a registry: give them imagePullPolicy: IfNotPresent or Never (a
:latest tag means Always by default). It talks to the nodes with the cluster's own context,
from its state directory, whichever context is current. The images stay in the store until
plinthctl image remove, or the node is destroyed.`,
		Example: `  docker build -t myapp:dev . && plinthctl cluster load-image myapp:dev
  plinthctl cluster load-image --name demo myapp:dev redis:7
  plinthctl cluster load-image -n 10.5.0.3 myapp:dev`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runLoadImage(cmd, g, f, args)
		},
	}
	f.add(cmd, true)
	return cmd
}

func runLoadImage(cmd *cobra.Command, g *globalFlags, f *clusterFlags, images []string) error {
	ctx := cmd.Context()
	out := cmd.OutOrStdout()
	prov, err := newProvisioner(f.provisioner)
	if err != nil {
		return err
	}
	cluster, err := prov.Show(ctx, f.name)
	if err != nil {
		return err
	}
	if len(cluster.Nodes) == 0 {
		return fmt.Errorf("there is no cluster %q (plinthctl cluster list shows them)", f.name)
	}
	stateDir, err := f.resolveStateDir()
	if err != nil {
		return err
	}
	cc, err := localcluster.LoadClientContext(stateDir, f.name)
	if err != nil {
		return fmt.Errorf("the cluster's context: %w (pass --state-dir if the cluster was created with one)", err)
	}
	nodes := g.nodes
	if len(nodes) == 0 {
		nodes = cluster.IPs()
	}
	endpoints := g.endpoints
	if len(endpoints) == 0 {
		endpoints = cc.Endpoints
	}

	tmp, err := os.CreateTemp("", "plinth-load-*.tar")
	if err != nil {
		return err
	}
	tmp.Close()
	defer os.Remove(tmp.Name())
	fmt.Fprintf(out, "saving %s from the local Docker engine\n", strings.Join(images, ", "))
	if err := docker.New().SaveImages(ctx, images, tmp.Name()); err != nil {
		return err
	}

	c, err := client.NewWithEndpoints(cc, endpoints)
	if err != nil {
		return err
	}
	defer c.Close()
	s := &session{client: c, endpoint: endpoints[0], nodes: nodes}
	return s.eachStreaming(ctx, out, func(ctx context.Context, _ string, w io.Writer) error {
		return importArchive(ctx, s, tmp.Name(), w)
	})
}
