package machined

import (
	"fmt"
	"os"
	"path/filepath"
	"syscall"
)

// nobody is the unprivileged user apid runs as when machined runs as root.
const nobody = 65534

// apidUser returns the uid and gid apid runs as: nobody when machined is root (apid then
// holds no privilege and no capability), else nil (the same user as machined).
func apidUser() *[2]int {
	if os.Geteuid() != 0 {
		return nil
	}
	return &[2]int{nobody, nobody}
}

// credential turns apidUser into the process credential.
func credential(user *[2]int) *syscall.Credential {
	if user == nil {
		return nil
	}
	return &syscall.Credential{Uid: uint32(user[0]), Gid: uint32(user[1]), NoSetGroups: true}
}

// prepareAPIDir makes dir apid's own directory (its identity and machined's socket) and
// checks that apid's user can reach it: every parent must be searchable by others.
func prepareAPIDir(stateDir, dir string, user *[2]int) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	if user == nil {
		return nil
	}
	if err := os.Chmod(stateDir, 0o711); err != nil {
		return err
	}
	if err := os.Chown(dir, user[0], user[1]); err != nil {
		return fmt.Errorf("give %s to apid's user: %w", dir, err)
	}
	for p := filepath.Dir(stateDir); ; p = filepath.Dir(p) {
		st, err := os.Stat(p)
		if err != nil {
			return err
		}
		if st.Mode().Perm()&0o001 == 0 {
			return fmt.Errorf("apid runs as an unprivileged user and cannot reach the state directory: %s is not searchable by others (chmod o+x %s, or pick another --state-dir)", p, p)
		}
		if p == filepath.Dir(p) {
			return nil
		}
	}
}
