// Package ext4img makes the empty ext4 file systems the OS image ships in its STATE and
// EPHEMERAL partitions, with mke2fs from the build host. The node never formats: machined
// mounts them and grows EPHEMERAL to the disk's end online, so the image needs no mkfs
// (see docs/decisions.md). The same inputs give byte-identical file systems: the time,
// UUID, hash seed and every feature are fixed, and the host's mke2fs.conf is not read.
package ext4img

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
)

// Features are the file system's features, spelled out so that no host default applies.
// resize_inode lets the kernel grow it online (past ResizeLimit, it switches to meta_bg).
const Features = "has_journal,ext_attr,resize_inode,dir_index,filetype,extent,64bit,flex_bg,sparse_super,large_file,huge_file,dir_nlink,extra_isize,metadata_csum"

// ResizeLimit is the size up to which the reserved group descriptor blocks let the kernel
// grow the file system online: 2 TiB, 256 reserved blocks. More (the largest limit reserves
// 1024) makes the online resize's journal transaction larger than a small file system's
// journal allows ("JBD2: wants too many credits"), and the resize fails.
const ResizeLimit = int64(2) << 40

// Make writes at path an empty ext4 file system of size bytes (a multiple of 4 KiB) labelled
// label, with fsUUID as its UUID and directory hash seed. An existing file is replaced.
func Make(ctx context.Context, path, label string, size int64, fsUUID string) error {
	if size <= 0 || size%4096 != 0 {
		return fmt.Errorf("ext4 image %s: size %d is not a positive multiple of 4 KiB", label, size)
	}
	if len(label) > 16 {
		return fmt.Errorf("ext4 image: label %q is longer than 16 bytes", label)
	}
	if err := os.Remove(path); err != nil && !os.IsNotExist(err) {
		return fmt.Errorf("ext4 image %s: %w", label, err)
	}
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("ext4 image %s: %w", label, err)
	}
	if err := f.Truncate(size); err != nil {
		f.Close()
		return fmt.Errorf("ext4 image %s: %w", label, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("ext4 image %s: %w", label, err)
	}
	cmd := exec.CommandContext(ctx, "mke2fs", "-q", "-F", "-b", "4096", "-I", "256", "-i", "16384", "-m", "0",
		"-L", label, "-U", fsUUID,
		"-E", "hash_seed="+fsUUID+",root_owner=0:0,lazy_itable_init=0,lazy_journal_init=0,nodiscard,resize="+strconv.FormatInt(ResizeLimit/4096, 10),
		"-O", Features, path)
	// A fixed creation time, and no host configuration (its defaults differ between
	// e2fsprogs versions).
	cmd.Env = append(os.Environ(), "E2FSPROGS_FAKE_TIME=1", "MKE2FS_CONFIG=/dev/null")
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("mke2fs for %s (Debian: e2fsprogs): %w: %s", label, err, strings.TrimSpace(out.String()))
	}
	return nil
}
