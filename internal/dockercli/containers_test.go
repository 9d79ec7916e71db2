package dockercli

import (
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/network"
)

// seed puts a running "web" and an exited "job" container in f.
func seed(f *fakeEngine) (web, job *fakeContainer) {
	web = f.addContainer("web", "nginx", []string{"nginx", "-g", "daemon off;"}, container.StateRunning, time.Now().Add(-3*time.Hour))
	web.status = "Up 3 hours"
	web.host.PortBindings = network.PortMap{
		network.MustParsePort("80/tcp"):  {{HostIP: netip.MustParseAddr("0.0.0.0"), HostPort: "8080"}},
		network.MustParsePort("443/tcp"): {{HostIP: netip.MustParseAddr("0.0.0.0"), HostPort: "443"}},
	}
	job = f.addContainer("job", "busybox", []string{"sh", "-c", "echo a long command line here"}, container.StateExited, time.Now().Add(-50*time.Hour))
	job.status = "Exited (0) 2 days ago"
	job.logs = []logLine{{1, "line 1\n"}, {2, "line 2\n"}, {1, "line 3\n"}, {1, "line 4\n"}}
	return web, job
}

func TestPs(t *testing.T) {
	f := newFakeEngine(t)
	web, job := seed(f)
	tests := []struct {
		name  string
		args  []string
		want  string
		query string // in the list request
	}{
		{name: "running", args: []string{"ps"}, want: "" +
			"CONTAINER ID   IMAGE     COMMAND                  CREATED       STATUS       PORTS                                        NAMES\n" +
			web.id[:12] + "   nginx     \"nginx -g daemon off;\"   3 hours ago   Up 3 hours   0.0.0.0:443->443/tcp, 0.0.0.0:8080->80/tcp   web\n"},
		{name: "all", args: []string{"ps", "-a"}, query: "all=1", want: "" +
			"CONTAINER ID   IMAGE     COMMAND                  CREATED       STATUS                  PORTS                                        NAMES\n" +
			job.id[:12] + "   busybox   \"sh -c echo a long c…\"   2 days ago    Exited (0) 2 days ago                                                job\n" +
			web.id[:12] + "   nginx     \"nginx -g daemon off;\"   3 hours ago   Up 3 hours              0.0.0.0:443->443/tcp, 0.0.0.0:8080->80/tcp   web\n"},
		{name: "quiet", args: []string{"ps", "-aq"}, want: job.id[:12] + "\n" + web.id[:12] + "\n"},
		{name: "quiet no-trunc", args: []string{"ps", "-q", "--no-trunc"}, want: web.id + "\n"},
		{name: "last", args: []string{"ps", "-n", "1", "--format", "{{.Names}}"}, query: "limit=1", want: "job\n"},
		{name: "latest", args: []string{"ps", "-l", "--format", "{{.Names}}"}, query: "limit=1", want: "job\n"},
		{name: "template", args: []string{"ps", "-a", "--format", "{{.ID}} {{.Names}} {{.State}}"},
			want: job.id[:12] + " job exited\n" + web.id[:12] + " web running\n"},
		{name: "table template", args: []string{"ps", "--format", `table {{.Names}}\t{{.Image}}`},
			want: "NAMES     IMAGE\nweb       nginx\n"},
		{name: "json", args: []string{"ps", "--format", "json"}, want: `"Names":"web"`},
		{name: "filter", args: []string{"ps", "-f", "name=web", "-f", "status=running"}, query: "filters=", want: "web\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := len(f.requestLog())
			r := runCLI(t, f.host(), "", tt.args...)
			if r.err != nil {
				t.Fatalf("%v: %v", tt.args, r.err)
			}
			if strings.HasPrefix(tt.want, `"`) || tt.name == "filter" {
				if !strings.Contains(r.out, strings.TrimSuffix(tt.want, "\n")) {
					t.Errorf("output\n%s\nlacks %s", r.out, tt.want)
				}
			} else if r.out != tt.want {
				t.Errorf("output\n%s\nwant\n%s", r.out, tt.want)
			}
			if tt.query != "" {
				list := f.requestLog()[before:]
				if !slices.ContainsFunc(list, func(s string) bool { return strings.Contains(s, "/containers/json?") && strings.Contains(s, tt.query) }) {
					t.Errorf("no list request with %q in %v", tt.query, list)
				}
			}
		})
	}
}

