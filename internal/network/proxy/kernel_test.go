package proxy

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"k8s.io/apimachinery/pkg/types"

	"skiff.dev/skiff/internal/network/netns"
)

// scratchNetNS is a fresh network namespace for one test.
func scratchNetNS(t testing.TB) string {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root: creates network namespaces and nftables tables")
	}
	p := filepath.Join(t.TempDir(), "ns")
	if err := netns.Create(p); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = netns.Delete(p) })
	return p
}

// openKernel is a kernel writer for the table in the namespace at path.
func openKernel(t testing.TB, path, table string) *kernel {
	t.Helper()
	f, err := netns.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	k := newKernel(table, int(f.Fd()))
	t.Cleanup(k.close)
	return k
}

// nft runs the nft command in the namespace at path.
func nft(t testing.TB, path string, args ...string) string {
	t.Helper()
	var out []byte
	err := netns.Do(path, func() error {
		var err error
		out, err = exec.Command("nft", args...).CombinedOutput()
		return err
	})
	if err != nil {
		t.Fatalf("nft %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

func requireNft(t testing.TB) {
	t.Helper()
	if _, err := exec.LookPath("nft"); err != nil {
		t.Skip("needs the nft command to read the table back")
	}
}

// normalizeNft turns nft's listing into render's spelling where the two
// differ only in form.
func normalizeNft(s string) string {
	for _, r := range []struct{ re, to string }{
		{`0x00004000`, `0x4000`},
		{`0x00000000`, `0`},
		{`\n\t\tsize 65535`, ``},
		{`(?m)^(\t\t)reject with tcp reset$`, `${1}meta l4proto tcp reject with tcp reset`},
		{`priority -110;`, `priority dstnat - 10;`},
		{`priority -90;`, `priority dstnat + 10;`},
		{`priority -100;`, `priority dstnat;`},
		{`priority 100;`, `priority srcnat;`},
	} {
		s = regexp.MustCompile(r.re).ReplaceAllString(s, r.to)
	}
	// Timeouts: nft prints "10m", "3h".
	s = regexp.MustCompile(`timeout ([0-9hms]+) }`).ReplaceAllStringFunc(s, func(m string) string {
		d, err := time.ParseDuration(strings.TrimSuffix(strings.TrimPrefix(m, "timeout "), " }"))
		if err != nil {
			return m
		}
		return fmt.Sprintf("timeout %ds }", int(d.Seconds()))
	})
	// Spread map keys are marks to nft, which it prints in hex.
	s = regexp.MustCompile(`0x([0-9a-f]{8}) : goto`).ReplaceAllStringFunc(s, func(m string) string {
		n, _ := strconv.ParseUint(m[2:10], 16, 32)
		return fmt.Sprintf("%d : goto", n)
	})
	// Set elements: nft lists them on one line.
	s = regexp.MustCompile(`(?s)elements = \{ (.*?) \}\n`).ReplaceAllStringFunc(s, func(m string) string {
		body := strings.TrimSuffix(strings.TrimPrefix(m, "elements = { "), " }\n")
		var b strings.Builder
		b.WriteString("elements = {\n")
		for _, e := range strings.Split(body, ",") {
			if e = strings.TrimSpace(e); e != "" {
				b.WriteString("\t\t\t" + e + ",\n")
			}
		}
		b.WriteString("\t\t}\n")
		return b.String()
	})
	return s
}

// TestKernelTakesGolden writes each golden table (fixed part included)
// into a fresh namespace and reads it back with nft: the kernel takes
// what render shows, and holds the same rules.
func TestKernelTakesGolden(t *testing.T) {
	requireNft(t)
	inputs, _ := filepath.Glob("testdata/*.yaml")
	for _, in := range inputs {
		name := strings.TrimSuffix(filepath.Base(in), ".yaml")
		t.Run(name, func(t *testing.T) {
			ns := scratchNetNS(t)
			k := openKernel(t, ns, DefaultTable)
			cfg := goldenConfig()
			services := loadObjects(t, in).translateAll(cfg)
			if err := k.apply(full(cfg, services, nil, nil, time.Now())); err != nil {
				t.Fatalf("apply: %v", err)
			}
			var want bytes.Buffer
			render(&want, cfg, services, true)
			got := normalizeNft(nft(t, ns, "list", "table", "ip", DefaultTable))
			if d := cmp.Diff(comparable(want.String()), comparable(got)); d != "" {
				t.Errorf("kernel table differs from render (-render +kernel):\n%s", d)
			}
		})
	}
}

// comparable sorts each block's lines (nft lists sets and chains in
// creation order, elements in its own).
func comparable(s string) string {
	// Without the table's own first and last lines, so that they fall in
	// no block.
	s = strings.TrimSpace(s)
	if i := strings.IndexByte(s, '\n'); i >= 0 && strings.HasPrefix(s, "table ") {
		s = s[i+1:]
	}
	s = strings.TrimSuffix(s, "}")
	var blocks []string
	for _, b := range strings.Split(s, "\n\n") {
		lines := strings.Split(strings.TrimSpace(b), "\n")
		for i := range lines {
			lines[i] = strings.TrimSuffix(strings.TrimSpace(lines[i]), ",")
		}
		slices.Sort(lines)
		blocks = append(blocks, strings.Join(lines, "\n"))
	}
	slices.Sort(blocks)
	return strings.Join(blocks, "\n\n")
}

// TestKernelIncremental applies each update case to a table a full sync
// wrote: once the stale chains are deleted the kernel holds exactly what a
// full sync of the new state renders. Then a full sync over it (a restart)
// leaves it as it is.
func TestKernelIncremental(t *testing.T) {
	requireNft(t)
	for _, tc := range updateCases {
		t.Run(tc.name, func(t *testing.T) {
			ns := scratchNetNS(t)
			k := openKernel(t, ns, DefaultTable)
			cfg := goldenConfig()
			o := world(t, "clusterip", "affinity", "nodeport-local", "shared-external-ip")
			first := full(cfg, o.translateAll(cfg), nil, nil, time.Now())
			if err := k.apply(first); err != nil {
				t.Fatalf("full: %v", err)
			}
			st := first.next
			tc.change(&o)
			after := o.translateAll(cfg)
			pl := st.update(map[types.NamespacedName]*serviceRules{tc.service: after[tc.service]}, time.Now())
			if err := k.apply(pl); err != nil {
				t.Fatalf("update: %v\n%s", err, pl)
			}
			st.commit(pl)
			if due := st.dueStale(time.Now().Add(time.Second)); len(due) > 0 {
				if err := k.deleteChains(due); err != nil {
					t.Fatalf("delete stale chains: %v", err)
				}
			}
			var want bytes.Buffer
			render(&want, cfg, after, true)
			got := normalizeNft(nft(t, ns, "list", "table", "ip", DefaultTable))
			if d := cmp.Diff(comparable(want.String()), comparable(got)); d != "" {
				t.Fatalf("kernel after the update differs from a full rendering (-want +kernel):\n%s", d)
			}

			chains, sets, err := k.list()
			if err != nil {
				t.Fatal(err)
			}
			if err := k.apply(full(cfg, after, chains, sets, time.Now())); err != nil {
				t.Fatalf("full sync over the table: %v", err)
			}
			got = normalizeNft(nft(t, ns, "list", "table", "ip", DefaultTable))
			if d := cmp.Diff(comparable(want.String()), comparable(got)); d != "" {
				t.Fatalf("kernel after a second full sync differs (-want +kernel):\n%s", d)
			}
		})
	}
}
