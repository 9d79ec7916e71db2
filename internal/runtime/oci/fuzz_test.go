package oci

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"skiff.dev/skiff/internal/errdefs"
)

// FuzzResolveUser: any --user, --group-add and user database either
// resolves or fails with errdefs.ErrInvalid, never panics.
func FuzzResolveUser(f *testing.F) {
	f.Add("app", "staff,29", testPasswd, testGroup)
	f.Add("1000:video", "", testPasswd, testGroup)
	f.Add("", "", "", "")
	f.Add("::::", ",,", "root:x:0:0::/:\n:::::\n", "::::\nx:x:-1:\n")
	f.Add("-1:-1", "99999999999999999999", "a:x:2147483648:1\n", "g:x:4294967296:a\n")
	f.Add("nobody", "nogroup", "nobody:x:65534:65534:::\n", "nogroup:x:65534:nobody\n")
	f.Fuzz(func(t *testing.T, spec, groups, passwd, group string) {
		root := t.TempDir()
		if err := os.Mkdir(filepath.Join(root, "etc"), 0o755); err != nil {
			t.Fatal(err)
		}
		for name, data := range map[string]string{"passwd": passwd, "group": group} {
			if err := os.WriteFile(filepath.Join(root, "etc", name), []byte(data), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		var additional []string
		if groups != "" {
			additional = strings.Split(groups, ",")
		}
		u, err := ResolveUser(root, spec, additional)
		if err != nil {
			if !errors.Is(err, errdefs.ErrInvalid) {
				t.Fatalf("ResolveUser(%q, %q) error %v is not ErrInvalid", spec, additional, err)
			}
			return
		}
		if len(u.AdditionalGids) == 0 || u.AdditionalGids[0] != u.GID {
			t.Fatalf("ResolveUser(%q) = %+v: the primary gid should come first", spec, u)
		}
		if u.UID > 1<<31-1 || u.GID > 1<<31-1 {
			t.Fatalf("ResolveUser(%q) = %+v: id out of range", spec, u)
		}
	})
}

// FuzzCapabilities: any --cap-add/--cap-drop either gives known,
// distinct capability names or fails with errdefs.ErrInvalid.
func FuzzCapabilities(f *testing.F) {
	f.Add("chown,NET_ADMIN", "ALL", false)
	f.Add("ALL", "sys_admin", false)
	f.Add("cap_", "CAP_CAP_CHOWN", true)
	f.Add("", "", true)
	f.Add(" all ,\x00", "ａｌｌ", false)
	h := testHost()
	f.Fuzz(func(t *testing.T, add, drop string, privileged bool) {
		split := func(s string) []string {
			if s == "" {
				return nil
			}
			return strings.Split(s, ",")
		}
		caps, err := capabilities(h, split(add), split(drop), privileged)
		if err != nil {
			if !errors.Is(err, errdefs.ErrInvalid) {
				t.Fatalf("capabilities(%q, %q) error %v is not ErrInvalid", add, drop, err)
			}
			return
		}
		seen := map[string]bool{}
		for _, c := range caps {
			if seen[c] || !strings.HasPrefix(c, "CAP_") || c == "CAP_ALL" {
				t.Fatalf("capabilities(%q, %q) = %q", add, drop, caps)
			}
			seen[c] = true
		}
	})
}

// FuzzTmpfsOptions: any --tmpfs options merge or fail with ErrInvalid,
// and a merged list names each flag once.
func FuzzTmpfsOptions(f *testing.F) {
	f.Add("size=64m,exec,noexec,mode=1777")
	f.Add(",,defaults,ro,rw")
	f.Add("size")
	f.Add("=x,mode==")
	f.Fuzz(func(t *testing.T, opts string) {
		got, err := tmpfsOptions(strings.Split(opts, ","), false)
		if err != nil {
			if !errors.Is(err, errdefs.ErrInvalid) {
				t.Fatalf("tmpfsOptions(%q) error %v is not ErrInvalid", opts, err)
			}
			return
		}
		groups := map[string]bool{}
		for _, o := range got {
			g, ok := tmpfsFlags[o]
			if !ok {
				g, _, _ = strings.Cut(o, "=")
			}
			if groups[g] {
				t.Fatalf("tmpfsOptions(%q) = %q: %s twice", opts, got, g)
			}
			groups[g] = true
		}
	})
}
