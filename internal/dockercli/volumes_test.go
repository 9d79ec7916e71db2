package dockercli

import (
	"os"
	"path"
	"path/filepath"
	"strings"
	"testing"

	"github.com/moby/moby/api/types/mount"
)

func TestParseVolume(t *testing.T) {
	wd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		spec    string
		want    VolumeSpec
		bind    string
		wantErr string
	}{
		{spec: "/data", want: VolumeSpec{Type: mount.TypeVolume, Target: "/data"}},
		{spec: "cache:/var/cache", want: VolumeSpec{Type: mount.TypeVolume, Source: "cache", Target: "/var/cache"}, bind: "cache:/var/cache"},
		{spec: "/srv:/srv", want: VolumeSpec{Type: mount.TypeBind, Source: "/srv", Target: "/srv"}, bind: "/srv:/srv"},
		{spec: "/srv:/srv:ro", want: VolumeSpec{Type: mount.TypeBind, Source: "/srv", Target: "/srv", ReadOnly: true, Mode: "ro"}, bind: "/srv:/srv:ro"},
		{spec: "/srv:/srv:rw,z", want: VolumeSpec{Type: mount.TypeBind, Source: "/srv", Target: "/srv", Mode: "rw,z"}, bind: "/srv:/srv:rw,z"},
		{spec: "/srv:/srv:ro,rshared", want: VolumeSpec{Type: mount.TypeBind, Source: "/srv", Target: "/srv", ReadOnly: true, Mode: "ro,rshared"}, bind: "/srv:/srv:ro,rshared"},
		{spec: "v1:/x:nocopy", want: VolumeSpec{Type: mount.TypeVolume, Source: "v1", Target: "/x", Mode: "nocopy"}, bind: "v1:/x:nocopy"},
		{spec: "./conf:/etc/app", want: VolumeSpec{Type: mount.TypeBind, Source: filepath.Join(wd, "conf"), Target: "/etc/app"}, bind: filepath.Join(wd, "conf") + ":/etc/app"},
		{spec: "", wantErr: "invalid empty volume spec"},
		{spec: "data", wantErr: "invalid volume specification: 'data': invalid mount config for type \"volume\": invalid mount path: 'data' mount path must be absolute"},
		{spec: "a:b", wantErr: "invalid volume specification: 'a:b': invalid mount config for type \"volume\": invalid mount path: 'b' mount path must be absolute"},
		{spec: "/a:b", wantErr: "invalid mount config for type \"bind\": invalid mount path: 'b' mount path must be absolute"},
		{spec: "/foo:ro", wantErr: "invalid volume specification: '/foo:ro'"},
		{spec: ":/x", wantErr: "invalid spec: :/x: empty section between colons"},
		{spec: "/a:/b:", wantErr: "invalid spec: /a:/b:: empty section between colons"},
		{spec: "/a:/b:xx", wantErr: "invalid mode: xx"},
		{spec: "/a:/b:ro,rw", wantErr: "invalid mode: ro,rw"},
		{spec: "/a:/b:ro:z", wantErr: "invalid volume specification: '/a:/b:ro:z'"},
		{spec: "/a:/", wantErr: "destination can't be '/'"},
		{spec: "bad name:/x", wantErr: `"bad name" includes invalid characters for a local volume name`},
		{spec: "x:/y", wantErr: `"x" includes invalid characters for a local volume name`},
	}
	for _, tt := range tests {
		t.Run(tt.spec, func(t *testing.T) {
			got, err := ParseVolume(tt.spec)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got != tt.want {
				t.Errorf("got %+v, want %+v", got, tt.want)
			}
			if got.Bind() != tt.bind {
				t.Errorf("bind %q, want %q", got.Bind(), tt.bind)
			}
		})
	}
}

