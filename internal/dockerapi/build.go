package dockerapi

import (
	"bufio"
	"bytes"
	"compress/bzip2"
	"compress/gzip"
	"encoding/json"
	"fmt"
	"io"
	"net/http"

	"github.com/moby/moby/api/types/build"
)

// maxQuietBuffer bounds the build output kept for a quiet build (shown
// only if it fails).
const maxQuietBuffer = 1 << 20

// build runs the classic builder's POST /build: the body is the build
// context (a tar, possibly gzip- or bzip2-compressed), the output is a
// JSON stream of {"stream": ...} lines ending with {"aux":{"ID": ...}}
// and, unless quiet, "Successfully built/tagged" lines.
func (s *Server) build(w http.ResponseWriter, r *http.Request, p params) error {
	q, err := query(r)
	if err != nil {
		return err
	}
	opts := BuildOptions{
		Tags:       q["t"],
		Dockerfile: q.get("dockerfile"),
		Target:     q.get("target"),
		NoCache:    q.flag("nocache"),
		Quiet:      q.flag("q"),
		Remove:     q.flagOr("rm", true) || q.flag("forcerm"),
	}
	switch {
	case q.get("remote") != "":
		return &notImplementedError{what: "building from a remote context"}
	case q.get("version") == string(build.BuilderBuildKit):
		return &notImplementedError{what: "BuildKit (use the classic builder: DOCKER_BUILDKIT=0)"}
	case q.get("version") != "" && q.get("version") != string(build.BuilderV1):
		return invalidf("invalid version %q", q.get("version"))
	}
	if p.version.atLeast("1.32") {
		if opts.Platform = q.get("platform"); opts.Platform != "" {
			if err := s.checkPlatform(opts.Platform); err != nil {
				return err
			}
		}
	}
	if ba := q.get("buildargs"); ba != "" {
		var args map[string]*string
		if err := json.Unmarshal([]byte(ba), &args); err != nil {
			return invalidf("invalid value for \"buildargs\": %v", err)
		}
		opts.BuildArgs = make(map[string]string, len(args))
		for k, v := range args {
			if v != nil { // declared without a value: the ARG's default applies
				opts.BuildArgs[k] = *v
			}
		}
	}
	if opts.Labels, err = q.jsonMap("labels"); err != nil {
		return err
	}
	body, err := decompressContext(r.Body)
	if err != nil {
		return err
	}

	// Progress goes out while the context is still coming in.
	_ = http.NewResponseController(w).EnableFullDuplex()
	ctx, cancel := streamContext(r)
	defer cancel()
	ps := newProgressStream(w, streamLines)
	var out io.Writer = ps
	quietBuf := &limitedBuffer{max: maxQuietBuffer}
	if opts.Quiet {
		out = quietBuf
	}
	id, err := s.b.ImageBuild(ctx, body, opts, out)
	if err != nil {
		if opts.Quiet && quietBuf.Len() > 0 {
			_, _ = ps.Write(quietBuf.Bytes())
		}
		return ps.finish(err)
	}
	aux, err := auxMessage(build.Result{ID: id})
	if err != nil {
		return ps.finish(err)
	}
	if err := ps.send(aux); err != nil {
		return ps.finish(err)
	}
	if opts.Quiet {
		_, _ = fmt.Fprintln(ps, id)
	} else {
		_, _ = fmt.Fprintf(ps, "Successfully built %s\n", shortID(id))
		for _, t := range opts.Tags {
			_, _ = fmt.Fprintf(ps, "Successfully tagged %s\n", t)
		}
	}
	return ps.finish(nil)
}

// decompressContext undoes the compressions the docker CLI may apply to
// a build context.
func decompressContext(body io.Reader) (io.Reader, error) {
	br := bufio.NewReader(body)
	head, _ := br.Peek(6)
	switch {
	case bytes.HasPrefix(head, []byte{0x1f, 0x8b}):
		zr, err := gzip.NewReader(br)
		if err != nil {
			return nil, invalidf("invalid gzip build context: %v", err)
		}
		return zr, nil
	case bytes.HasPrefix(head, []byte("BZh")):
		return bzip2.NewReader(br), nil
	case bytes.HasPrefix(head, []byte{0xfd, '7', 'z', 'X', 'Z', 0}):
		return nil, invalidf("xz-compressed build contexts are not supported: send a plain or gzip tar")
	}
	return br, nil
}

// shortID is the 12-character form of an image ID.
func shortID(id string) string {
	if len(id) > 7 && id[:7] == "sha256:" {
		id = id[7:]
	}
	return id[:min(len(id), 12)]
}

// limitedBuffer keeps the first max bytes written to it.
type limitedBuffer struct {
	bytes.Buffer
	max int
}

func (b *limitedBuffer) Write(p []byte) (int, error) {
	if room := b.max - b.Len(); room > 0 {
		b.Buffer.Write(p[:min(len(p), room)])
	}
	return len(p), nil
}
