package agent

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
	"time"
)

// fileProjection is one file of a configMap, secret, downwardAPI or
// projected volume.
type fileProjection struct {
	Data []byte
	Mode os.FileMode
}

// dataDirName is the symlink through which a projected volume's files are
// reached; it is swapped atomically on each update, as the kubelet's
// AtomicWriter does:
//
//	<dir>/..2026_01_02_15_04_05.123/   the files of one version
//	<dir>/..data -> ..2026_01_02_15_04_05.123
//	<dir>/<key> -> ..data/<key>         one per top-level name
//
// so a reader inside the container sees either the old files or the new
// ones, never a mix.
const dataDirName = "..data"

// writeProjection makes dir hold exactly payload (paths relative to dir).
// It does nothing when dir already does; otherwise it writes a new
// version and swaps ..data to it. It reports whether it wrote.
func writeProjection(dir string, payload map[string]fileProjection) (bool, error) {
	for p := range payload {
		if err := validProjectionPath(p); err != nil {
			return false, err
		}
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return false, err
	}
	old, _ := os.Readlink(filepath.Join(dir, dataDirName))
	if old != "" && sameProjection(filepath.Join(dir, old), payload) {
		return false, nil
	}
	version, err := os.MkdirTemp(dir, time.Now().UTC().Format("..2006_01_02_15_04_05."))
	if err != nil {
		return false, err
	}
	if err := os.Chmod(version, 0o755); err != nil {
		return false, err
	}
	for p, f := range payload {
		full := filepath.Join(version, p)
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			return false, err
		}
		if err := os.WriteFile(full, f.Data, f.Mode); err != nil {
			return false, err
		}
		if err := os.Chmod(full, f.Mode); err != nil {
			return false, err
		}
	}
	tmp := filepath.Join(dir, dataDirName+"_tmp")
	os.Remove(tmp)
	if err := os.Symlink(filepath.Base(version), tmp); err != nil {
		return false, err
	}
	if err := os.Rename(tmp, filepath.Join(dir, dataDirName)); err != nil {
		return false, err
	}
	// The visible names: one symlink per top-level entry.
	top := map[string]bool{}
	for p := range payload {
		top[strings.SplitN(p, "/", 2)[0]] = true
	}
	for name := range top {
		link := filepath.Join(dir, name)
		if target, err := os.Readlink(link); err == nil && target == path.Join(dataDirName, name) {
			continue
		}
		os.Remove(link)
		if err := os.Symlink(path.Join(dataDirName, name), link); err != nil {
			return false, err
		}
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return false, err
	}
	for _, e := range entries {
		name := e.Name()
		switch {
		case name == dataDirName:
		case strings.HasPrefix(name, ".."):
			if name != filepath.Base(version) {
				os.RemoveAll(filepath.Join(dir, name))
			}
		case !top[name] && e.Type()&fs.ModeSymlink != 0:
			os.Remove(filepath.Join(dir, name))
		}
	}
	return true, nil
}

// sameProjection reports whether version holds exactly payload.
func sameProjection(version string, payload map[string]fileProjection) bool {
	n := 0
	err := filepath.WalkDir(version, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(version, p)
		f, ok := payload[filepath.ToSlash(rel)]
		if !ok {
			return errors.New("extra file")
		}
		info, err := d.Info()
		if err != nil || info.Mode().Perm() != f.Mode.Perm() {
			return errors.New("mode differs")
		}
		data, err := os.ReadFile(p)
		if err != nil || !bytes.Equal(data, f.Data) {
			return errors.New("content differs")
		}
		n++
		return nil
	})
	return err == nil && n == len(payload)
}

// validProjectionPath refuses absolute paths, ".." elements and names
// starting with ".." (they would clash with the versions).
func validProjectionPath(p string) error {
	switch {
	case p == "":
		return errors.New("invalid path: must not be empty")
	case path.IsAbs(p):
		return fmt.Errorf("invalid path %q: must be relative", p)
	case strings.HasPrefix(p, ".."):
		return fmt.Errorf("invalid path %q: must not start with '..'", p)
	}
	for _, el := range strings.Split(p, "/") {
		if el == ".." {
			return fmt.Errorf("invalid path %q: must not contain '..'", p)
		}
	}
	return nil
}
