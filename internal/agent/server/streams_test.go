package server

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/websocket"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/portforward"
	"k8s.io/client-go/tools/remotecommand"
	"k8s.io/client-go/transport/spdy"
	"k8s.io/streaming/pkg/httpstream"
	utilexec "k8s.io/utils/exec"

	"skiff.dev/skiff/internal/agent/podruntime"
	"skiff.dev/skiff/internal/runtime"
)

// streamsFixture is a pod with a running container c1 (created with
// stdin) whose execs echo.
func streamsFixture() (fakePods, *fakeRuntime) {
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "default", UID: "uid-1"},
		Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "c1", Stdin: true, TTY: true}}},
	}
	rt := &fakeRuntime{
		containers: []podruntime.ContainerStatus{{ID: "id-c1", PodUID: "uid-1", Name: "c1", State: podruntime.StateRunning}},
		exec: func(id string, cmd []string, s runtime.Streams, tty bool) (int, error) {
			switch cmd[0] {
			case "echo":
				fmt.Fprintf(s.Stdout, "%s tty=%v\n", strings.Join(cmd[1:], " "), tty)
				if s.Stderr != nil {
					fmt.Fprintln(s.Stderr, "to stderr")
				}
				return 0, nil
			case "cat":
				_, err := io.Copy(s.Stdout, s.Stdin)
				return 0, err
			case "exit":
				return 3, nil
			}
			return 0, errors.New(`exec: "` + cmd[0] + `": executable file not found in $PATH`)
		},
	}
	return fakePods{"default/web": pod}, rt
}

func TestExec(t *testing.T) {
	pods, rt := streamsFixture()
	ts := startServer(t, pods, rt, nil)
	spdyExec := func(t *testing.T, query string) remotecommand.Executor {
		u, _ := url.Parse(ts.url + "/exec/default/web/c1?" + query)
		ex, err := remotecommand.NewSPDYExecutor(ts.restConfig, "POST", u)
		if err != nil {
			t.Fatal(err)
		}
		return ex
	}
	// kubectl's way: WebSocket (v5) first, SPDY when the upgrade fails.
	fallbackExec := func(t *testing.T, query string) remotecommand.Executor {
		ws, err := remotecommand.NewWebSocketExecutor(ts.restConfig, "GET", ts.url+"/exec/default/web/c1?"+query)
		if err != nil {
			t.Fatal(err)
		}
		ex, err := remotecommand.NewFallbackExecutor(ws, spdyExec(t, query), httpstream.IsUpgradeFailure)
		if err != nil {
			t.Fatal(err)
		}
		return ex
	}
	tests := []struct {
		name       string
		query      string
		stdin      string
		tty        bool
		wantOut    string
		wantErrOut string
		wantErr    string
		wantCode   int
		transport  func(*testing.T, string) remotecommand.Executor
	}{
		{name: "output", query: "command=echo&command=hi&output=1&error=1", wantOut: "hi tty=false\n", wantErrOut: "to stderr\n"},
		{name: "stdin", query: "command=cat&input=1&output=1", stdin: "some input\n", wantOut: "some input\n"},
		{name: "tty", query: "command=echo&command=hi&output=1&tty=1", tty: true, wantOut: "hi tty=true\n"},
		{name: "exit code", query: "command=exit&output=1", wantCode: 3},
		{name: "missing executable", query: "command=nope&output=1", wantErr: "executable file not found"},
		{name: "websocket first, then spdy", query: "command=echo&command=hi&output=1&error=1", wantOut: "hi tty=false\n", wantErrOut: "to stderr\n", transport: fallbackExec},
		{name: "exit code after the fallback", query: "command=exit&output=1", wantCode: 3, transport: fallbackExec},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			newExec := tc.transport
			if newExec == nil {
				newExec = spdyExec
			}
			var out, errOut bytes.Buffer
			opts := remotecommand.StreamOptions{Stdout: &out, Tty: tc.tty}
			if strings.Contains(tc.query, "error=1") {
				opts.Stderr = &errOut
			}
			if tc.stdin != "" {
				opts.Stdin = strings.NewReader(tc.stdin)
			}
			err := newExec(t, tc.query).StreamWithContext(t.Context(), opts)
			var exit utilexec.ExitError
			switch {
			case tc.wantCode != 0:
				if !errors.As(err, &exit) || exit.ExitStatus() != tc.wantCode {
					t.Fatalf("err %v, want exit code %d", err, tc.wantCode)
				}
			case tc.wantErr != "":
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err %v, want %q", err, tc.wantErr)
				}
			case err != nil:
				t.Fatal(err)
			}
			if out.String() != tc.wantOut || errOut.String() != tc.wantErrOut {
				t.Errorf("output %q and %q, want %q and %q", out.String(), errOut.String(), tc.wantOut, tc.wantErrOut)
			}
		})
	}

	// Alone, the WebSocket attempt fails as an upgrade failure: what
	// makes kubectl fall back.
	ws, err := remotecommand.NewWebSocketExecutor(ts.restConfig, "GET", ts.url+"/exec/default/web/c1?command=echo&output=1")
	if err != nil {
		t.Fatal(err)
	}
	if err := ws.StreamWithContext(t.Context(), remotecommand.StreamOptions{Stdout: io.Discard}); !httpstream.IsUpgradeFailure(err) || !strings.Contains(err.Error(), "are not served here") {
		t.Errorf("websocket v5: %v, want an upgrade failure saying v5 is not served", err)
	}
}

