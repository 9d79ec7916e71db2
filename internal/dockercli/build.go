package dockercli

import (
	"archive/tar"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/moby/moby/api/types/jsonstream"
	"github.com/moby/moby/client"
	"github.com/moby/moby/client/pkg/jsonmessage"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// BuildRequest is `skiff build` sent to the engine.
type BuildRequest struct {
	ContextDir string
	// Dockerfile is a path (absolute, or relative to ContextDir); empty
	// means ContextDir/Dockerfile.
	Dockerfile string
	Tags       []string
	BuildArgs  map[string]string
	Target     string
	NoCache    bool
	Quiet      bool
	Platform   string
}

// EngineHost is the engine address the verbs use: host if set, else
// $DOCKER_HOST, else DefaultHost.
func EngineHost(host string) string {
	if host != "" {
		return host
	}
	if h := os.Getenv("DOCKER_HOST"); h != "" {
		return h
	}
	return DefaultHost
}

// EngineReachable reports whether something answers at a unix-socket
// engine address.
func EngineReachable(host string) bool {
	u, err := url.Parse(host)
	if err != nil || u.Scheme != "unix" {
		return false
	}
	c, err := net.DialTimeout("unix", u.Path, 500*time.Millisecond)
	if err != nil {
		return false
	}
	c.Close()
	return true
}

// Build sends the context to the engine's /build and shows its progress
// on out, as `docker build` does; with Quiet only the image ID.
func Build(ctx context.Context, host string, r BuildRequest, out io.Writer) error {
	api, err := client.New(client.WithHost(host), client.WithAPIVersionNegotiation(), client.WithUserAgent("skiff-cli"))
	if err != nil {
		return err
	}
	defer api.Close()
	df := r.Dockerfile
	if df == "" {
		df = "Dockerfile"
	}
	if !filepath.IsAbs(df) {
		df = filepath.Join(r.ContextDir, df)
	}
	pr, pw := io.Pipe()
	name := make(chan string, 1)
	go func() { pw.CloseWithError(tarContext(r.ContextDir, df, pw, name)) }()
	opts := client.ImageBuildOptions{
		Tags:           r.Tags,
		Dockerfile:     <-name,
		NoCache:        r.NoCache,
		SuppressOutput: r.Quiet,
		Target:         r.Target,
		Remove:         true,
		BuildArgs:      map[string]*string{},
	}
	if r.Platform != "" {
		p, err := ParsePlatform(r.Platform)
		if err != nil {
			return err
		}
		opts.Platforms = []ocispec.Platform{p}
	}
	for k, v := range r.BuildArgs {
		opts.BuildArgs[k] = &v
	}
	res, err := api.ImageBuild(ctx, pr, opts)
	if err != nil {
		pr.CloseWithError(err)
		return err
	}
	defer res.Body.Close()
	if r.Quiet {
		// The engine prints nothing; the image ID arrives as aux.
		return jsonmessage.DisplayJSONMessagesStream(res.Body, io.Discard, 0, false, func(m jsonstream.Message) {
			var aux struct{ ID string }
			if m.Aux != nil && json.Unmarshal(*m.Aux, &aux) == nil && aux.ID != "" {
				fmt.Fprintln(out, aux.ID)
			}
		})
	}
	fd, isTerm := terminalFd(out)
	return jsonmessage.DisplayJSONMessagesStream(res.Body, out, fd, isTerm, nil)
}

// tarContext streams dir as a tar; a Dockerfile outside it is added under
// a name of its own. The Dockerfile's name in the tar goes to name first.
func tarContext(dir, dockerfile string, w io.Writer, name chan<- string) error {
	rel, err := filepath.Rel(dir, dockerfile)
	outside := err != nil || strings.HasPrefix(rel, "..")
	if outside {
		rel = ".skiff-dockerfile"
	}
	name <- filepath.ToSlash(rel)
	tw := tar.NewWriter(w)
	err = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if p == dir {
			return nil
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		link := ""
		if d.Type()&fs.ModeSymlink != 0 {
			if link, err = os.Readlink(p); err != nil {
				return err
			}
		}
		h, err := tar.FileInfoHeader(fi, link)
		if err != nil {
			return err
		}
		relp, _ := filepath.Rel(dir, p)
		h.Name = filepath.ToSlash(relp)
		h.Uname, h.Gname = "", ""
		if err := tw.WriteHeader(h); err != nil {
			return err
		}
		if d.Type().IsRegular() {
			f, err := os.Open(p)
			if err != nil {
				return err
			}
			defer f.Close()
			_, err = io.Copy(tw, f)
			return err
		}
		return nil
	})
	if err != nil {
		return err
	}
	if outside {
		b, err := os.ReadFile(dockerfile)
		if err != nil {
			return err
		}
		if err := tw.WriteHeader(&tar.Header{Name: rel, Mode: 0o644, Size: int64(len(b)), Typeflag: tar.TypeReg}); err != nil {
			return err
		}
		if _, err := tw.Write(b); err != nil {
			return err
		}
	}
	return tw.Close()
}
