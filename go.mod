module github.com/plinthos/plinth

go 1.26

require (
	github.com/evanphx/json-patch/v5 v5.9.11
	github.com/spf13/cobra v1.10.2
	go.yaml.in/yaml/v3 v3.0.6
)

require (
	github.com/inconshreveable/mousetrap v1.1.0 // indirect
	github.com/spf13/pflag v1.0.9 // indirect
)
