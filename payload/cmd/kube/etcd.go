//go:build !plinth_noetcd

package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func init() { components["etcd"] = etcd }

func etcd() int {
	etcdmain.Main(os.Args) // exits on error
	return 0
}
