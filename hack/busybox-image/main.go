// Command busybox-image makes the busybox base image that Skiff's tests and
// examples build on, from Debian's busybox-static package, since these
// machines reach no container registry.
//
//	busybox-image -deb busybox-static_*.deb -o-layout DIR -o-tar FILE
//	busybox-image -busybox /bin/busybox -o-tar FILE
//
// The image, skiff.local/busybox:latest (linux/amd64), has one layer:
// /bin/busybox, a symlink in /bin for every applet the binary lists,
// /etc/passwd and /etc/group with root and nobody, /tmp (1777), /root and
// /home. All timestamps are fixed (-epoch, default 0), so the same binary
// always gives the same image digest. It is written as an OCI image layout
// and/or a docker-archive tarball (what `docker load` and `skiff load` read).
// hack/busybox-image.sh fetches the package with `apt-get download`.
package main

import (
	"archive/tar"
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// Reference is the name the image is written under.
const Reference = "skiff.local/busybox:latest"

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "busybox-image:", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	fs := flag.NewFlagSet("busybox-image", flag.ContinueOnError)
	deb := fs.String("deb", "", "path of Debian's busybox-static .deb")
	bin := fs.String("busybox", "", "path of an installed static busybox binary (instead of -deb)")
	layoutDir := fs.String("o-layout", "", "write an OCI image layout to this directory")
	tarFile := fs.String("o-tar", "", "write a docker-archive tarball to this file")
	epoch := fs.Int64("epoch", 0, "timestamp (seconds since 1970) of every file and of the image")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if (*deb == "") == (*bin == "") {
		return errors.New("give exactly one of -deb and -busybox")
	}
	if *layoutDir == "" && *tarFile == "" {
		return errors.New("give -o-layout, -o-tar or both")
	}

	var busybox []byte
	var err error
	if *deb != "" {
		busybox, err = BusyboxFromDeb(*deb)
	} else {
		busybox, err = os.ReadFile(*bin)
	}
	if err != nil {
		return err
	}
	img, err := Build(busybox, time.Unix(*epoch, 0).UTC())
	if err != nil {
		return err
	}
	if *layoutDir != "" {
		if err := WriteLayout(*layoutDir, img); err != nil {
			return err
		}
	}
	if *tarFile != "" {
		if err := WriteTarball(*tarFile, img); err != nil {
			return err
		}
	}
	d, err := img.Digest()
	if err != nil {
		return err
	}
	fmt.Printf("%s %s\n", Reference, d)
	return nil
}

// BusyboxFromDeb returns /bin/busybox from a busybox-static package, read
// with dpkg-deb (which handles every compression Debian uses).
func BusyboxFromDeb(deb string) ([]byte, error) {
	cmd := exec.Command("dpkg-deb", "--fsys-tarfile", deb)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("dpkg-deb: %w", err)
	}
	var busybox []byte
	tr := tar.NewReader(out)
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			cmd.Wait()
			return nil, fmt.Errorf("%s: %w (%s)", deb, err, strings.TrimSpace(stderr.String()))
		}
		if strings.TrimPrefix(hdr.Name, ".") == "/bin/busybox" && hdr.Typeflag == tar.TypeReg {
			if busybox, err = io.ReadAll(tr); err != nil {
				cmd.Wait()
				return nil, fmt.Errorf("%s: %w", deb, err)
			}
		}
	}
	if err := cmd.Wait(); err != nil {
		return nil, fmt.Errorf("dpkg-deb --fsys-tarfile %s: %w (%s)", deb, err, strings.TrimSpace(stderr.String()))
	}
	if busybox == nil {
		return nil, fmt.Errorf("%s has no /bin/busybox: is it busybox-static?", deb)
	}
	return busybox, nil
}

