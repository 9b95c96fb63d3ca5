package filesync

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"io/fs"
	"os"
	"time"

	"github.com/vwstream/vwstream/internal/objstore"
)

// memUploadLimit is the largest file read into memory for upload: the bytes
// hashed are then exactly the bytes sent. Larger files are hashed, streamed
// with a second hash, and the two compared.
const memUploadLimit = 4 << 20

type outcome int

const (
	uploaded  outcome = iota // the store now holds the file's content
	unchanged                // the content was already stored; only the mtime changed
	gone                     // the file no longer exists
	retry                    // look again at retryAt (unstable), or later (err set)
)

type result struct {
	outcome outcome
	entry   entry
	info    objstore.ObjectInfo
	retryAt time.Time
	err     error
}

// upload stores the file at abs under key if its content differs from what the
// manifest says is stored. It only uploads a file that has not been modified
// for StableFor (unless flushing), and checks before and after reading it that
// it did not change, so a file still being written is never stored as complete.
// buf is the worker's read buffer, reused from file to file.
func (s *Syncer) upload(ctx context.Context, key, abs string, buf *[]byte) result {
	fi1, err := os.Lstat(abs)
	if errors.Is(err, fs.ErrNotExist) {
		return result{outcome: gone}
	}
	if err != nil {
		return result{outcome: retry, err: fmt.Errorf("stat %s: %w", abs, err)}
	}
	if !fi1.Mode().IsRegular() {
		// Symlinks, sockets and the like are not Vaultwarden files.
		return result{outcome: gone}
	}
	now := time.Now()
	if stableAt := fi1.ModTime().Add(s.opts.StableFor); !s.flushing.Load() && now.Before(stableAt) {
		return result{outcome: retry, retryAt: stableAt}
	}
	changing := result{outcome: retry, retryAt: now.Add(s.opts.StableFor)}
	e := entry{Size: fi1.Size(), MTime: fi1.ModTime().UnixNano()}

	var (
		info objstore.ObjectInfo
		sum  string
	)
	if fi1.Size() <= memUploadLimit {
		data, grown, err := readWhole(abs, fi1.Size(), buf)
		if errors.Is(err, fs.ErrNotExist) {
			return result{outcome: gone}
		}
		if err != nil {
			return result{outcome: retry, err: fmt.Errorf("read %s: %w", abs, err)}
		}
		if grown || int64(len(data)) != fi1.Size() || !sameFile(abs, fi1) {
			return changing
		}
		h := sha256.Sum256(data)
		sum = hex.EncodeToString(h[:])
		if s.stored(key, sum) {
			e.Hash = sum
			return result{outcome: unchanged, entry: e}
		}
		info, err = s.opts.Store.Put(ctx, key, bytes.NewReader(data), objstore.PutOptions{})
		if err != nil {
			return result{outcome: retry, err: fmt.Errorf("upload %s: %w", key, err)}
		}
	} else {
		sum, err = hashFile(abs)
		if err != nil {
			return result{outcome: retry, err: err}
		}
		if !sameFile(abs, fi1) {
			return changing
		}
		if s.stored(key, sum) {
			e.Hash = sum
			return result{outcome: unchanged, entry: e}
		}
		f, err := os.Open(abs)
		if err != nil {
			return result{outcome: retry, err: fmt.Errorf("open %s: %w", abs, err)}
		}
		h := sha256.New()
		info, err = s.opts.Store.Put(ctx, key, io.TeeReader(f, h), objstore.PutOptions{})
		f.Close()
		if err != nil {
			return result{outcome: retry, err: fmt.Errorf("upload %s: %w", key, err)}
		}
		if hex.EncodeToString(h.Sum(nil)) != sum || !sameFile(abs, fi1) {
			// Modified while uploading: the object holds a mix. It is replaced
			// by the next attempt once the file is stable again.
			s.opts.Logger.Warn("file changed during upload, uploading it again", "key", key)
			return changing
		}
	}
	if info.Size != e.Size {
		return result{outcome: retry, err: fmt.Errorf("upload %s: %w: stored %d bytes, file has %d", key, objstore.ErrChecksum, info.Size, e.Size)}
	}
	e.Hash, e.ETag = sum, info.ETag
	return result{outcome: uploaded, entry: e, info: info}
}

// stored reports whether the manifest records this content as stored under key
// and the last listing (if any) still shows the object the manifest knows.
func (s *Syncer) stored(key, sum string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	e, ok := s.man.Files[key]
	if !ok || e.Hash != sum {
		return false
	}
	if s.remote == nil {
		return true
	}
	r, ok := s.remote[key]
	return ok && r.ETag == e.ETag && r.Size == e.Size
}

// keepReadBuf is the largest read buffer a worker keeps for its next file.
const keepReadBuf = 1 << 20

// readWhole reads the file at abs, of size bytes when it was looked at, into
// *buf (grown when too small): one read more than size tells a file that grew.
func readWhole(abs string, size int64, buf *[]byte) (data []byte, grown bool, err error) {
	f, err := os.Open(abs)
	if err != nil {
		return nil, false, err
	}
	defer f.Close()
	if int64(cap(*buf)) <= size {
		*buf = make([]byte, max(size+1, 64<<10))
	}
	b := (*buf)[:size+1]
	n, err := io.ReadFull(f, b)
	switch err {
	case nil:
		return nil, true, nil
	case io.EOF, io.ErrUnexpectedEOF:
		return b[:n], false, nil
	default:
		return nil, false, err
	}
}

// sameFile reports whether abs is still the file fi describes: same inode, size
// and modification time.
func sameFile(abs string, fi os.FileInfo) bool {
	fi2, err := os.Lstat(abs)
	return err == nil && os.SameFile(fi, fi2) && fi2.Size() == fi.Size() && fi2.ModTime().Equal(fi.ModTime())
}

func hashFile(abs string) (string, error) {
	f, err := os.Open(abs)
	if err != nil {
		return "", fmt.Errorf("hash %s: %w", abs, err)
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", fmt.Errorf("hash %s: %w", abs, err)
	}
	return hexSum(h), nil
}

func hexSum(h hash.Hash) string { return hex.EncodeToString(h.Sum(nil)) }
