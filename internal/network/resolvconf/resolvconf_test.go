package resolvconf

import (
	"os"
	"path/filepath"
	"reflect"
	"testing"
)

func TestParse(t *testing.T) {
	tests := []struct {
		name, in string
		want     Config
	}{
		{"empty", "", Config{}},
		{"servers accumulate, last search and options win", "nameserver 1.1.1.1\n# c\n; c\nsearch a.example.\nnameserver 8.8.8.8\nsearch b.example c.example\noptions ndots:2\noptions edns0\n",
			Config{Nameservers: []string{"1.1.1.1", "8.8.8.8"}, Searches: []string{"b.example", "c.example"}, Options: []string{"edns0"}}},
		{"bare nameserver line", "nameserver\n", Config{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Parse([]byte(tt.in)); !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("Parse = %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestReadNode(t *testing.T) {
	dir := t.TempDir()
	write := func(name, s string) string {
		p := filepath.Join(dir, name)
		os.WriteFile(p, []byte(s), 0o644)
		return p
	}
	stub := write("stub.conf", "nameserver 127.0.0.53\nsearch lan\n")
	real := write("real.conf", "nameserver 192.0.2.1\n")
	tests := []struct {
		name, path, alt string
		want            []string
	}{
		{"plain", real, stub, []string{"192.0.2.1"}},
		{"stub resolver swapped for systemd's file", stub, real, []string{"192.0.2.1"}},
		{"stub kept when systemd's file is missing", stub, filepath.Join(dir, "none"), []string{"127.0.0.53"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := ReadNode(tt.path, tt.alt)
			if err != nil || !reflect.DeepEqual(c.Nameservers, tt.want) {
				t.Fatalf("ReadNode = %+v, %v; want servers %v", c, err, tt.want)
			}
		})
	}
	if _, err := ReadNode(filepath.Join(dir, "missing"), stub); err == nil {
		t.Fatal("a missing resolv.conf is not an error")
	}
}

func FuzzParse(f *testing.F) {
	f.Add("nameserver 1.1.1.1\nsearch a b\noptions ndots:5\n")
	f.Fuzz(func(t *testing.T, s string) { Parse([]byte(s)) })
}
