package oci

import (
	"reflect"
	"runtime"
	"slices"
	"testing"

	"github.com/opencontainers/runtime-spec/specs-go"
)

func TestSeccompWithoutX32(t *testing.T) {
	if runtime.GOARCH != "amd64" {
		t.Skip("x32 is an amd64 ABI")
	}
	defer func(f func() bool) { x32Enabled = f }(x32Enabled)
	profile := func(x32 bool) *specs.LinuxSeccomp {
		x32Enabled = func() bool { return x32 }
		s, err := Spec(Config{ID: "c", Rootfs: testRootfs(t), Args: []string{"/bin/true"}})
		if err != nil {
			t.Fatal(err)
		}
		return s.Linux.Seccomp
	}
	with, without := profile(true), profile(false)
	if !slices.Contains(with.Architectures, specs.ArchX32) {
		t.Fatalf("Docker's profile lists %v, want x32 among them", with.Architectures)
	}
	want := slices.DeleteFunc(slices.Clone(with.Architectures), func(a specs.Arch) bool { return a == specs.ArchX32 })
	if !reflect.DeepEqual(without.Architectures, want) {
		t.Fatalf("without x32: architectures %v, want %v", without.Architectures, want)
	}
	with.Architectures, without.Architectures = nil, nil
	if !reflect.DeepEqual(with, without) {
		t.Fatal("dropping x32 changed more than the architecture list")
	}
}
