package guide

import (
	"reflect"
	"strings"
	"testing"
	"time"
)

const sample = "# Title\n\n" +
	"Some prose.\n\n" +
	"<!-- guide: retry=30s -->\n" +
	"```console\n" +
	"$ kubectl get pods -o wide\n" +
	"NAME        READY   STATUS    IP\n" +
	"hello-<id>  1/1     Running   10.244.0.<n>\n" +
	"$ curl -s localhost:8080 \\\n" +
	"    -H 'X: y'\n" +
	"Hello from hello v1.0 on pod ...\n" +
	"```\n\n" +
	"<!-- guide: skip -->\n" +
	"```console\n" +
	"$ kubectl get hpa -w\n" +
	"```\n\n" +
	"```sh\n$ not a step\n```\n"

func TestParse(t *testing.T) {
	steps, err := Parse(strings.NewReader(sample))
	if err != nil {
		t.Fatal(err)
	}
	want := []Step{
		{Line: 6, Retry: 30 * time.Second, Commands: []Command{
			{Text: "kubectl get pods -o wide", Expect: []string{"NAME        READY   STATUS    IP", "hello-<id>  1/1     Running   10.244.0.<n>"}},
			{Text: "curl -s localhost:8080 \\\n    -H 'X: y'", Expect: []string{"Hello from hello v1.0 on pod ..."}},
		}},
		{Line: 16, Skip: true, Commands: []Command{{Text: "kubectl get hpa -w"}}},
	}
	if !reflect.DeepEqual(steps, want) {
		t.Fatalf("steps:\n%#v\nwant:\n%#v", steps, want)
	}
}

func TestParseErrors(t *testing.T) {
	tests := []struct{ name, in, want string }{
		{"unclosed", "```console\n$ ls\n", "never closed"},
		{"no command", "```console\n```\n", "without a command"},
		{"output first", "```console\nfoo\n$ ls\n```\n", "before the block's first command"},
		{"bad directive", "<!-- guide: frobnicate -->\n```console\n$ ls\n```\n", "unknown guide directive"},
		{"bad retry", "<!-- guide: retry=soon -->\n```console\n$ ls\n```\n", "positive duration"},
		{"dangling continuation", "```console\n$ ls \\\n```\n", "continued command"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse(strings.NewReader(tt.in))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want it to mention %q", err, tt.want)
			}
		})
	}
}

func TestDirectivesApplyOnlyToTheNextBlock(t *testing.T) {
	steps, err := Parse(strings.NewReader("<!-- guide: skip -->\n\nprose in between\n```console\n$ ls\n```\n"))
	if err != nil {
		t.Fatal(err)
	}
	if steps[0].Skip {
		t.Fatal("a directive separated from the block by prose applied to it")
	}
}

func TestMatch(t *testing.T) {
	out := "NAME                     READY   STATUS    RESTARTS   AGE   IP\n" +
		"hello-6c9f7d7b9c-4xk2p   1/1     Running   0          12s   10.244.0.7\n" +
		"hello-6c9f7d7b9c-9vq8d   1/1     Running   0          12s   10.244.0.8\n"
	tests := []struct {
		name   string
		expect []string
		ok     bool
	}{
		{"placeholders and spacing", []string{"NAME READY STATUS ...", "hello-<id> 1/1 Running 0 <age> 10.244.0.<n>"}, true},
		{"in order, not adjacent", []string{"NAME ...", "hello-... 10.244.0.8"}, true},
		{"order matters", []string{"hello-... 10.244.0.8", "hello-... 10.244.0.7"}, false},
		{"ellipsis line", []string{"...", "hello-... 10.244.0.7"}, true},
		{"literal regexp characters", []string{"hello-6c9f7d7b9c-4xk2p ... 10.244.0.7"}, true},
		{"whole line", []string{"hello-<id> 1/1 Running"}, false},
		{"placeholder is one word", []string{"<name> 1/1 Running 0 12s 10.244.0.7"}, true},
		{"missing", []string{"Pending"}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := Match(tt.expect, out)
			if (err == nil) != tt.ok {
				t.Fatalf("Match = %v, want ok=%v", err, tt.ok)
			}
		})
	}
}

func FuzzParse(f *testing.F) {
	f.Add(sample)
	f.Add("```console\n$ a \\\nb\nout <x> ...\n```")
	f.Fuzz(func(t *testing.T, in string) {
		steps, err := Parse(strings.NewReader(in))
		if err != nil {
			return
		}
		for _, s := range steps {
			for _, c := range s.Commands {
				_ = Match(c.Expect, in)
			}
		}
	})
}
