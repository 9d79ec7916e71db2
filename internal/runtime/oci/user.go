package oci

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"slices"
	"syscall"

	securejoin "github.com/cyphar/filepath-securejoin"
	"github.com/moby/sys/user"
	"github.com/opencontainers/runtime-spec/specs-go"

	"skiff.dev/skiff/internal/errdefs"
)

// maxUserFile bounds how much of /etc/passwd or /etc/group is read.
const maxUserFile = 10 << 20

// ResolveUser resolves docker's --user (and --group-add) against the
// /etc/passwd and /etc/group of rootfs, as Docker does with
// github.com/moby/sys/user: "" is uid 0; a name must exist in passwd; a
// numeric uid or gid needs no entry; without an explicit group, the
// primary gid is the passwd entry's and the user's memberships in
// /etc/group are added. additional are names (which must exist) or gids.
// AdditionalGids lists the primary gid first, then the memberships, then
// additional in order, without repeats.
//
// The files are looked up inside rootfs (symlinks cannot lead out of it);
// a missing or non-regular file counts as empty. An unknown user or group,
// or an id out of range, is errdefs.ErrInvalid.
func ResolveUser(rootfs, userSpec string, additional []string) (specs.User, error) {
	if rootfs == "" {
		return specs.User{}, fmt.Errorf("resolve user: empty rootfs: %w", errdefs.ErrInvalid)
	}
	passwd, err := readUserFile(rootfs, "/etc/passwd")
	if err != nil {
		return specs.User{}, err
	}
	group, err := readUserFile(rootfs, "/etc/group")
	if err != nil {
		return specs.User{}, err
	}
	eu, err := user.GetExecUser(userSpec, nil, reader(passwd), reader(group))
	if err != nil {
		return specs.User{}, fmt.Errorf("user %q: %w: %w", userSpec, err, errdefs.ErrInvalid)
	}
	u := specs.User{UID: uint32(eu.Uid), GID: uint32(eu.Gid)}
	u.AdditionalGids = []uint32{u.GID}
	for _, g := range eu.Sgids {
		u.AdditionalGids = append(u.AdditionalGids, uint32(g))
	}
	for _, name := range additional {
		// One at a time: the library returns a set, and the order given
		// is the one worth keeping.
		gids, err := user.GetAdditionalGroups([]string{name}, reader(group))
		if err != nil {
			return specs.User{}, fmt.Errorf("group-add %q: %w: %w", name, err, errdefs.ErrInvalid)
		}
		for _, g := range gids {
			u.AdditionalGids = append(u.AdditionalGids, uint32(g))
		}
	}
	u.AdditionalGids = dedupeGids(u.AdditionalGids)
	return u, nil
}

// reader returns data as a reader, or a nil interface for a missing file
// (what moby/sys/user takes as "no entries, numeric ids only").
func reader(data []byte) io.Reader {
	if data == nil {
		return nil
	}
	return bytes.NewReader(data)
}

// readUserFile reads name (/etc/passwd or /etc/group) inside rootfs. It
// returns nil if the file is missing or not a regular file, like
// moby/sys/user's GetExecUserPath.
func readUserFile(rootfs, name string) ([]byte, error) {
	p, err := securejoin.SecureJoin(rootfs, name)
	if err != nil {
		return nil, fmt.Errorf("resolve %s in %s: %w", name, rootfs, err)
	}
	// O_NONBLOCK: opening a FIFO planted there must not hang.
	f, err := os.OpenFile(p, os.O_RDONLY|syscall.O_NONBLOCK|syscall.O_NOFOLLOW, 0)
	if errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ENOTDIR) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read the container's %s: %w", name, err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("read the container's %s: %w", name, err)
	}
	if !st.Mode().IsRegular() {
		return nil, nil
	}
	data, err := io.ReadAll(io.LimitReader(f, maxUserFile+1))
	if err != nil {
		return nil, fmt.Errorf("read the container's %s: %w", name, err)
	}
	if len(data) > maxUserFile {
		return nil, fmt.Errorf("the container's %s is larger than %d bytes: %w", name, maxUserFile, errdefs.ErrInvalid)
	}
	return data, nil
}

func dedupeGids(gids []uint32) []uint32 {
	out := make([]uint32, 0, len(gids))
	for _, g := range gids {
		if !slices.Contains(out, g) {
			out = append(out, g)
		}
	}
	return out
}
