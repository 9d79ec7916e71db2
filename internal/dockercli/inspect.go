package dockercli

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"text/template"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/client"
	"github.com/spf13/cobra"
)

// inspectFunc fetches one object: its typed value and its raw JSON.
type inspectFunc func(ctx context.Context, api *client.Client, ref string, size bool) (any, []byte, error)

var inspectors = []struct {
	kind string
	get  inspectFunc
}{
	{"container", func(ctx context.Context, api *client.Client, ref string, size bool) (any, []byte, error) {
		r, err := api.ContainerInspect(ctx, ref, client.ContainerInspectOptions{Size: size})
		return r.Container, r.Raw, err
	}},
	{"image", func(ctx context.Context, api *client.Client, ref string, _ bool) (any, []byte, error) {
		var raw bytes.Buffer
		r, err := api.ImageInspect(ctx, ref, client.ImageInspectWithRawResponse(&raw))
		return r.InspectResponse, raw.Bytes(), err
	}},
	{"network", func(ctx context.Context, api *client.Client, ref string, _ bool) (any, []byte, error) {
		r, err := api.NetworkInspect(ctx, ref, client.NetworkInspectOptions{})
		return r.Network, r.Raw, err
	}},
	{"volume", func(ctx context.Context, api *client.Client, ref string, _ bool) (any, []byte, error) {
		r, err := api.VolumeInspect(ctx, ref, client.VolumeInspectOptions{})
		return r.Volume, r.Raw, err
	}},
}

// newInspectCmd makes `inspect` (any object; kind "" tries container,
// image, network, volume in that order unless --type says) and the
// inspect subcommands of the groups (kind fixed).
func (c *cli) newInspectCmd(kind string) *cobra.Command {
	var (
		format, typ string
		size        bool
	)
	use, short := "inspect [OPTIONS] NAME|ID [NAME|ID...]", "Return low-level information on Docker objects"
	if kind != "" {
		use, short = "inspect [OPTIONS] "+strings.ToUpper(kind)+" ["+strings.ToUpper(kind)+"...]", "Display detailed information on one or more "+kind+"s"
	}
	cmd := &cobra.Command{
		Use:   use,
		Short: short,
		Args:  requiresMinArgs(1),
		RunE: run(func(cmd *cobra.Command, args []string) error {
			want := kind
			if typ != "" {
				want = typ
				if !knownKind(typ) {
					return fmt.Errorf("%q is not a valid value for --type", typ)
				}
			}
			var tmpl *template.Template
			if format != "" && format != "json" {
				t, err := parseTemplate(format)
				if err != nil {
					return StatusError{Status: err.Error(), StatusCode: 64, Cause: err}
				}
				tmpl = t
			}
			api, err := c.client()
			if err != nil {
				return err
			}
			var (
				typed []any
				raws  [][]byte
				errs  []error
				out   bytes.Buffer
			)
			for _, ref := range args {
				v, raw, err := inspectOne(cmd.Context(), api, ref, want, size)
				if err != nil {
					errs = append(errs, err)
					continue
				}
				if tmpl == nil {
					typed, raws = append(typed, v), append(raws, raw)
					continue
				}
				if err := executeInspect(&out, tmpl, v, raw); err != nil {
					errs = append(errs, err)
				}
			}
			if tmpl == nil {
				if err := writeInspectJSON(c.out(), typed, raws); err != nil {
					return err
				}
			} else if out.Len() == 0 {
				fmt.Fprintln(c.out())
			} else {
				_, _ = io.Copy(c.out(), &out)
			}
			return errors.Join(errs...)
		}),
	}
	fs := cmd.Flags()
	fs.StringVarP(&format, "format", "f", "", "Format output using a custom template ('json' or a Go template)")
	if kind == "" || kind == "container" {
		fs.BoolVarP(&size, "size", "s", false, "Display total file sizes if the type is container")
	}
	if kind == "" {
		fs.StringVar(&typ, "type", "", "Only inspect objects of the given type (container, image, network, volume)")
	}
	return cmd
}

func knownKind(k string) bool {
	for _, i := range inspectors {
		if i.kind == k {
			return true
		}
	}
	return false
}

// inspectOne finds ref among the objects of kind (all kinds, in order,
// when kind is empty).
func inspectOne(ctx context.Context, api *client.Client, ref, kind string, size bool) (any, []byte, error) {
	for _, i := range inspectors {
		if kind != "" && i.kind != kind {
			continue
		}
		v, raw, err := i.get(ctx, api, ref, size)
		if err != nil {
			if kind == "" && (cerrdefs.IsNotFound(err) || strings.Contains(err.Error(), "invalid reference format")) {
				continue
			}
			return nil, nil, err
		}
		return v, raw, nil
	}
	if kind != "" {
		return nil, nil, fmt.Errorf("Error: No such %s: %s", kind, ref)
	}
	return nil, nil, fmt.Errorf("Error: No such object: %s", ref)
}

// executeInspect runs the template on the typed value and, when that
// fails (a field only the raw JSON has), on the raw JSON.
func executeInspect(out *bytes.Buffer, tmpl *template.Template, typed any, raw []byte) error {
	var b bytes.Buffer
	if err := tmpl.Execute(&b, typed); err == nil {
		out.Write(b.Bytes())
		out.WriteByte('\n')
		return nil
	}
	var v any
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	if err := dec.Decode(&v); err != nil {
		return fmt.Errorf("unable to read inspect data: %w", err)
	}
	b.Reset()
	if err := template.Must(tmpl.Clone()).Option("missingkey=error").Execute(&b, v); err != nil {
		return fmt.Errorf("template parsing error: %w", err)
	}
	out.Write(b.Bytes())
	out.WriteByte('\n')
	return nil
}

// writeInspectJSON prints the objects as an indented JSON array, from
// the engine's own JSON when there is one.
func writeInspectJSON(w io.Writer, typed []any, raws [][]byte) error {
	if len(typed) == 0 {
		_, err := fmt.Fprintln(w, "[]")
		return err
	}
	var all bytes.Buffer
	all.WriteByte('[')
	for i, raw := range raws {
		if len(raw) == 0 {
			b, err := json.Marshal(typed[i])
			if err != nil {
				return err
			}
			raw = b
		}
		if i > 0 {
			all.WriteByte(',')
		}
		all.Write(bytes.TrimSpace(raw))
	}
	all.WriteByte(']')
	var out bytes.Buffer
	if err := json.Indent(&out, all.Bytes(), "", "    "); err != nil {
		return err
	}
	out.WriteByte('\n')
	_, err := io.Copy(w, &out)
	return err
}
