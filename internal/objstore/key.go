package objstore

import (
	"fmt"
	"strings"
)

// tempPrefix starts the names of the local store's partial files, which List
// never shows and keys may therefore not use.
const tempPrefix = ".tmp-"

// lockName is the local store's lock file at its root.
const lockName = ".lock"

// CheckKey refuses keys that could escape the store root or collide with the
// local store's own files, so both stores accept exactly the same keys.
func CheckKey(key string) error {
	switch {
	case key == "":
		return fmt.Errorf("invalid key %q: empty", key)
	case strings.HasPrefix(key, "/"):
		return fmt.Errorf("invalid key %q: starts with a slash", key)
	case strings.ContainsRune(key, '\\'):
		return fmt.Errorf("invalid key %q: contains a backslash", key)
	case strings.ContainsRune(key, 0):
		return fmt.Errorf("invalid key %q: contains a NUL byte", key)
	}
	for _, seg := range strings.Split(key, "/") {
		switch {
		case seg == "":
			return fmt.Errorf("invalid key %q: empty path segment", key)
		case seg == "." || seg == "..":
			return fmt.Errorf("invalid key %q: %q segment", key, seg)
		case strings.HasPrefix(seg, tempPrefix):
			return fmt.Errorf("invalid key %q: segment starts with reserved %q", key, tempPrefix)
		}
	}
	if key == lockName {
		return fmt.Errorf("invalid key %q: reserved", key)
	}
	return nil
}

// checkPrefix accepts "" and any prefix that is a valid key or a valid key
// followed by a slash.
func checkPrefix(prefix string) error {
	if prefix == "" {
		return nil
	}
	if err := CheckKey(strings.TrimSuffix(prefix, "/")); err != nil {
		return fmt.Errorf("invalid prefix %q: %w", prefix, err)
	}
	return nil
}
