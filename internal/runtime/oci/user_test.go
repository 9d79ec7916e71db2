package oci

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/moby/sys/user"
	"github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"skiff.dev/skiff/internal/errdefs"
)

func TestResolveUser(t *testing.T) {
	full := testRootfs(t)
	empty := t.TempDir() // no /etc at all

	tests := []struct {
		name       string
		rootfs     string
		user       string
		additional []string
		want       specs.User
		wantErr    error // checked with errors.Is, besides errdefs.ErrInvalid
	}{
		{name: "empty is root", rootfs: full, user: "", want: specs.User{UID: 0, GID: 0, AdditionalGids: []uint32{0}}},
		{name: "root by name", rootfs: full, user: "root", want: specs.User{AdditionalGids: []uint32{0}}},
		{name: "name gets passwd gid and memberships", rootfs: full, user: "app",
			want: specs.User{UID: 1000, GID: 1000, AdditionalGids: []uint32{1000, 29, 44}}},
		{name: "uid with an entry is that user", rootfs: full, user: "1000",
			want: specs.User{UID: 1000, GID: 1000, AdditionalGids: []uint32{1000, 29, 44}}},
		{name: "uid without an entry", rootfs: full, user: "4242",
			want: specs.User{UID: 4242, GID: 0, AdditionalGids: []uint32{0}}},
		{name: "uid:gid without entries", rootfs: full, user: "4242:4343",
			want: specs.User{UID: 4242, GID: 4343, AdditionalGids: []uint32{4343}}},
		{name: "name:group replaces gid and memberships", rootfs: full, user: "app:staff",
			want: specs.User{UID: 1000, GID: 50, AdditionalGids: []uint32{50}}},
		{name: "name:gid", rootfs: full, user: "www-data:1000",
			want: specs.User{UID: 33, GID: 1000, AdditionalGids: []uint32{1000}}},
		{name: "uid:group", rootfs: full, user: "1000:video",
			want: specs.User{UID: 1000, GID: 44, AdditionalGids: []uint32{44}}},
		{name: "group-add by name and gid, in order, without repeats", rootfs: full, user: "app",
			additional: []string{"staff", "video", "4000", "audio", "1000"},
			want:       specs.User{UID: 1000, GID: 1000, AdditionalGids: []uint32{1000, 29, 44, 50, 4000}}},
		{name: "group-add to root", rootfs: full, user: "", additional: []string{"tty"},
			want: specs.User{AdditionalGids: []uint32{0, 5}}},
		{name: "unknown user", rootfs: full, user: "nosuchuser", wantErr: user.ErrNoPasswdEntries},
		{name: "unknown group", rootfs: full, user: "app:nosuchgroup", wantErr: user.ErrNoGroupEntries},
		{name: "unknown added group", rootfs: full, user: "app", additional: []string{"nosuchgroup"}, wantErr: user.ErrNoGroupEntries},
		{name: "empty added group", rootfs: full, additional: []string{""}, wantErr: user.ErrNoGroupEntries},
		{name: "negative uid", rootfs: full, user: "-1", wantErr: user.ErrRange},
		{name: "uid out of range", rootfs: full, user: "2147483648", wantErr: user.ErrRange},
		{name: "gid out of range", rootfs: full, user: "0:4294967296", wantErr: user.ErrRange},
		{name: "added gid out of range", rootfs: full, additional: []string{"2147483648"}, wantErr: user.ErrRange},
		{name: "missing passwd: root", rootfs: empty, user: "", want: specs.User{AdditionalGids: []uint32{0}}},
		{name: "missing passwd: numbers", rootfs: empty, user: "1000:1000", additional: []string{"29"},
			want: specs.User{UID: 1000, GID: 1000, AdditionalGids: []uint32{1000, 29}}},
		{name: "missing passwd: name", rootfs: empty, user: "app", wantErr: user.ErrNoPasswdEntries},
		{name: "missing group: group name", rootfs: empty, user: "0:staff", wantErr: user.ErrNoGroupEntries},
		{name: "missing group: added name", rootfs: empty, additional: []string{"audio"}, wantErr: user.ErrNoGroupEntries},
		{name: "no rootfs", rootfs: "", user: "0"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ResolveUser(tt.rootfs, tt.user, tt.additional)
			if tt.wantErr != nil || tt.rootfs == "" {
				if !errors.Is(err, errdefs.ErrInvalid) {
					t.Fatalf("ResolveUser(%q, %q) = %+v, %v; want errdefs.ErrInvalid", tt.user, tt.additional, got, err)
				}
				if tt.wantErr != nil && !errors.Is(err, tt.wantErr) {
					t.Fatalf("error %v is not %v", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("ResolveUser(%q, %q): %v", tt.user, tt.additional, err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("ResolveUser(%q, %q) (-want +got):\n%s", tt.user, tt.additional, diff)
			}
		})
	}
}

func TestResolveUserErrorNamesTheUser(t *testing.T) {
	_, err := ResolveUser(testRootfs(t), "nosuchuser", nil)
	if err == nil || !strings.Contains(err.Error(), `"nosuchuser"`) || !strings.Contains(err.Error(), "passwd") {
		t.Fatalf("error %q should name the user and the passwd file", err)
	}
}

// The user database is looked up inside the rootfs: an absolute symlink
// means the rootfs's file, not the host's.
func TestResolveUserStaysInRootfs(t *testing.T) {
	outside := filepath.Join(t.TempDir(), "passwd")
	writeFile(t, outside, "evil:x:7:7::/:/bin/sh\n")
	root := t.TempDir()
	if err := os.MkdirAll(filepath.Join(root, "etc"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(outside, filepath.Join(root, "etc/passwd")); err != nil {
		t.Fatal(err)
	}
	if u, err := ResolveUser(root, "evil", nil); !errors.Is(err, errdefs.ErrInvalid) {
		t.Fatalf("user from a symlink leading out of the rootfs resolved: %+v, %v", u, err)
	}

	// A relative symlink inside the rootfs is followed.
	writeFile(t, filepath.Join(root, "usr/share/passwd"), "inside:x:8:8::/:/bin/sh\n")
	if err := os.Remove(filepath.Join(root, "etc/passwd")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("../usr/share/passwd", filepath.Join(root, "etc/passwd")); err != nil {
		t.Fatal(err)
	}
	u, err := ResolveUser(root, "inside", nil)
	if err != nil || u.UID != 8 || u.GID != 8 {
		t.Fatalf("ResolveUser via an inside symlink = %+v, %v; want uid 8 gid 8", u, err)
	}
}

// A FIFO planted as /etc/passwd must not block; it counts as missing.
func TestResolveUserFIFO(t *testing.T) {
	root := t.TempDir()
	if err := os.MkdirAll(filepath.Join(root, "etc"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := unix.Mkfifo(filepath.Join(root, "etc/passwd"), 0o644); err != nil {
		t.Skipf("mkfifo: %v", err)
	}
	// Were the FIFO opened blocking, this would hang until go test's timeout.
	if _, err := ResolveUser(root, "1000", nil); err != nil {
		t.Fatalf("numeric user with a FIFO passwd: %v", err)
	}
	if _, err := ResolveUser(root, "app", nil); !errors.Is(err, user.ErrNoPasswdEntries) {
		t.Fatalf("named user with a FIFO passwd: %v; want no passwd entries", err)
	}
}
