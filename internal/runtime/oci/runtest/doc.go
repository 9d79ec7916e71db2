// Package runtest holds a root-only test that starts real containers from
// package oci's specs with libcontainer (busybox rootfs, one process each)
// and checks, from inside, what Docker's defaults promise: the user and
// groups, capabilities, seccomp, no-new-privileges, rlimits, read-only
// mounts and cgroup limits. It has no code of its own; nothing imports it.
package runtest
