package dockercli

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/docker/go-units"
	"github.com/moby/moby/api/types/container"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// ParseRestartPolicy parses --restart: no, always, unless-stopped or
// on-failure[:MAX-RETRIES].
func ParseRestartPolicy(s string) (container.RestartPolicy, error) {
	if s == "" {
		return container.RestartPolicy{}, nil
	}
	name, count, hasCount := strings.Cut(s, ":")
	if hasCount && name == "" {
		return container.RestartPolicy{}, errors.New("invalid restart policy format: no policy provided before colon")
	}
	p := container.RestartPolicy{Name: container.RestartPolicyMode(name)}
	if count != "" {
		n, err := strconv.Atoi(count)
		if err != nil {
			return container.RestartPolicy{}, errors.New("invalid restart policy format: maximum retry count must be an integer")
		}
		p.MaximumRetryCount = n
	}
	if err := container.ValidateRestartPolicy(p); err != nil {
		return container.RestartPolicy{}, err
	}
	return p, nil
}

// ParseMemory parses a size like 64m, 1g or 512k (binary units, as
// docker's -m) into bytes.
func ParseMemory(s string) (int64, error) {
	n, err := units.RAMInBytes(s)
	if err != nil {
		return 0, err
	}
	if n < 0 {
		return 0, fmt.Errorf("invalid size: '%s'", s)
	}
	return n, nil
}

// ParseMemorySwap is ParseMemory that also accepts -1 (unlimited swap).
func ParseMemorySwap(s string) (int64, error) {
	if s == "-1" {
		return -1, nil
	}
	return ParseMemory(s)
}

// ParseCPUs parses --cpus (a decimal like 1.5) into nano CPUs.
func ParseCPUs(s string) (int64, error) {
	cpu, ok := new(big.Rat).SetString(s)
	if !ok {
		return 0, fmt.Errorf("failed to parse %v as a rational number", s)
	}
	if cpu.Sign() < 0 {
		return 0, fmt.Errorf("invalid value %s: cpus cannot be negative", s)
	}
	nano := cpu.Mul(cpu, big.NewRat(1e9, 1))
	if !nano.IsInt() {
		return 0, errors.New("value is too precise")
	}
	if !nano.Num().IsInt64() {
		return 0, fmt.Errorf("invalid value %s: too many cpus", s)
	}
	return nano.Num().Int64(), nil
}

// ParseEnv checks one -e value: NAME=VALUE, or NAME alone to pass the
// variable on from lookup (left as NAME when lookup does not know it).
func ParseEnv(s string, lookup func(string) (string, bool)) (string, error) {
	name, _, hasValue := strings.Cut(s, "=")
	if name == "" {
		return "", errors.New("invalid environment variable: " + s)
	}
	if hasValue || lookup == nil {
		return s, nil
	}
	if v, ok := lookup(name); ok {
		return name + "=" + v, nil
	}
	return s, nil
}

// ParseEnvFile reads an --env-file: one NAME=VALUE per line, blank lines
// and lines starting with # skipped, leading whitespace dropped, values
// kept as written (no quotes processed); a NAME alone takes its value
// from lookup and is left out when lookup does not know it.
func ParseEnvFile(r io.Reader, lookup func(string) (string, bool)) ([]string, error) {
	var out []string
	sc := bufio.NewScanner(r)
	for n := 1; sc.Scan(); n++ {
		b := sc.Bytes()
		if !utf8.Valid(b) {
			return nil, fmt.Errorf("invalid utf8 bytes at line %d: %v", n, b)
		}
		if n == 1 {
			b = bytes.TrimPrefix(b, []byte{0xEF, 0xBB, 0xBF})
		}
		line := strings.TrimLeftFunc(string(b), unicode.IsSpace)
		if line == "" || line[0] == '#' {
			continue
		}
		name, _, hasValue := strings.Cut(line, "=")
		if name == "" {
			return nil, fmt.Errorf("no variable name on line '%s'", line)
		}
		if strings.ContainsAny(name, " \t") {
			return nil, fmt.Errorf("variable '%s' contains whitespaces", name)
		}
		if hasValue {
			out = append(out, line)
			continue
		}
		if lookup != nil {
			if v, ok := lookup(name); ok {
				out = append(out, name+"="+v)
			}
		}
	}
	return out, sc.Err()
}