func TestParseMount(t *testing.T) {
	wd, _ := os.Getwd()
	tests := []struct {
		value   string
		want    mount.Mount
		wantErr string
	}{
		{value: "type=bind,source=/src,target=/dst,readonly", want: mount.Mount{Type: mount.TypeBind, Source: "/src", Target: "/dst", ReadOnly: true}},
		{value: "type=bind,src=./rel,dst=/dst,bind-propagation=rshared", want: mount.Mount{Type: mount.TypeBind, Source: filepath.Join(wd, "rel"), Target: "/dst",
			BindOptions: &mount.BindOptions{Propagation: mount.PropagationRShared}}},
		{value: "source=data,target=/data", want: mount.Mount{Type: mount.TypeVolume, Source: "data", Target: "/data"}},
		{value: "type=volume,src=data,dst=/d,volume-nocopy,volume-label=a=b,volume-opt=o=v,ro=false", want: mount.Mount{Type: mount.TypeVolume, Source: "data", Target: "/d",
			VolumeOptions: &mount.VolumeOptions{NoCopy: true, Labels: map[string]string{"a": "b"}, DriverConfig: &mount.Driver{Options: map[string]string{"o": "v"}}}}},
		{value: "type=tmpfs,destination=/t,tmpfs-size=1m,tmpfs-mode=1770", want: mount.Mount{Type: mount.TypeTmpfs, Target: "/t",
			TmpfsOptions: &mount.TmpfsOptions{SizeBytes: 1 << 20, Mode: 0o1770}}},
		{value: `type=bind,"source=/a,b",target=/c`, want: mount.Mount{Type: mount.TypeBind, Source: "/a,b", Target: "/c"}},
		{value: "type=volume", wantErr: "target is required"},
		{value: "type=foo,target=/x", wantErr: `mount type "foo" is not supported`},
		{value: "type=bind,target=/x", wantErr: "source is required when specifying bind mounts"},
		{value: "type=tmpfs,source=x,target=/x", wantErr: "source must not be specified for tmpfs mounts"},
		{value: "type=bind,src=/a,target=/x,volume-nocopy", wantErr: "cannot mix 'volume-*' options with mount type 'bind'"},
		{value: "type=volume,target=/x,tmpfs-size=1m", wantErr: "cannot mix 'tmpfs-*' options with mount type 'volume'"},
		{value: "target=relative", wantErr: "invalid mount path: 'relative' mount path must be absolute"},
		{value: "target=/x,bogus", wantErr: "invalid field 'bogus' must be a key=value pair"},
		{value: "target=/x,color=red", wantErr: "unexpected key 'color' in 'color=red'"},
		{value: "target=/x,readonly=maybe", wantErr: "invalid value for readonly: maybe"},
		{value: "type=tmpfs,target=/x,tmpfs-size=big", wantErr: "invalid value for tmpfs-size: big"},
		{value: "type=tmpfs,target=/x,tmpfs-mode=999", wantErr: "invalid value for tmpfs-mode: 999"},
		{value: `"unterminated`, wantErr: "extraneous or missing"},
	}
	for _, tt := range tests {
		t.Run(tt.value, func(t *testing.T) {
			got, err := ParseMount(tt.value)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !equalJSON(got, tt.want) {
				t.Errorf("got %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestParseTmpfs(t *testing.T) {
	target, opts, err := ParseTmpfs("/run:rw,size=64m")
	if err != nil || target != "/run" || opts != "rw,size=64m" {
		t.Errorf("got %q %q %v", target, opts, err)
	}
	if _, _, err := ParseTmpfs("run"); err == nil {
		t.Error("relative tmpfs path accepted")
	}
}

// FuzzParseVolume checks that no input panics and that what parses is
// consistent: an absolute target that is not /, a source of the right
// kind, and a bind string that parses back to the same spec.
func FuzzParseVolume(f *testing.F) {
	for _, s := range []string{"/data", "name:/data", "/a:/b:ro", "/a:/b:rw,z,nocopy", "./x:/y", "a:b", ":", "::", "/:/", "c:\\x:/y", "n:/d:ro,ro"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, spec string) {
		v, err := ParseVolume(spec)
		if err != nil {
			return
		}
		if !path.IsAbs(v.Target) || path.Clean(v.Target) == "/" {
			t.Fatalf("%q: target %q", spec, v.Target)
		}
		switch v.Type {
		case mount.TypeBind:
			if !path.IsAbs(v.Source) {
				t.Fatalf("%q: bind source %q not absolute", spec, v.Source)
			}
		case mount.TypeVolume:
			if strings.ContainsAny(v.Source, "/:") {
				t.Fatalf("%q: volume name %q", spec, v.Source)
			}
		default:
			t.Fatalf("%q: type %q", spec, v.Type)
		}
		if b := v.Bind(); b != "" {
			again, err := ParseVolume(b)
			if err != nil || again != v {
				t.Fatalf("%q: bind %q parses to %+v, %v; want %+v", spec, b, again, err, v)
			}
		}
	})
}
