package filesync

import (
	"path/filepath"
	"strings"

	"github.com/vwstream/vwstream/internal/bucket/layout"
)

// skipName reports names file sync never picks up, wherever they are: dot names
// (.db.sqlite3-litestream/, .vwstream/, editor and rsync temp files), the SQLite
// database and its journals, and common partial-download suffixes.
func skipName(name string) bool {
	if name == "" || strings.HasPrefix(name, ".") || strings.HasPrefix(name, "db.sqlite3") {
		return true
	}
	for _, suf := range []string{"~", ".tmp", ".temp", ".part", ".partial", ".swp", "-wal", "-shm", "-journal"} {
		if strings.HasSuffix(name, suf) {
			return true
		}
	}
	return false
}

// paths maps local paths to object keys and back.
type paths struct {
	includes []Include
	exclude  []string // cleaned absolute paths
}

func newPaths(includes []Include, exclude []string) *paths {
	p := &paths{}
	for _, inc := range includes {
		inc.Path = filepath.Clean(inc.Path)
		if inc.Dir {
			// A folder configured as a symbolic link (ATTACHMENTS_FOLDER on another
			// disk) is watched and walked at its target: neither inotify nor
			// WalkDir descends into a link given as the root.
			if real, err := filepath.EvalSymlinks(inc.Path); err == nil {
				inc.Path = real
			}
		}
		p.includes = append(p.includes, inc)
	}
	for _, e := range exclude {
		if e != "" {
			p.exclude = append(p.exclude, filepath.Clean(e))
		}
	}
	return p
}

func (p *paths) excluded(abs string) bool {
	for _, e := range p.exclude {
		if abs == e || strings.HasPrefix(abs, e+string(filepath.Separator)) {
			return true
		}
	}
	return false
}

// keyOf returns the object key of a local file and the index of its include;
// ok is false for paths that are not synced.
func (p *paths) keyOf(abs string) (key string, inc int, ok bool) {
	abs = filepath.Clean(abs)
	if p.excluded(abs) {
		return "", -1, false
	}
	for i, in := range p.includes {
		if !in.Dir {
			if abs == in.Path {
				return layout.Files + in.Name, i, true
			}
			continue
		}
		rel, err := filepath.Rel(in.Path, abs)
		if err != nil || rel == "." || rel == ".." || strings.HasPrefix(rel, ".."+string(filepath.Separator)) {
			continue
		}
		for _, part := range strings.Split(rel, string(filepath.Separator)) {
			if skipName(part) {
				return "", -1, false
			}
		}
		return layout.Files + in.Name + "/" + filepath.ToSlash(rel), i, true
	}
	return "", -1, false
}

// localOf returns the local path of an object key under files/ and its
// include; ok is false for keys of paths not synced here.
func (p *paths) localOf(key string) (abs string, inc int, ok bool) {
	name, found := strings.CutPrefix(key, layout.Files)
	if !found {
		return "", -1, false
	}
	for i, in := range p.includes {
		if !in.Dir {
			if name == in.Name {
				return in.Path, i, true
			}
			continue
		}
		rel, found := strings.CutPrefix(name, in.Name+"/")
		if !found || rel == "" {
			continue
		}
		for _, part := range strings.Split(rel, "/") {
			if part == "" || part == "." || part == ".." || skipName(part) {
				return "", -1, false
			}
		}
		abs := filepath.Join(in.Path, filepath.FromSlash(rel))
		if p.excluded(abs) {
			return "", -1, false
		}
		return abs, i, true
	}
	return "", -1, false
}

// isRoot returns the index of the folder include whose root is abs, or -1.
func (p *paths) isRoot(abs string) int {
	for i, in := range p.includes {
		if in.Dir && in.Path == abs {
			return i
		}
	}
	return -1
}

// inDirInclude reports whether abs is the root of a folder include or a
// synced folder inside one.
func (p *paths) inDirInclude(abs string) bool {
	if p.isRoot(abs) >= 0 {
		return !p.excluded(abs)
	}
	_, i, ok := p.keyOf(abs)
	return ok && p.includes[i].Dir
}