// readEnvFile is ParseEnvFile on a named file, with docker's message.
func readEnvFile(name string) ([]string, error) {
	f, err := os.Open(name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	env, err := ParseEnvFile(f, os.LookupEnv)
	if err != nil {
		return nil, fmt.Errorf("invalid env file (%s): %w", name, err)
	}
	return env, nil
}

// ParseLabel checks one -l/--label value: KEY[=VALUE].
func ParseLabel(s string) (string, error) {
	key, _, _ := strings.Cut(s, "=")
	key = strings.TrimLeft(key, " \t")
	if key == "" {
		return "", fmt.Errorf("invalid label '%s': empty name", s)
	}
	if strings.ContainsAny(key, " \t") {
		return "", fmt.Errorf("label '%s' contains whitespaces", key)
	}
	return s, nil
}

// ParseLabels turns KEY[=VALUE] strings into a map.
func ParseLabels(list []string) map[string]string {
	m := make(map[string]string, len(list))
	for _, s := range list {
		k, v, _ := strings.Cut(s, "=")
		m[k] = v
	}
	return m
}

// ParseExtraHost checks an --add-host value, HOST:IP or HOST=IP (IP may
// be bracketed or "host-gateway"), and returns it as HOST:IP.
func ParseExtraHost(s string) (string, error) {
	host, ip, ok := strings.Cut(s, "=")
	if !ok {
		host, ip, ok = strings.Cut(s, ":")
	}
	if !ok || host == "" || strings.Contains(host, ":") {
		return "", fmt.Errorf("bad format for add-host: %q", s)
	}
	if ip != "host-gateway" {
		if len(ip) > 2 && ip[0] == '[' && ip[len(ip)-1] == ']' {
			ip = ip[1 : len(ip)-1]
		}
		if _, err := netip.ParseAddr(ip); err != nil {
			return "", fmt.Errorf("invalid IP address in add-host: %q", ip)
		}
	}
	return host + ":" + ip, nil
}

// ParseIP checks an address (--dns).
func ParseIP(s string) (string, error) {
	a, err := netip.ParseAddr(strings.TrimSpace(s))
	if err != nil {
		return "", fmt.Errorf("IP address is not correctly formatted: %s", s)
	}
	return a.String(), nil
}

// ParseSysctl checks a --sysctl value: a namespaced kernel parameter
// (net.*, fs.mqueue.*, the IPC kernel.* ones) = value.
func ParseSysctl(s string) (string, error) {
	k, _, ok := strings.Cut(s, "=")
	if !ok || k == "" {
		return "", fmt.Errorf("sysctl '%s' is not allowed", s)
	}
	switch k {
	case "kernel.msgmax", "kernel.msgmnb", "kernel.msgmni", "kernel.sem",
		"kernel.shmall", "kernel.shmmax", "kernel.shmmni", "kernel.shm_rmid_forced":
		return s, nil
	}
	if strings.HasPrefix(k, "net.") || strings.HasPrefix(k, "fs.mqueue.") {
		return s, nil
	}
	return "", fmt.Errorf("sysctl '%s' is not allowed", s)
}

// ParseUlimit checks a --ulimit value: NAME=SOFT[:HARD].
func ParseUlimit(s string) (*container.Ulimit, error) {
	return units.ParseUlimit(s)
}

// ParseAttach checks an -a/--attach value and returns it lower-cased.
func ParseAttach(s string) (string, error) {
	l := strings.ToLower(s)
	switch l {
	case "stdin", "stdout", "stderr":
		return l, nil
	}
	return "", errors.New("valid streams are STDIN, STDOUT and STDERR")
}

// Pull policies for run and create.
const (
	PullAlways  = "always"
	PullMissing = "missing"
	PullNever   = "never"
)

// ParsePullPolicy checks --pull.
func ParsePullPolicy(s string) (string, error) {
	switch s {
	case PullAlways, PullMissing, PullNever:
		return s, nil
	}
	return "", fmt.Errorf("invalid pull option: '%s': must be one of %q, %q or %q", s, PullAlways, PullMissing, PullNever)
}

// ParsePlatform parses --platform: os[/arch[/variant]].
func ParsePlatform(s string) (ocispec.Platform, error) {
	parts := strings.Split(strings.ToLower(s), "/")
	if len(parts) > 3 || parts[0] == "" {
		return ocispec.Platform{}, fmt.Errorf("invalid platform %q: want os[/arch[/variant]]", s)
	}
	for _, p := range parts {
		if p == "" || strings.ContainsAny(p, " \t") {
			return ocispec.Platform{}, fmt.Errorf("invalid platform %q: want os[/arch[/variant]]", s)
		}
	}
	p := ocispec.Platform{OS: parts[0]}
	if len(parts) > 1 {
		p.Architecture = parts[1]
		switch p.Architecture {
		case "x86_64", "x86-64":
			p.Architecture = "amd64"
		case "aarch64":
			p.Architecture = "arm64"
		}
	}
	if len(parts) > 2 {
		p.Variant = parts[2]
	}
	return p, nil
}

// ParseSecurityOpt checks a --security-opt value. no-new-privileges,
// seccomp=unconfined|builtin|PROFILE.json (the file's JSON is sent),
// apparmor=, label=, systempaths=unconfined; KEY:VALUE is accepted as
// KEY=VALUE.
func ParseSecurityOpt(s string) (string, error) {
	k, v, ok := strings.Cut(s, "=")
	if !ok && k != "no-new-privileges" {
		k, v, ok = strings.Cut(s, ":")
	}
	if (!ok || v == "") && k != "no-new-privileges" {
		return "", fmt.Errorf("invalid --security-opt: %q", s)
	}
	if k != "seccomp" || v == "unconfined" || v == "builtin" {
		return s, nil
	}
	data, err := os.ReadFile(v)
	if err != nil {
		return "", fmt.Errorf("opening seccomp profile (%s) failed: %w", v, err)
	}
	var b bytes.Buffer
	if err := json.Compact(&b, data); err != nil {
		return "", fmt.Errorf("compacting json for seccomp profile (%s) failed: %w", v, err)
	}
	return "seccomp=" + b.String(), nil
}