func TestLogsTail(t *testing.T) {
	f := newFakeEngine(t)
	seed(f)
	r := runCLI(t, f.host(), "", "logs", "--tail", "2", "job")
	if r.err != nil {
		t.Fatal(r.err)
	}
	if r.out != "line 3\nline 4\n" || r.errOut != "" {
		t.Errorf("stdout %q stderr %q, want the last two lines", r.out, r.errOut)
	}
	r = runCLI(t, f.host(), "", "logs", "job")
	if r.out != "line 1\nline 3\nline 4\n" || r.errOut != "line 2\n" {
		t.Errorf("stdout %q stderr %q: streams not split", r.out, r.errOut)
	}
	if !slices.ContainsFunc(f.requestLog(), func(s string) bool { return strings.Contains(s, "/logs?") && strings.Contains(s, "tail=2") }) {
		t.Errorf("tail not sent: %v", f.requestLog())
	}
	r = runCLI(t, f.host(), "", "logs", "-f", "-t", "--since", "2026-01-02T03:04:05Z", "--until", "2030-01-01T00:00:00Z", "job")
	if r.err != nil {
		t.Fatal(r.err)
	}
	last := f.requestLog()[len(f.requestLog())-1]
	for _, want := range []string{"follow=1", "timestamps=1", "since=1767323045.000000000", "until=1893456000.000000000"} {
		if !strings.Contains(last, want) {
			t.Errorf("logs request %s lacks %s", last, want)
		}
	}
	r = runCLI(t, f.host(), "", "logs", "ghost")
	if r.code != 1 || r.err.Error() != "Error response from daemon: No such container: ghost" {
		t.Errorf("logs of a missing container: %d %v", r.code, r.err)
	}
}

func TestRmRunningContainer(t *testing.T) {
	f := newFakeEngine(t)
	seed(f)
	r := runCLI(t, f.host(), "", "rm", "web")
	want := `Error response from daemon: cannot remove container "/web": container is running: stop the container before removing or force remove`
	if r.code != 1 || r.err == nil || r.err.Error() != want {
		t.Fatalf("rm of a running container: code %d, err %q, want 1 and %q", r.code, r.err, want)
	}
	if r.out != "" {
		t.Errorf("stdout %q", r.out)
	}
	r = runCLI(t, f.host(), "", "rm", "-f", "web", "job")
	if r.err != nil || r.out != "web\njob\n" {
		t.Fatalf("rm -f: %v, stdout %q", r.err, r.out)
	}
	r = runCLI(t, f.host(), "", "rm", "-f", "ghost")
	if r.err != nil || !strings.Contains(r.errOut, "No such container: ghost") {
		t.Errorf("rm -f of a missing container: %v, stderr %q", r.err, r.errOut)
	}
	r = runCLI(t, f.host(), "", "rm", "ghost", "other")
	if r.code != 1 || r.err.Error() != "Error response from daemon: No such container: ghost\nError response from daemon: No such container: other" {
		t.Errorf("rm of missing containers: %d %q", r.code, r.err)
	}
}

func TestLifecycleVerbs(t *testing.T) {
	f := newFakeEngine(t)
	web, job := seed(f)
	steps := []struct {
		args      []string
		code      int
		out, errs string
	}{
		{args: []string{"stop", "web"}, out: "web\n"},
		{args: []string{"start", "web", "job"}, out: "web\njob\n"},
		{args: []string{"restart", "-t", "1", "web"}, out: "web\n"},
		{args: []string{"kill", "-s", "TERM", "web"}, out: "web\n"},
		{args: []string{"kill", "web"}, code: 1, errs: "is not running"},
		{args: []string{"start", "ghost"}, code: 1, errs: "Error: failed to start containers: ghost"},
		{args: []string{"wait", "web"}, out: "137\n"},
		{args: []string{"rename", "job", "batch"}},
		{args: []string{"top", "batch"}, out: "PID                 CMD\n1                   sh -c echo a long command line here\n"},
		{args: []string{"stats", "--no-stream", "batch"}, out: "CONTAINER ID   NAME      CPU %     MEM USAGE / LIMIT   MEM %     NET I/O   BLOCK I/O   PIDS\n" +
			job.id[:12] + "   batch     40.00%    64MiB / 256MiB      25.00%    0B / 0B   0B / 0B     3\n"},
		{args: []string{"stats", "--no-stream", "--format", "{{.Name}} {{.CPUPerc}}", "ghost"}, code: 1, errs: "No such container: ghost"},
	}
	for _, s := range steps {
		r := runCLI(t, f.host(), "", s.args...)
		if r.code != s.code || r.out != s.out && s.out != "" || s.errs != "" && (r.err == nil || !strings.Contains(r.err.Error(), s.errs)) {
			t.Errorf("%v: code %d out %q err %v; want %d %q %q", s.args, r.code, r.out, r.err, s.code, s.out, s.errs)
		}
	}
	_ = web
	reqs := strings.Join(f.requestLog(), "\n")
	for _, want := range []string{"POST /containers/web/restart?t=1", "POST /containers/web/kill?signal=TERM", "POST /containers/job/rename?name=batch"} {
		if !strings.Contains(reqs, want) {
			t.Errorf("no %s in\n%s", want, reqs)
		}
	}
}

