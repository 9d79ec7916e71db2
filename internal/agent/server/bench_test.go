package server

import (
	"fmt"
	"io"
	"net/url"
	"os"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/remotecommand"

	"skiff.dev/skiff/internal/agent/podruntime"
	"skiff.dev/skiff/internal/runtime"
	"skiff.dev/skiff/internal/runtime/crilog"
)

// BenchmarkLogs reads a 10,000-line log over HTTPS (the whole of it, and
// its last 100 lines).
func BenchmarkLogs(b *testing.B) {
	dir := b.TempDir()
	var buf []byte
	for i := range 10000 {
		buf = crilog.AppendEntry(buf, crilog.Entry{Time: t0, Stream: "stdout", Content: fmt.Appendf(nil, "line %d of a log of some typical length, with a few words", i)})
	}
	if err := os.WriteFile(logPath(dir, "c1"), buf, 0o644); err != nil {
		b.Fatal(err)
	}
	pods := fakePods{"default/web": {
		ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "default", UID: "uid-1"},
		Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "c1"}}},
	}}
	rt := &fakeRuntime{containers: []podruntime.ContainerStatus{{ID: "id-c1", PodUID: "uid-1", Name: "c1", State: podruntime.StateExited, LogPath: logPath(dir, "c1")}}}
	ts := startServer(b, pods, rt, nil)
	for _, q := range []string{"", "tailLines=100"} {
		b.Run("query="+q, func(b *testing.B) {
			var n int64
			for b.Loop() {
				resp, err := ts.client.Get(ts.url + "/containerLogs/default/web/c1?" + q)
				if err != nil {
					b.Fatal(err)
				}
				n, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
			}
			b.SetBytes(n)
		})
	}
}

// BenchmarkExecSPDY is one exec round trip (upgrade, streams, status)
// over TLS, against a runtime that answers at once.
func BenchmarkExecSPDY(b *testing.B) {
	pods, rt := streamsFixture()
	rt.exec = func(string, []string, runtime.Streams, bool) (int, error) { return 0, nil }
	ts := startServer(b, pods, rt, nil)
	u, _ := url.Parse(ts.url + "/exec/default/web/c1?command=true&output=1")
	for b.Loop() {
		ex, err := remotecommand.NewSPDYExecutor(ts.restConfig, "POST", u)
		if err != nil {
			b.Fatal(err)
		}
		if err := ex.StreamWithContext(b.Context(), remotecommand.StreamOptions{Stdout: io.Discard}); err != nil {
			b.Fatal(err)
		}
	}
}
