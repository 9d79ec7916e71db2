package dockercli

import (
	"net/netip"
	"strings"
	"testing"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/network"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// errMatches reports whether err is nil when want is "", and otherwise
// contains want.
func errMatches(err error, want string) bool {
	if want == "" {
		return err == nil
	}
	return err != nil && strings.Contains(err.Error(), want)
}

func TestParseRestartPolicy(t *testing.T) {
	tests := []struct {
		in      string
		want    container.RestartPolicy
		wantErr string
	}{
		{in: ""},
		{in: "no", want: container.RestartPolicy{Name: "no"}},
		{in: "always", want: container.RestartPolicy{Name: "always"}},
		{in: "unless-stopped", want: container.RestartPolicy{Name: "unless-stopped"}},
		{in: "on-failure", want: container.RestartPolicy{Name: "on-failure"}},
		{in: "on-failure:5", want: container.RestartPolicy{Name: "on-failure", MaximumRetryCount: 5}},
		{in: "on-failure:-1", wantErr: "maximum retry count cannot be negative"},
		{in: "on-failure:x", wantErr: "invalid restart policy format: maximum retry count must be an integer"},
		{in: ":3", wantErr: "no policy provided before colon"},
		{in: "always:3", wantErr: "maximum retry count can only be used with 'on-failure'"},
		{in: "sometimes", wantErr: "invalid restart policy: unknown policy 'sometimes'; use one of 'no', 'always', 'on-failure', or 'unless-stopped'"},
		{in: "Always", wantErr: "unknown policy 'Always'"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := ParseRestartPolicy(tt.in)
			if !errMatches(err, tt.wantErr) {
				t.Fatalf("error %v, want %q", err, tt.wantErr)
			}
			if got != tt.want {
				t.Errorf("got %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestParseMemory(t *testing.T) {
	tests := []struct {
		in      string
		swap    bool
		want    int64
		wantErr string
	}{
		{in: "64m", want: 64 << 20},
		{in: "1g", want: 1 << 30},
		{in: "1G", want: 1 << 30},
		{in: "512k", want: 512 << 10},
		{in: "1.5g", want: 3 << 29},
		{in: "100", want: 100},
		{in: "2mb", want: 2 << 20},
		{in: "1x", wantErr: "invalid suffix: 'x'"},
		{in: "", wantErr: "invalid size: ''"},
		{in: "-1", wantErr: "invalid size: '-1'"},
		{in: "-1", swap: true, want: -1},
		{in: "1g", swap: true, want: 1 << 30},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			parse := ParseMemory
			if tt.swap {
				parse = ParseMemorySwap
			}
			got, err := parse(tt.in)
			if !errMatches(err, tt.wantErr) || got != tt.want {
				t.Errorf("got %d, %v; want %d, %q", got, err, tt.want, tt.wantErr)
			}
		})
	}
}

func TestParseCPUs(t *testing.T) {
	tests := []struct {
		in      string
		want    int64
		wantErr string
	}{
		{in: "1", want: 1e9},
		{in: "0.5", want: 5e8},
		{in: "1.25", want: 1_250_000_000},
		{in: "3/2", want: 1_500_000_000},
		{in: "0.000000001", want: 1},
		{in: "0.0000000001", wantErr: "value is too precise"},
		{in: "abc", wantErr: "failed to parse abc as a rational number"},
		{in: "-1", wantErr: "cpus cannot be negative"},
		{in: "1e30", wantErr: "too many cpus"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := ParseCPUs(tt.in)
			if !errMatches(err, tt.wantErr) || got != tt.want {
				t.Errorf("got %d, %v; want %d, %q", got, err, tt.want, tt.wantErr)
			}
		})
	}
}

func lookupFrom(m map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) { v, ok := m[k]; return v, ok }
}

func TestParseEnv(t *testing.T) {
	lookup := lookupFrom(map[string]string{"HOME": "/root", "EMPTY": ""})
	for in, want := range map[string]string{
		"A=1": "A=1", "A=": "A=", "A==b": "A==b", "HOME": "HOME=/root", "EMPTY": "EMPTY=", "UNSET": "UNSET",
		"=x": "error", "": "error",
	} {
		got, err := ParseEnv(in, lookup)
		if want == "error" {
			if err == nil {
				t.Errorf("ParseEnv(%q) accepted", in)
			}
			continue
		}
		if err != nil || got != want {
			t.Errorf("ParseEnv(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
}

func TestParseEnvFile(t *testing.T) {
	lookup := lookupFrom(map[string]string{"FROM_ENV": "yes"})
	tests := []struct {
		name, content string
		want          []string
		wantErr       string
	}{
		{name: "plain", content: "A=1\nB=2\n", want: []string{"A=1", "B=2"}},
		{name: "comments and blanks", content: "# c\n\n   \nA=1\n  # indented comment\n", want: []string{"A=1"}},
		{name: "leading space trimmed, trailing kept", content: "  A=1  \n", want: []string{"A=1  "}},
		{name: "quotes kept", content: `A="quoted value"` + "\n", want: []string{`A="quoted value"`}},
		{name: "value with =", content: "URL=http://x/?a=b\n", want: []string{"URL=http://x/?a=b"}},
		{name: "from environment", content: "FROM_ENV\nNOT_SET\n", want: []string{"FROM_ENV=yes"}},
		{name: "empty value", content: "A=\n", want: []string{"A="}},
		{name: "bom", content: "\ufeffA=1\n", want: []string{"A=1"}},
		{name: "crlf", content: "A=1\r\n", want: []string{"A=1"}},
		{name: "no name", content: "=x\n", wantErr: "no variable name on line '=x'"},
		{name: "space in name", content: "A B=1\n", wantErr: "variable 'A B' contains whitespaces"},
		{name: "bad utf8", content: "A=\xff\n", wantErr: "invalid utf8 bytes at line 1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseEnvFile(strings.NewReader(tt.content), lookup)
			if !errMatches(err, tt.wantErr) {
				t.Fatalf("error %v, want %q", err, tt.wantErr)
			}
			if tt.wantErr == "" && strings.Join(got, "|") != strings.Join(tt.want, "|") {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
	if _, err := readEnvFile(t.TempDir() + "/missing"); err == nil || !strings.Contains(err.Error(), "no such file") {
		t.Errorf("missing env file: %v", err)
	}
}

func TestParseLabels(t *testing.T) {
	for in, wantErr := range map[string]string{
		"a=b": "", "a": "", "com.example.x=1": "", "a=b c": "",
		"=b": "invalid label '=b': empty name", "a b=c": "label 'a b' contains whitespaces",
	} {
		if _, err := ParseLabel(in); !errMatches(err, wantErr) {
			t.Errorf("ParseLabel(%q) = %v, want %q", in, err, wantErr)
		}
	}
	got := ParseLabels([]string{"a=1", "b", "c=x=y", "a=2"})
	want := map[string]string{"a": "2", "b": "", "c": "x=y"}
	if !equalJSON(got, want) {
		t.Errorf("ParseLabels = %v, want %v", got, want)
	}
}

func TestParseSmallValues(t *testing.T) {
	tests := []struct {
		name    string
		parse   func(string) (string, error)
		in      string
		want    string
		wantErr string
	}{
		{"host colon", ParseExtraHost, "db:10.0.0.5", "db:10.0.0.5", ""},
		{"host equals", ParseExtraHost, "db=10.0.0.5", "db:10.0.0.5", ""},
		{"host ipv6", ParseExtraHost, "db:::1", "db:::1", ""},
		{"host bracketed", ParseExtraHost, "db=[::1]", "db:::1", ""},
		{"host gateway", ParseExtraHost, "gw:host-gateway", "gw:host-gateway", ""},
		{"host no ip", ParseExtraHost, "db", "", `bad format for add-host: "db"`},
		{"host bad ip", ParseExtraHost, "db:x", "", `invalid IP address in add-host: "x"`},
		{"ip", ParseIP, " 1.1.1.1 ", "1.1.1.1", ""},
		{"ip6", ParseIP, "2001:db8::1", "2001:db8::1", ""},
		{"bad ip", ParseIP, "dns.google", "", "IP address is not correctly formatted: dns.google"},
		{"sysctl net", ParseSysctl, "net.core.somaxconn=1024", "net.core.somaxconn=1024", ""},
		{"sysctl ipc", ParseSysctl, "kernel.shmmax=1", "kernel.shmmax=1", ""},
		{"sysctl mqueue", ParseSysctl, "fs.mqueue.msg_max=10", "fs.mqueue.msg_max=10", ""},
		{"sysctl host-wide", ParseSysctl, "vm.swappiness=1", "", "sysctl 'vm.swappiness=1' is not allowed"},
		{"sysctl no value", ParseSysctl, "net.x", "", "is not allowed"},
		{"attach", ParseAttach, "STDIN", "stdin", ""},
		{"attach bad", ParseAttach, "stdio", "", "valid streams are STDIN, STDOUT and STDERR"},
		{"pull", ParsePullPolicy, "always", "always", ""},
		{"pull bad", ParsePullPolicy, "Always", "", `invalid pull option: 'Always': must be one of "always", "missing" or "never"`},
		{"secopt nnp", ParseSecurityOpt, "no-new-privileges", "no-new-privileges", ""},
		{"secopt nnp value", ParseSecurityOpt, "no-new-privileges=true", "no-new-privileges=true", ""},
		{"secopt seccomp", ParseSecurityOpt, "seccomp=unconfined", "seccomp=unconfined", ""},
		{"secopt colon", ParseSecurityOpt, "apparmor:unconfined", "apparmor:unconfined", ""},
		{"secopt no value", ParseSecurityOpt, "label", "", `invalid --security-opt: "label"`},
		{"secopt missing profile", ParseSecurityOpt, "seccomp=/nonexistent.json", "", "opening seccomp profile (/nonexistent.json) failed"},
		{"filter", checkFilter, "name=web", "name=web", ""},
		{"filter bad", checkFilter, "web", "", "bad format of filter (expected name=value)"},
		{"network", checkNetwork, "container:web", "container:web", ""},
		{"network container empty", checkNetwork, "container:", "", "requires a container name"},
		{"network empty", checkNetwork, " ", "", "no name set for network"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tt.parse(tt.in)
			if !errMatches(err, tt.wantErr) || got != tt.want {
				t.Errorf("got %q, %v; want %q, %q", got, err, tt.want, tt.wantErr)
			}
		})
	}
}

func TestParseSeccompProfileFile(t *testing.T) {
	name := t.TempDir() + "/profile.json"
	writeFile(t, name, "{\n  \"defaultAction\": \"SCMP_ACT_ALLOW\"\n}\n")
	got, err := ParseSecurityOpt("seccomp=" + name)
	if err != nil || got != `seccomp={"defaultAction":"SCMP_ACT_ALLOW"}` {
		t.Errorf("got %q, %v", got, err)
	}
	writeFile(t, name, "not json")
	if _, err := ParseSecurityOpt("seccomp=" + name); err == nil {
		t.Error("a profile that is not JSON was accepted")
	}
}

func TestParseUlimit(t *testing.T) {
	u, err := ParseUlimit("nofile=1024:2048")
	if err != nil || u.Name != "nofile" || u.Soft != 1024 || u.Hard != 2048 {
		t.Errorf("got %+v, %v", u, err)
	}
	for _, bad := range []string{"nofile", "bogus=1", "nofile=2:1", "nofile=x"} {
		if _, err := ParseUlimit(bad); err == nil {
			t.Errorf("ParseUlimit(%q) accepted", bad)
		}
	}
}

func TestParsePlatform(t *testing.T) {
	tests := []struct {
		in      string
		want    ocispec.Platform
		wantErr bool
	}{
		{in: "linux", want: ocispec.Platform{OS: "linux"}},
		{in: "linux/amd64", want: ocispec.Platform{OS: "linux", Architecture: "amd64"}},
		{in: "Linux/x86_64", want: ocispec.Platform{OS: "linux", Architecture: "amd64"}},
		{in: "linux/aarch64", want: ocispec.Platform{OS: "linux", Architecture: "arm64"}},
		{in: "linux/arm/v7", want: ocispec.Platform{OS: "linux", Architecture: "arm", Variant: "v7"}},
		{in: "", wantErr: true},
		{in: "linux//", wantErr: true},
		{in: "/amd64", wantErr: true},
		{in: "a/b/c/d", wantErr: true},
	}
	for _, tt := range tests {
		got, err := ParsePlatform(tt.in)
		if (err != nil) != tt.wantErr || !tt.wantErr && !equalJSON(got, tt.want) {
			t.Errorf("ParsePlatform(%q) = %+v, %v", tt.in, got, err)
		}
	}
}

func TestParseIPAM(t *testing.T) {
	tests := []struct {
		name                        string
		subnets, gateways, ipRanges []string
		want                        []network.IPAMConfig
		wantErr                     string
	}{
		{name: "none"},
		{name: "subnet", subnets: []string{"10.1.0.0/16"}, want: []network.IPAMConfig{{Subnet: netip.MustParsePrefix("10.1.0.0/16")}}},
		{name: "subnet gateway range", subnets: []string{"10.1.0.0/16", "fd00::/64"}, gateways: []string{"fd00::1", "10.1.0.1"}, ipRanges: []string{"10.1.2.0/24"},
			want: []network.IPAMConfig{
				{Subnet: netip.MustParsePrefix("10.1.0.0/16"), Gateway: netip.MustParseAddr("10.1.0.1"), IPRange: netip.MustParsePrefix("10.1.2.0/24")},
				{Subnet: netip.MustParsePrefix("fd00::/64"), Gateway: netip.MustParseAddr("fd00::1")},
			}},
		{name: "gateway without subnet", gateways: []string{"10.0.0.1"}, wantErr: "every ip-range or gateway must have a corresponding subnet"},
		{name: "gateway outside", subnets: []string{"10.1.0.0/16"}, gateways: []string{"10.2.0.1"}, wantErr: "no matching subnet for gateway 10.2.0.1"},
		{name: "range outside", subnets: []string{"10.1.0.0/16"}, ipRanges: []string{"10.2.0.0/24"}, wantErr: "no matching subnet for range 10.2.0.0/24"},
		{name: "bad subnet", subnets: []string{"10.1.0.0"}, wantErr: "invalid subnet 10.1.0.0"},
		{name: "host bits", subnets: []string{"10.1.0.1/16"}, wantErr: "invalid subnet 10.1.0.1/16: it should be 10.1.0.0/16"},
		{name: "overlap", subnets: []string{"10.1.0.0/16", "10.1.2.0/24"}, wantErr: "multiple overlapping subnet configuration is not supported"},
		{name: "two gateways", subnets: []string{"10.1.0.0/16", "10.9.0.0/16"}, gateways: []string{"10.1.0.1", "10.1.0.2"}, wantErr: "cannot configure multiple gateways"},
		{name: "bad gateway", subnets: []string{"10.1.0.0/16"}, gateways: []string{"gw"}, wantErr: "invalid gateway gw"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseIPAM(tt.subnets, tt.gateways, tt.ipRanges)
			if !errMatches(err, tt.wantErr) {
				t.Fatalf("error %v, want %q", err, tt.wantErr)
			}
			if tt.wantErr == "" && !equalJSON(got, tt.want) {
				t.Errorf("got %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestFormatter(t *testing.T) {
	type row = containerRow
	rows := []any{row{c: container.Summary{ID: strings.Repeat("a", 64), Names: []string{"/x"}, Labels: map[string]string{"com.example.tier": "web"}}, trunc: true}}
	tests := []struct {
		format, want, wantErr string
	}{
		{format: "{{.ID}}", want: "aaaaaaaaaaaa\n"},
		{format: `{{.Names}}\t{{.ID}}`, want: "x\taaaaaaaaaaaa\n"},
		{format: `table {{.Names}}\t{{.Label "com.example.tier"}}`, want: "NAMES     TIER\nx         web\n"},
		{format: `table {{upper .Names}}`, want: "NAMES\nX\n"},
		{format: `{{json .Labels}}`, want: "\"com.example.tier=web\"\n"},
		{format: `{{pad .Names 1 1}}|{{truncate .ID 3}}|{{title "ab"}}|{{join (split "a,b" ",") "+"}}`, want: " x |aaa|Ab|a+b\n"},
		{format: "{{.Nope}}", wantErr: "can't evaluate field Nope"},
		{format: "{{.ID", wantErr: "template parsing error"},
	}
	for _, tt := range tests {
		t.Run(tt.format, func(t *testing.T) {
			f, err := newFormatter(tt.format, defaultPsTable, psHeaders)
			if err == nil {
				var b strings.Builder
				err = f.write(&b, rows)
				if err == nil && b.String() != tt.want {
					t.Errorf("got %q, want %q", b.String(), tt.want)
				}
			}
			if !errMatches(err, tt.wantErr) {
				t.Errorf("error %v, want %q", err, tt.wantErr)
			}
		})
	}
}

func TestFlagValuesShowInHelp(t *testing.T) {
	var b bytesValue
	if err := b.Set("64m"); err != nil || b.String() != "64MiB" || b.Type() != "bytes" {
		t.Errorf("bytes: %v %q", err, b.String())
	}
	var c cpusValue
	if err := c.Set("1.5"); err != nil || c.String() != "1.5" {
		t.Errorf("cpus: %v %q", err, c.String())
	}
	var r restartValue
	if err := r.Set("on-failure:2"); err != nil || r.String() != "on-failure:2" || r.policy.MaximumRetryCount != 2 {
		t.Errorf("restart: %v %+v", err, r)
	}
	l := newList(ParseAttach)
	if err := l.Set("STDOUT"); err != nil || l.String() != "[stdout]" {
		t.Errorf("list: %v %q", err, l.String())
	}
}