// sizes is a terminal size queue with one size.
type sizes struct{ sent bool }

func (s *sizes) Next() *remotecommand.TerminalSize {
	if s.sent {
		time.Sleep(time.Hour)
		return nil
	}
	s.sent = true
	return &remotecommand.TerminalSize{Width: 80, Height: 24}
}

func TestAttach(t *testing.T) {
	pods, rt := streamsFixture()
	rt.attach = func(id string, s runtime.Streams) error {
		fmt.Fprintln(s.Stdout, "attached to "+id)
		line, err := bufio.NewReader(s.Stdin).ReadString('\n')
		if err != nil {
			return err
		}
		fmt.Fprint(s.Stdout, "got "+line)
		time.Sleep(100 * time.Millisecond) // the resize arrives
		return nil
	}
	ts := startServer(t, pods, rt, nil)
	u, _ := url.Parse(ts.url + "/attach/default/web/c1?input=1&output=1&tty=1")
	ex, err := remotecommand.NewSPDYExecutor(ts.restConfig, "POST", u)
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	err = ex.StreamWithContext(t.Context(), remotecommand.StreamOptions{
		Stdin: strings.NewReader("ping\n"), Stdout: &out, Tty: true, TerminalSizeQueue: &sizes{}})
	if err != nil {
		t.Fatal(err)
	}
	if out.String() != "attached to id-c1\ngot ping\n" {
		t.Errorf("output %q", out.String())
	}
	rt.mu.Lock()
	defer rt.mu.Unlock()
	if len(rt.resizes) != 1 || rt.resizes[0] != "id-c1 80x24" {
		t.Errorf("resizes %q", rt.resizes)
	}
}

func TestPortForward(t *testing.T) {
	echo, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { echo.Close() })
	go func() {
		for {
			c, err := echo.Accept()
			if err != nil {
				return
			}
			go func() { defer c.Close(); io.Copy(c, c) }()
		}
	}()
	pods, rt := streamsFixture()
	rt.forwardTo = echo.Addr().String()
	ts := startServer(t, pods, rt, nil)

	transport, upgrader, err := spdy.RoundTripperFor(ts.restConfig)
	if err != nil {
		t.Fatal(err)
	}
	u, _ := url.Parse(ts.url + "/portForward/default/web")
	dialer := spdy.NewDialer(upgrader, &http.Client{Transport: transport}, "POST", u)
	stop, ready := make(chan struct{}), make(chan struct{})
	fw, err := portforward.NewOnAddresses(dialer, []string{"127.0.0.1"}, []string{"0:80"}, stop, ready, io.Discard, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- fw.ForwardPorts() }()
	defer func() { close(stop); <-done }()
	select {
	case <-ready:
	case err := <-done:
		t.Fatalf("forwarding: %v", err)
	case <-time.After(10 * time.Second):
		t.Fatal("not ready in 10s")
	}
	ports, err := fw.GetPorts()
	if err != nil {
		t.Fatal(err)
	}
	for i := range 2 { // two connections over one session
		c, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", ports[0].Local))
		if err != nil {
			t.Fatal(err)
		}
		msg := fmt.Sprintf("ping %d\n", i)
		if _, err := io.WriteString(c, msg); err != nil {
			t.Fatal(err)
		}
		c.SetReadDeadline(time.Now().Add(10 * time.Second))
		got, err := bufio.NewReader(c).ReadString('\n')
		c.Close()
		if err != nil || got != msg {
			t.Fatalf("echo %q, %v; want %q", got, err, msg)
		}
	}
}

// TestExecWebSocketV4 runs an exec over the WebSocket protocol
// cri-streaming serves (v4.channel.k8s.io: one byte of channel, then the
// data; the status on channel 3).
func TestExecWebSocketV4(t *testing.T) {
	pods, rt := streamsFixture()
	ts := startServer(t, pods, rt, nil)
	tr := ts.client.Transport.(*http.Transport)
	for _, tc := range []struct {
		query, wantOut, wantStatus string
	}{
		{"command=echo&command=hi&output=1", "hi tty=false\n", `"status":"Success"`},
		{"command=exit&output=1", "", `"reason":"NonZeroExitCode","details":{"causes":[{"reason":"ExitCode","message":"3"}]}`},
	} {
		cfg, err := websocket.NewConfig("wss"+strings.TrimPrefix(ts.url, "https")+"/exec/default/web/c1?"+tc.query, ts.url)
		if err != nil {
			t.Fatal(err)
		}
		cfg.TlsConfig, cfg.Protocol = tr.TLSClientConfig, []string{"v4.channel.k8s.io"}
		conn, err := websocket.DialConfig(cfg)
		if err != nil {
			t.Fatalf("dial: %v", err)
		}
		if p := conn.Config().Protocol; len(p) != 1 || p[0] != "v4.channel.k8s.io" {
			t.Errorf("subprotocol %q", p)
		}
		var out, status string
		for status == "" {
			var msg []byte
			if err := websocket.Message.Receive(conn, &msg); err != nil {
				t.Fatalf("%s: read: %v (stdout %q)", tc.query, err, out)
			}
			if len(msg) == 0 {
				continue
			}
			switch msg[0] {
			case 1:
				out += string(msg[1:])
			case 3:
				status = string(msg[1:])
			}
		}
		conn.Close()
		if out != tc.wantOut || !strings.Contains(status, tc.wantStatus) {
			t.Errorf("%s: stdout %q, status %s", tc.query, out, status)
		}
	}
}
