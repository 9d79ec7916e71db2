package oci

import (
	"fmt"
	"slices"
	"strings"

	"skiff.dev/skiff/internal/errdefs"
)

// allCaps is the magic --cap-add/--cap-drop value for every capability.
const allCaps = "ALL"

// defaultCaps is Docker's default capability set, in Docker's order.
func defaultCaps() []string {
	return []string{
		"CAP_CHOWN",
		"CAP_DAC_OVERRIDE",
		"CAP_FSETID",
		"CAP_FOWNER",
		"CAP_MKNOD",
		"CAP_NET_RAW",
		"CAP_SETGID",
		"CAP_SETUID",
		"CAP_SETFCAP",
		"CAP_SETPCAP",
		"CAP_NET_BIND_SERVICE",
		"CAP_SYS_CHROOT",
		"CAP_KILL",
		"CAP_AUDIT_WRITE",
	}
}

// capabilities computes the container's capability set as docker run does:
// privileged gets every capability available (add and drop are still
// checked, as Docker checks them at create); "ALL" in add gives every
// available capability but those dropped; "ALL" in drop leaves only those
// added; otherwise the defaults minus drop plus add. Names are
// case-insensitive with or without CAP_; unknown ones, and known ones this
// host cannot grant, are errdefs.ErrInvalid.
func capabilities(h *host, add, drop []string, privileged bool) ([]string, error) {
	adds, err := normalizeCaps(h, add)
	if err != nil {
		return nil, fmt.Errorf("cap-add: %w", err)
	}
	drops, err := normalizeCaps(h, drop)
	if err != nil {
		return nil, fmt.Errorf("cap-drop: %w", err)
	}
	var caps []string
	switch {
	case privileged:
		caps = slices.Clone(h.caps)
	case slices.Contains(adds, allCaps):
		for _, c := range h.caps {
			if !slices.Contains(drops, c) {
				caps = append(caps, c)
			}
		}
	case slices.Contains(drops, allCaps):
		caps = adds
	default:
		for _, c := range defaultCaps() {
			if !slices.Contains(drops, c) {
				caps = append(caps, c)
			}
		}
		caps = append(caps, adds...)
	}
	return dedupe(caps), nil
}

// normalizeCaps upper-cases names and adds the CAP_ prefix, keeping "ALL".
func normalizeCaps(h *host, names []string) ([]string, error) {
	out := make([]string, 0, len(names))
	for _, n := range names {
		c := strings.ToUpper(strings.TrimSpace(n))
		if c == allCaps {
			out = append(out, c)
			continue
		}
		if !strings.HasPrefix(c, "CAP_") {
			c = "CAP_" + c
		}
		switch {
		case !slices.Contains(knownCapList(), c):
			return nil, fmt.Errorf("unknown capability %q: %w", n, errdefs.ErrInvalid)
		case !slices.Contains(h.caps, c):
			return nil, fmt.Errorf("capability %q is not supported by the kernel or not available to skiff: %w", n, errdefs.ErrInvalid)
		}
		out = append(out, c)
	}
	return out, nil
}

// dedupe drops repeated strings, keeping the first of each.
func dedupe(s []string) []string {
	out := s[:0:0]
	for _, v := range s {
		if !slices.Contains(out, v) {
			out = append(out, v)
		}
	}
	return out
}