// Applets runs the binary with --list and returns the applet names, sorted.
func Applets(busybox []byte) ([]string, error) {
	dir, err := os.MkdirTemp("", "busybox-image-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	p := filepath.Join(dir, "busybox")
	if err := os.WriteFile(p, busybox, 0o755); err != nil {
		return nil, err
	}
	out, err := exec.Command(p, "--list").Output()
	if err != nil {
		return nil, fmt.Errorf("busybox --list: %w", err)
	}
	var applets []string
	for _, a := range strings.Fields(string(out)) {
		if a != "busybox" && !strings.Contains(a, "/") {
			applets = append(applets, a)
		}
	}
	if len(applets) == 0 {
		return nil, errors.New("busybox --list printed no applets")
	}
	sort.Strings(applets)
	return applets, nil
}

const (
	passwd = "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n"
	group  = "root:x:0:\nnogroup:x:65534:\nnobody:x:65534:\n"
)

// RootfsTar returns the uncompressed layer: the rootfs, entries sorted,
// every time set to mtime, owned by root.
func RootfsTar(busybox []byte, applets []string, mtime time.Time) ([]byte, error) {
	type entry struct {
		hdr  tar.Header
		body []byte
	}
	entries := []entry{
		{hdr: tar.Header{Typeflag: tar.TypeDir, Name: "bin/", Mode: 0o755}},
		{hdr: tar.Header{Typeflag: tar.TypeReg, Name: "bin/busybox", Mode: 0o755}, body: busybox},
		{hdr: tar.Header{Typeflag: tar.TypeDir, Name: "etc/", Mode: 0o755}},
		{hdr: tar.Header{Typeflag: tar.TypeReg, Name: "etc/group", Mode: 0o644}, body: []byte(group)},
		{hdr: tar.Header{Typeflag: tar.TypeReg, Name: "etc/passwd", Mode: 0o644}, body: []byte(passwd)},
		{hdr: tar.Header{Typeflag: tar.TypeDir, Name: "home/", Mode: 0o755}},
		{hdr: tar.Header{Typeflag: tar.TypeDir, Name: "root/", Mode: 0o700}},
		{hdr: tar.Header{Typeflag: tar.TypeDir, Name: "tmp/", Mode: 0o1777}},
	}
	for _, a := range applets {
		entries = append(entries, entry{hdr: tar.Header{Typeflag: tar.TypeSymlink, Name: "bin/" + a, Linkname: "busybox", Mode: 0o777}})
	}
	sort.SliceStable(entries, func(i, j int) bool { return entries[i].hdr.Name < entries[j].hdr.Name })

	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range entries {
		hdr := e.hdr
		hdr.ModTime = mtime
		hdr.Size = int64(len(e.body))
		hdr.Format = tar.FormatUSTAR
		if err := tw.WriteHeader(&hdr); err != nil {
			return nil, fmt.Errorf("%s: %w", hdr.Name, err)
		}
		if _, err := tw.Write(e.body); err != nil {
			return nil, err
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// Build makes the image from a static busybox binary. The result depends
// only on the binary and created.
func Build(busybox []byte, created time.Time) (v1.Image, error) {
	applets, err := Applets(busybox)
	if err != nil {
		return nil, err
	}
	rootfs, err := RootfsTar(busybox, applets, created)
	if err != nil {
		return nil, err
	}
	layer, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(rootfs)), nil
	}, tarball.WithMediaType(types.OCILayer))
	if err != nil {
		return nil, err
	}
	img := mutate.MediaType(empty.Image, types.OCIManifestSchema1)
	img = mutate.ConfigMediaType(img, types.OCIConfigJSON)
	img, err = mutate.Append(img, mutate.Addendum{
		Layer: layer,
		History: v1.History{
			Created:   v1.Time{Time: created},
			CreatedBy: "hack/busybox-image: busybox-static, " + fmt.Sprint(len(applets)) + " applets",
			Comment:   "skiff busybox base image",
		},
	})
	if err != nil {
		return nil, err
	}
	cfg, err := img.ConfigFile()
	if err != nil {
		return nil, err
	}
	cfg = cfg.DeepCopy()
	cfg.Architecture = "amd64"
	cfg.OS = "linux"
	cfg.Created = v1.Time{Time: created}
	cfg.Config.Env = []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"}
	cfg.Config.Cmd = []string{"sh"}
	return mutate.ConfigFile(img, cfg)
}

// WriteLayout writes img as the only image of an OCI image layout at dir,
// replacing its index, annotated with its name the ways podman/skopeo
// ("org.opencontainers.image.ref.name": the tag) and containerd
// ("io.containerd.image.name": the full reference) look it up.
func WriteLayout(dir string, img v1.Image) error {
	p, err := layout.Write(dir, empty.Index)
	if err != nil {
		return fmt.Errorf("oci layout %s: %w", dir, err)
	}
	ref, err := name.NewTag(Reference)
	if err != nil {
		return err
	}
	err = p.AppendImage(img, layout.WithAnnotations(map[string]string{
		"org.opencontainers.image.ref.name": ref.TagStr(),
		"io.containerd.image.name":          ref.Name(),
	}))
	if err != nil {
		return fmt.Errorf("oci layout %s: %w", dir, err)
	}
	return nil
}

// WriteTarball writes img as a docker-archive tarball tagged Reference.
func WriteTarball(file string, img v1.Image) error {
	ref, err := name.NewTag(Reference)
	if err != nil {
		return err
	}
	if err := tarball.WriteToFile(file, ref, img); err != nil {
		return fmt.Errorf("docker archive %s: %w", file, err)
	}
	return nil
}
