package render

import (
	"os"
	"strconv"
	"strings"
	"sync"
)

// oomScoreAdjFile is the calling process's OOM score adjustment.
const oomScoreAdjFile = "/proc/self/oom_score_adj"

// minOOMScoreAdj is the lowest oom_score_adj, the one kubelet and containerd may ask for.
const minOOMScoreAdj = -1000

// oomMu serialises the probe, which changes the whole process's oom_score_adj for a moment.
var oomMu sync.Mutex

// CanLowerOOMScoreAdj reports whether this process may lower its oom_score_adj, which
// needs CAP_SYS_RESOURCE (an unprivileged process may only go down to the lowest value a
// privileged ancestor set). It writes the lowest value, -1000, and writes the previous
// value back; raising it is always allowed. It reports false when the write is refused,
// and also on any other failure (no /proc): restricting containers' oom_score_adj is
// always safe, only less precise.
func CanLowerOOMScoreAdj() bool {
	oomMu.Lock()
	defer oomMu.Unlock()
	data, err := os.ReadFile(oomScoreAdjFile)
	if err != nil {
		return false
	}
	current, err := strconv.Atoi(strings.TrimSpace(string(data)))
	if err != nil {
		return false
	}
	if current <= minOOMScoreAdj {
		// Already at the floor: containerd cannot be asked for anything lower, so there is
		// nothing to restrict.
		return true
	}
	if err := writeOOMScoreAdj(minOOMScoreAdj); err != nil {
		return false // EACCES without CAP_SYS_RESOURCE (EPERM on some kernels)
	}
	// Raising is always allowed; should it fail anyway, the process keeps -1000, which
	// only makes it the OOM killer's last choice.
	_ = writeOOMScoreAdj(current)
	return true
}

func writeOOMScoreAdj(v int) error {
	f, err := os.OpenFile(oomScoreAdjFile, os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	_, werr := f.WriteString(strconv.Itoa(v))
	cerr := f.Close()
	if werr != nil {
		return werr
	}
	return cerr
}
