// Package cgroupmetrics reads a container's memory and CPU time from containerd's task
// metrics (`ctr tasks metrics --format json`), for cgroup v1 and cgroup v2 hosts.
package cgroupmetrics

import (
	"encoding/json"
	"errors"
	"fmt"
)

// v1 is the part of containerd's cgroup v1 metrics that is read.
type v1 struct {
	CPU *struct {
		Usage *struct {
			Total uint64 `json:"total"` // nanoseconds
		} `json:"usage"`
	} `json:"cpu"`
	Memory *struct {
		TotalInactiveFile uint64 `json:"total_inactive_file"`
		Usage             *struct {
			Usage uint64 `json:"usage"`
		} `json:"usage"`
	} `json:"memory"`
}

// v2 is the part of containerd's cgroup v2 metrics that is read.
type v2 struct {
	CPU *struct {
		UsageUsec uint64 `json:"usage_usec"`
	} `json:"cpu"`
	Memory *struct {
		Usage        uint64 `json:"usage"`
		InactiveFile uint64 `json:"inactive_file"`
	} `json:"memory"`
}

// Parse returns a container's working-set memory in bytes (usage less inactive file
// pages, as kubelet counts it) and its CPU time in seconds.
func Parse(data []byte) (memory uint64, cpuSeconds float64, err error) {
	var probe struct {
		Memory json.RawMessage `json:"memory"`
	}
	if err := json.Unmarshal(data, &probe); err != nil {
		return 0, 0, fmt.Errorf("container metrics: %w", err)
	}
	if len(probe.Memory) == 0 {
		return 0, 0, errors.New("container metrics: no memory figures")
	}
	// cgroup v1 metrics nest usage in an object; v2's is a number.
	var usage struct {
		Usage json.RawMessage `json:"usage"`
	}
	if err := json.Unmarshal(probe.Memory, &usage); err != nil {
		return 0, 0, fmt.Errorf("container metrics: memory: %w", err)
	}
	if len(usage.Usage) > 0 && usage.Usage[0] == '{' {
		var m v1
		if err := json.Unmarshal(data, &m); err != nil {
			return 0, 0, fmt.Errorf("container metrics (cgroup v1): %w", err)
		}
		if m.Memory != nil && m.Memory.Usage != nil {
			memory = workingSet(m.Memory.Usage.Usage, m.Memory.TotalInactiveFile)
		}
		if m.CPU != nil && m.CPU.Usage != nil {
			cpuSeconds = float64(m.CPU.Usage.Total) / 1e9
		}
		return memory, cpuSeconds, nil
	}
	var m v2
	if err := json.Unmarshal(data, &m); err != nil {
		return 0, 0, fmt.Errorf("container metrics (cgroup v2): %w", err)
	}
	if m.Memory == nil {
		return 0, 0, errors.New("container metrics: no memory figures")
	}
	memory = workingSet(m.Memory.Usage, m.Memory.InactiveFile)
	if m.CPU != nil {
		cpuSeconds = float64(m.CPU.UsageUsec) / 1e6
	}
	return memory, cpuSeconds, nil
}

func workingSet(usage, inactiveFile uint64) uint64 {
	if inactiveFile > usage {
		return 0
	}
	return usage - inactiveFile
}
