package e2e

import (
	"archive/tar"
	"bytes"
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/moby/moby/api/pkg/stdcopy"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/client"

	"skiff.dev/skiff/internal/testenv"
)

// TestDockerClientLibrary is the engine's second acceptance: a Go program
// using Docker's own client library builds an image, then creates,
// starts, waits for, reads the logs of and removes a container.
func TestDockerClientLibrary(t *testing.T) {
	e := testenv.StartEngine(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cli, err := client.New(client.WithHost(e.Host), client.WithAPIVersionNegotiation())
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()

	// The build context as a tar stream: Dockerfile + rootfs.tar.
	dir := busyboxContext(t, "FROM scratch\nADD rootfs.tar /\nENV GREETING=hello\n", nil)
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, name := range []string{"Dockerfile", "rootfs.tar"} {
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: int64(len(b))})
		tw.Write(b)
	}
	tw.Close()
	res, err := cli.ImageBuild(ctx, &buf, client.ImageBuildOptions{Tags: []string{"lib-test:1"}, Remove: true})
	if err != nil {
		t.Fatal(err)
	}
	progress, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if !strings.Contains(string(progress), `"aux":{"ID":"sha256:`) {
		t.Fatalf("build progress has no image ID:\n%s", progress)
	}

	created, err := cli.ContainerCreate(ctx, client.ContainerCreateOptions{
		Name: "lib",
		Config: &container.Config{
			Image: "lib-test:1",
			Cmd:   []string{"sh", "-c", `echo "$GREETING from $(hostname)"; echo oops >&2; exit 7`},
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	wait := cli.ContainerWait(ctx, created.ID, client.ContainerWaitOptions{Condition: container.WaitConditionNextExit})
	if _, err := cli.ContainerStart(ctx, created.ID, client.ContainerStartOptions{}); err != nil {
		t.Fatal(err)
	}
	select {
	case st := <-wait.Result:
		if st.StatusCode != 7 {
			t.Fatalf("exit status %d, want 7", st.StatusCode)
		}
	case err := <-wait.Error:
		t.Fatal(err)
	}
	logs, err := cli.ContainerLogs(ctx, created.ID, client.ContainerLogsOptions{ShowStdout: true, ShowStderr: true})
	if err != nil {
		t.Fatal(err)
	}
	var stdout, stderr bytes.Buffer
	if _, err := stdcopy.StdCopy(&stdout, &stderr, logs); err != nil {
		t.Fatal(err)
	}
	logs.Close()
	if stdout.String() != "hello from "+created.ID[:12]+"\n" || stderr.String() != "oops\n" {
		t.Fatalf("logs: stdout %q stderr %q", stdout.String(), stderr.String())
	}
	if _, err := cli.ContainerRemove(ctx, created.ID, client.ContainerRemoveOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := cli.ContainerInspect(ctx, created.ID, client.ContainerInspectOptions{}); err == nil || !strings.Contains(err.Error(), "No such container") {
		t.Fatalf("inspect after remove: %v", err)
	}
}
