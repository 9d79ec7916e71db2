package runtimetest

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

// BinDir returns a new directory for binaries a test process builds,
// named after the process, and first removes such directories left by
// test processes that are gone (each build is ~170 MB).
func BinDir(prefix string) (string, error) {
	base := os.TempDir()
	if old, _ := filepath.Glob(filepath.Join(base, prefix+"*")); len(old) > 0 {
		for _, d := range old {
			pid, err := strconv.Atoi(strings.TrimPrefix(filepath.Base(d), prefix))
			if err != nil || !alive(pid) {
				os.RemoveAll(d)
			}
		}
	}
	dir := filepath.Join(base, prefix+strconv.Itoa(os.Getpid()))
	return dir, os.MkdirAll(dir, 0o755)
}

func alive(pid int) bool {
	return pid > 0 && syscall.Kill(pid, 0) == nil
}
