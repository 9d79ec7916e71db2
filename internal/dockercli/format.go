package dockercli

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"text/template"
	"time"
	"unicode/utf8"

	"github.com/docker/go-units"
)

// formatter renders rows for a --format value the way docker does: ""
// or "table" is the command's default table, "table TEMPLATE" a table
// with a header, "json" one JSON object per row, anything else a Go
// template executed per row. `\t` and `\n` in the value are tab and
// newline.
type formatter struct {
	table   bool
	tmpl    *template.Template
	headers headerRow
}

func newFormatter(format, defaultTable string, headers map[string]string) (*formatter, error) {
	switch strings.TrimSpace(format) {
	case "", "table":
		format = defaultTable
	case "json":
		format = "{{json .}}"
	}
	f := &formatter{headers: headers}
	if rest, ok := strings.CutPrefix(format, "table"); ok {
		f.table = true
		format = strings.TrimSpace(rest)
	}
	format = strings.NewReplacer(`\t`, "\t", `\n`, "\n").Replace(format)
	tmpl, err := parseTemplate(format)
	if err != nil {
		return nil, err
	}
	f.tmpl = tmpl
	return f, nil
}

func parseTemplate(format string) (*template.Template, error) {
	tmpl, err := template.New("").Funcs(templateFuncs).Parse(format)
	if err != nil {
		return nil, fmt.Errorf("template parsing error: %w", err)
	}
	return tmpl, nil
}

// write renders rows to out.
func (f *formatter) write(out io.Writer, rows []any) error {
	var w io.Writer = out
	var tw *tabwriter.Writer
	if f.table {
		tw = tabwriter.NewWriter(out, 10, 1, 3, ' ', 0)
		w = tw
		var head bytes.Buffer
		header := template.Must(f.tmpl.Clone()).Funcs(headerFuncs)
		if err := header.Execute(&head, f.headers); err == nil {
			fmt.Fprintln(w, head.String())
		}
	}
	for _, r := range rows {
		var b bytes.Buffer
		if err := f.tmpl.Execute(&b, r); err != nil {
			return fmt.Errorf("template: %w", err)
		}
		fmt.Fprintln(w, b.String())
	}
	if tw != nil {
		return tw.Flush()
	}
	return nil
}

// headerRow is the header of a table: field name -> column title.
type headerRow map[string]string

// Label titles a {{.Label "com.example.x"}} column ("X").
func (h headerRow) Label(name string) string {
	parts := strings.Split(name, ".")
	return strings.ToUpper(strings.NewReplacer("-", " ", "_", " ").Replace(parts[len(parts)-1]))
}

var templateFuncs = template.FuncMap{
	"json": func(v any) (string, error) {
		var b bytes.Buffer
		enc := json.NewEncoder(&b)
		enc.SetEscapeHTML(false)
		if err := enc.Encode(v); err != nil {
			return "", err
		}
		return strings.TrimSpace(b.String()), nil
	},
	"split": strings.Split,
	"join":  strings.Join,
	"title": func(s string) string {
		if s == "" {
			return s
		}
		return strings.ToUpper(s[:1]) + s[1:]
	},
	"lower": strings.ToLower,
	"upper": strings.ToUpper,
	"pad": func(s string, prefix, suffix int) string {
		if s == "" {
			return s
		}
		return strings.Repeat(" ", prefix) + s + strings.Repeat(" ", suffix)
	},
	"truncate": func(s string, n int) string {
		if utf8.RuneCountInString(s) <= n {
			return s
		}
		return string([]rune(s)[:n])
	},
	"println": fmt.Sprintln,
}

// headerFuncs make the functions pass the column title through.
var headerFuncs = template.FuncMap{
	"json":     func(v any) string { return fmt.Sprint(v) },
	"split":    func(v any, _ string) string { return fmt.Sprint(v) },
	"join":     func(v any, _ string) string { return fmt.Sprint(v) },
	"title":    func(v any) string { return fmt.Sprint(v) },
	"lower":    func(v any) string { return fmt.Sprint(v) },
	"upper":    func(v any) string { return fmt.Sprint(v) },
	"pad":      func(v any, _, _ int) string { return fmt.Sprint(v) },
	"truncate": func(v any, _ int) string { return fmt.Sprint(v) },
}

// ellipsis shortens s to n characters, the last one "…".
func ellipsis(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	if n <= 1 {
		return string(r[:n])
	}
	return string(r[:n-1]) + "…"
}

// shortID is the 12 characters docker shows of an ID.
func shortID(id string) string {
	id = strings.TrimPrefix(id, "sha256:")
	if len(id) > 12 {
		return id[:12]
	}
	return id
}

// ago is "2 seconds ago" for t, relative to now.
func ago(now, t time.Time) string {
	return units.HumanDuration(now.Sub(t)) + " ago"
}
