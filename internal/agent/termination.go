package agent

import (
	"bytes"
	"context"
	"io"
	"os"
	"strings"

	corev1 "k8s.io/api/core/v1"

	"skiff.dev/skiff/internal/runtime/crilog"
)

// Limits on termination messages, as the kubelet's.
const (
	maxTerminationMessage = 4096 // bytes read from terminationMessagePath
	maxLogTailLines       = 80   // lines of FallbackToLogsOnError
	maxLogTailBytes       = 2048
)

// terminationMessage is an exited container's message: what it wrote to
// its terminationMessagePath, or with FallbackToLogsOnError and a failure
// and no message, the tail of its log. Messages are cached by container
// ID (an exited container's files do not change).
func (a *Agent) terminationMessage(w *podWorker, pod *corev1.Pod, c *corev1.Container, rec *ContainerStatus) string {
	if rec.ID == "" {
		return rec.Message // a failed start
	}
	if msg, ok := w.messages[rec.ID]; ok {
		return msg
	}
	msg := ""
	if rec.TerminationMessagePath != "" {
		msg = readLimited(rec.TerminationMessagePath, maxTerminationMessage)
	}
	if msg == "" && rec.ExitCode != 0 && c.TerminationMessagePolicy == corev1.TerminationMessageFallbackToLogsOnError {
		msg = logTail(rec.LogPath)
	}
	if msg == "" {
		msg = rec.Message
	}
	w.messages[rec.ID] = msg
	return msg
}

func readLimited(path string, n int64) string {
	f, err := os.Open(path)
	if err != nil {
		return ""
	}
	defer f.Close()
	b, _ := io.ReadAll(io.LimitReader(f, n))
	return string(b)
}

// logTail is the end of a container's CRI log: its last lines, at most
// maxLogTailBytes of them.
func logTail(path string) string {
	if path == "" {
		return ""
	}
	var b bytes.Buffer
	_ = crilog.ReadFile(context.Background(), path, crilog.ReadOptions{Tail: maxLogTailLines}, func(e crilog.Entry) error {
		b.Write(e.Content)
		if !e.Partial {
			b.WriteByte('\n')
		}
		return nil
	})
	s := b.String()
	if len(s) > maxLogTailBytes {
		s = s[len(s)-maxLogTailBytes:]
	}
	return strings.TrimSuffix(s, "\n")
}
