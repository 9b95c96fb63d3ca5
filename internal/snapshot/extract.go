package snapshot

import (
	"archive/tar"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"strings"
)

// eachFunc receives every entry of an archive but the manifest.
type eachFunc = func(*tar.Header, io.Reader) error

// ErrUnsafe reports an archive entry that would write outside the restore
// folder or create something other than files and folders.
var ErrUnsafe = errors.New("unsafe archive entry")

// safeName checks an entry name and returns it cleaned. vwstream writes only
// relative names of regular files, so anything else is refused before a byte
// reaches the disk.
func safeName(name string) (string, error) {
	if name == "" || strings.HasPrefix(name, "/") || strings.HasPrefix(name, `\`) || filepath.IsAbs(name) || filepath.VolumeName(name) != "" {
		return "", fmt.Errorf("%w: %q is absolute", ErrUnsafe, name)
	}
	for _, seg := range strings.Split(strings.ReplaceAll(name, `\`, "/"), "/") {
		if seg == ".." {
			return "", fmt.Errorf("%w: %q has a .. segment", ErrUnsafe, name)
		}
	}
	clean := path.Clean(name)
	if clean == "." {
		return "", fmt.Errorf("%w: %q names the root", ErrUnsafe, name)
	}
	return clean, nil
}

// ErrTooLarge reports an archive that unpacks to more than it declares.
var ErrTooLarge = errors.New("the archive unpacks to more than its sidecar declares (a decompression bomb?): refused before it fills the disk")

// extractTo returns an eachFunc writing regular files and folders under dir.
// Links of any kind, devices and FIFOs are refused: a symlink pointing outside
// dir would let a later entry write through it, and vwstream never archives one.
// Writing stops with ErrTooLarge as soon as the files pass limit bytes.
func extractTo(dir string, limit int64) eachFunc {
	budget := &budgetWriter{left: limit}
	return func(hdr *tar.Header, r io.Reader) error {
		name, err := safeName(hdr.Name)
		if err != nil {
			return err
		}
		dst := filepath.Join(dir, filepath.FromSlash(name))
		switch hdr.Typeflag {
		case tar.TypeDir:
			if err := os.MkdirAll(dst, 0o700); err != nil {
				return fmt.Errorf("extract %s: %w", name, err)
			}
			return nil
		case tar.TypeReg:
			return writeEntry(dst, name, hdr, r, budget)
		case tar.TypeSymlink, tar.TypeLink:
			return fmt.Errorf("%w: %q is a link to %q (links are refused; one could point outside the folder)", ErrUnsafe, name, hdr.Linkname)
		default:
			return fmt.Errorf("%w: %q is a device, FIFO or other special file (type %q)", ErrUnsafe, name, hdr.Typeflag)
		}
	}
}

func writeEntry(dst, name string, hdr *tar.Header, r io.Reader, budget *budgetWriter) error {
	if err := os.MkdirAll(filepath.Dir(dst), 0o700); err != nil {
		return fmt.Errorf("extract %s: %w", name, err)
	}
	// O_EXCL: a second entry with the same name is not ours.
	f, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, os.FileMode(hdr.Mode).Perm()|0o600)
	if err != nil {
		return fmt.Errorf("extract %s: %w", name, err)
	}
	budget.w = f
	if _, err := io.Copy(budget, r); err != nil {
		f.Close()
		if errors.Is(err, ErrTooLarge) {
			return fmt.Errorf("%w (%s)", err, name)
		}
		return damaged(err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("extract %s: %w", name, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("extract %s: %w", name, err)
	}
	if !hdr.ModTime.IsZero() {
		_ = os.Chtimes(dst, hdr.ModTime, hdr.ModTime)
	}
	return nil
}

// budgetWriter writes to w until left bytes are used up.
type budgetWriter struct {
	w    io.Writer
	left int64
}

func (b *budgetWriter) Write(p []byte) (int, error) {
	if int64(len(p)) > b.left {
		return 0, ErrTooLarge
	}
	n, err := b.w.Write(p)
	b.left -= int64(n)
	return n, err
}
