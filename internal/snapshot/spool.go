package snapshot

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"

	"golang.org/x/sys/unix"
)

// SpoolPattern names the folder a capture sets files aside in while
// containers are stopped; it lives beside the data and is removed when the
// run ends, also after a failure.
const SpoolPattern = ".vwstream-spool-*"

// spool copies every listed file but the database (streamed from the read
// transaction the capture holds, or already a copy) into a new folder in dir
// and points the entries at the copies, so the archive can be written after
// the containers restart. Each copy is a reflink where the file system shares
// blocks (Btrfs, XFS), else a kernel-side copy. Mode and modification time are
// kept, as the archive records them. It returns the bytes set aside.
func (c *capture) spool(dir string) (int64, error) {
	sp, err := os.MkdirTemp(dir, SpoolPattern)
	if err != nil {
		return 0, fmt.Errorf("spool: %w", err)
	}
	prev := c.cleanup
	c.cleanup = func() error { return errors.Join(os.RemoveAll(sp), prev()) }
	var total int64
	for i := range c.files {
		e := &c.files[i]
		if e.path == c.dbCopy {
			continue
		}
		dst := filepath.Join(sp, strconv.Itoa(i))
		n, err := cloneFile(e.path, dst)
		if errors.Is(err, fs.ErrNotExist) {
			e.path = dst // deleted since it was listed: the archive skips it
			continue
		}
		if err != nil {
			return total, fmt.Errorf("spool %s: %w", e.name, err)
		}
		e.path = dst
		total += n
	}
	return total, nil
}

// cloneFile copies src to a new file dst, sharing blocks when it can.
func cloneFile(src, dst string) (int64, error) {
	in, err := os.Open(src)
	if err != nil {
		return 0, err
	}
	defer in.Close()
	fi, err := in.Stat()
	if err != nil {
		return 0, err
	}
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return 0, err
	}
	n := fi.Size()
	if unix.IoctlFileClone(int(out.Fd()), int(in.Fd())) != nil {
		// No reflink here: io.Copy between files uses copy_file_range.
		if n, err = io.Copy(out, in); err != nil {
			out.Close()
			return 0, err
		}
	}
	if err := out.Chmod(fi.Mode().Perm()); err != nil {
		out.Close()
		return 0, err
	}
	if err := out.Close(); err != nil {
		return 0, err
	}
	return n, os.Chtimes(dst, fi.ModTime(), fi.ModTime())
}