func TestStartAttachedExitsWithStatus(t *testing.T) {
	f := newFakeEngine(t)
	f.mu.Lock()
	c := f.newContainerLocked("once", container.Config{Image: "busybox", Cmd: []string{"fail", "2"}}, container.HostConfig{})
	f.mu.Unlock()
	r := runCLI(t, f.host(), "", "start", "-a", c.name)
	if r.code != 2 || r.errOut != "failing\n" {
		t.Errorf("start -a: code %d stderr %q, want 2 and the output", r.code, r.errOut)
	}
}

func TestAttachStoppedContainer(t *testing.T) {
	f := newFakeEngine(t)
	seed(f)
	r := runCLI(t, f.host(), "", "attach", "job")
	if r.code != 1 || r.err.Error() != "You cannot attach to a stopped container, start it first" {
		t.Errorf("attach to an exited container: %d %v", r.code, r.err)
	}
}

func TestExec(t *testing.T) {
	f := newFakeEngine(t)
	seed(f)
	r := runCLI(t, f.host(), "", "exec", "web", "echo", "inside")
	if r.err != nil || r.out != "inside\n" {
		t.Errorf("exec echo: %v, stdout %q", r.err, r.out)
	}
	r = runCLI(t, f.host(), "", "exec", "web", "fail", "5")
	if r.code != 5 || r.errOut != "failing\n" {
		t.Errorf("exec fail 5: code %d stderr %q", r.code, r.errOut)
	}
	r = runCLI(t, f.host(), "", "exec", "ghost", "true")
	if r.code != 1 || !strings.Contains(r.err.Error(), "No such container: ghost") {
		t.Errorf("exec in a missing container: %d %v", r.code, r.err)
	}
	for _, req := range f.requestLog() {
		if strings.Contains(req, "ghost/exec") {
			t.Errorf("exec created in a missing container: %s", req)
		}
	}
}

func TestInspect(t *testing.T) {
	f := newFakeEngine(t)
	web, _ := seed(f)
	f.networks = append(f.networks, network.Summary{Network: network.Network{Name: "appnet", ID: "n1", Driver: "bridge"}})
	tests := []struct {
		name string
		args []string
		code int
		out  string // exact, or a fragment when it starts with ~
	}{
		{name: "container template", args: []string{"inspect", "-f", "{{.Name}} {{.State.Running}}", "web"}, out: "/web true\n"},
		{name: "raw field", args: []string{"inspect", "-f", "{{.Id}}", "web"}, out: web.id + "\n"},
		{name: "image", args: []string{"inspect", "-f", "{{index .RepoTags 0}}", "busybox"}, out: "busybox\n"},
		{name: "network", args: []string{"inspect", "-f", "{{.Driver}}", "appnet"}, out: "bridge\n"},
		{name: "type", args: []string{"inspect", "--type", "image", "web"}, code: 1, out: "[]\n"},
		{name: "json", args: []string{"inspect", "web"}, out: "~[\n    {\n        \"Id\": \"" + web.id},
		{name: "missing", args: []string{"inspect", "ghost"}, code: 1, out: "[]\n"},
		{name: "group", args: []string{"container", "inspect", "-f", "{{.Config.Image}}", "web"}, out: "nginx\n"},
		{name: "bad template", args: []string{"inspect", "-f", "{{.Name", "web"}, code: 64},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := runCLI(t, f.host(), "", tt.args...)
			if r.code != tt.code {
				t.Fatalf("code %d (err %v), want %d", r.code, r.err, tt.code)
			}
			if frag, ok := strings.CutPrefix(tt.out, "~"); ok {
				if !strings.HasPrefix(r.out, frag) {
					t.Errorf("output %q does not start with %q", r.out, frag)
				}
			} else if tt.out != "" && r.out != tt.out {
				t.Errorf("output %q, want %q", r.out, tt.out)
			}
		})
	}
	r := runCLI(t, f.host(), "", "inspect", "ghost")
	if r.err.Error() != "Error: No such object: ghost" {
		t.Errorf("inspect of nothing: %q", r.err)
	}
}

