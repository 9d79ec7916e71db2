package agent

// UnmountAll unmounts what the agent mounted under dir (tests' cleanup).
func UnmountAll(dir string) { _ = unmountUnder(dir) }
