package oci

import (
	"runtime"
	"slices"
	"sync"
	"syscall"

	"github.com/moby/profiles/seccomp"
	"github.com/opencontainers/runtime-spec/specs-go"
)

// defaultSeccomp is Docker's default profile for s, less the x32
// architecture when this kernel cannot run x32 programs.
//
// Why: libcontainer compiles the profile with libseccomp inside every
// container's init, on the critical path of each start. On amd64 the
// profile names three architectures (x86_64, x86, x32) and each costs
// about as much as the first again; measured here the x32 part is half of
// the ~37 ms compile. A kernel without the x32 ABI answers every x32
// system call with ENOSYS, so no x32 program runs in the container either
// way: dropping the architecture changes no behaviour a container can
// observe (an x32 syscall is refused by the filter instead of by the
// kernel).
func defaultSeccomp(s *specs.Spec) (*specs.LinuxSeccomp, error) {
	p, err := seccomp.GetDefaultProfile(s)
	if err != nil || p == nil {
		return p, err
	}
	if runtime.GOARCH == "amd64" && !x32Enabled() {
		p.Architectures = slices.DeleteFunc(p.Architectures, func(a specs.Arch) bool { return a == specs.ArchX32 })
	}
	return p, nil
}

// x32Enabled reports whether the kernel runs x32 system calls; tests
// replace it to keep golden files independent of the host kernel.
var x32Enabled = sync.OnceValue(func() bool {
	const x32Bit = 0x40000000
	_, _, errno := syscall.RawSyscall(x32Bit|syscall.SYS_GETPID, 0, 0, 0)
	return errno != syscall.ENOSYS
})