func TestContainerGroupAndPrune(t *testing.T) {
	f := newFakeEngine(t)
	_, job := seed(f)
	r := runCLI(t, f.host(), "", "container", "ls", "-q")
	if r.err != nil || strings.Count(r.out, "\n") != 1 {
		t.Errorf("container ls: %v %q", r.err, r.out)
	}
	r = runCLI(t, f.host(), "n\n", "container", "prune")
	if r.code != 0 || !strings.HasPrefix(r.out, "WARNING! This will remove all stopped containers.\nAre you sure you want to continue? [y/N] ") {
		t.Errorf("declined prune: %d %v %q", r.code, r.err, r.out)
	}
	if slices.ContainsFunc(f.requestLog(), func(s string) bool { return strings.Contains(s, "prune") }) {
		t.Error("declined prune reached the engine")
	}
	r = runCLI(t, f.host(), "", "container", "prune", "-f")
	if r.err != nil || r.out != "Deleted Containers:\n"+job.id+"\n\nTotal reclaimed space: 0B\n" {
		t.Errorf("prune -f: %v %q", r.err, r.out)
	}
}

func TestCommitAndExport(t *testing.T) {
	f := newFakeEngine(t)
	seed(f)
	r := runCLI(t, f.host(), "", "commit", "-a", "Ann", "-m", "snapshot", "-c", "CMD [\"sh\"]", "--pause=false", "web", "snap:v1")
	if r.err != nil || r.out != "sha256:"+strings.Repeat("cd", 32)+"\n" {
		t.Fatalf("commit: %v %q", r.err, r.out)
	}
	reqs := strings.Join(f.requestLog(), "\n")
	for _, want := range []string{"author=Ann", "comment=snapshot", "changes=CMD+%5B%22sh%22%5D", "pause=0", "repo=docker.io%2Flibrary%2Fsnap", "tag=v1"} {
		if !strings.Contains(reqs, want) {
			t.Errorf("commit request lacks %s:\n%s", want, reqs)
		}
	}
	out := t.TempDir() + "/web.tar"
	r = runCLI(t, f.host(), "", "export", "-o", out, "web")
	if r.err != nil {
		t.Fatalf("export: %v", r.err)
	}
	data, err := os.ReadFile(out)
	if err != nil || string(data) != "tar of web" {
		t.Errorf("exported %q, %v", data, err)
	}
	r = runCLI(t, f.host(), "", "export", "web")
	if r.err != nil || r.out != "tar of web" {
		t.Errorf("export to stdout: %v %q", r.err, r.out)
	}
	r = runCLI(t, f.host(), "", "export", "-o", t.TempDir()+"/x.tar", "ghost")
	if r.code != 1 || !strings.Contains(r.err.Error(), "No such container: ghost") {
		t.Errorf("export of a missing container: %d %v", r.code, r.err)
	}
	entries, _ := os.ReadDir(filepath.Dir(out))
	if len(entries) != 1 {
		t.Errorf("export left temporary files: %v", entries)
	}
}

func TestExecDetachedAndInteractive(t *testing.T) {
	f := newFakeEngine(t)
	seed(f)
	r := runCLI(t, f.host(), "", "exec", "-d", "-u", "root", "-w", "/tmp", "-e", "A=1", "web", "echo", "x")
	if r.err != nil || r.out != "" {
		t.Errorf("exec -d: %v %q", r.err, r.out)
	}
	r = runCLI(t, f.host(), "in", "exec", "-i", "web", "echo", "y")
	if r.err != nil || r.out != "y\n" {
		t.Errorf("exec -i: %v %q", r.err, r.out)
	}
	r = runCLI(t, f.host(), "", "exec", "-it", "web", "sh")
	if r.code != 1 || r.err.Error() != "the input device is not a TTY" {
		t.Errorf("exec -it without a terminal: %d %v", r.code, r.err)
	}
}

func TestRenameErrors(t *testing.T) {
	f := newFakeEngine(t)
	r := runCLI(t, f.host(), "", "rename", "ghost", "x")
	if r.code != 1 || r.err.Error() != "Error: failed to rename container named ghost" || !strings.Contains(r.errOut, "No such container: ghost") {
		t.Errorf("rename of a missing container: %d %v %q", r.code, r.err, r.errOut)
	}
	r = runCLI(t, f.host(), "", "rename", " ", "x")
	if r.code != 1 || r.err.Error() != "Error: Neither old nor new names may be empty" {
		t.Errorf("rename to nothing: %d %v", r.code, r.err)
	}
}
