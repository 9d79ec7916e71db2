package dockerapi

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"mime"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
)

// maxJSONBody bounds JSON request bodies (a container create with a big
// environment is a few KiB).
const maxJSONBody = 4 << 20

// query returns r's query parameters; a malformed query is a 400.
func query(r *http.Request) (queryValues, error) {
	v, err := url.ParseQuery(r.URL.RawQuery)
	if err != nil {
		return nil, invalidf("invalid query: %v", err)
	}
	return queryValues(v), nil
}

// queryValues reads query parameters the way dockerd does.
type queryValues map[string][]string

func (q queryValues) get(k string) string {
	if v := q[k]; len(v) > 0 {
		return v[0]
	}
	return ""
}

func (q queryValues) has(k string) bool { _, ok := q[k]; return ok }

// flag is false for "", "0", "no", "false" and "none", true otherwise.
func (q queryValues) flag(k string) bool {
	switch strings.ToLower(strings.TrimSpace(q.get(k))) {
	case "", "0", "no", "false", "none":
		return false
	}
	return true
}

// flagOr is flag, or def when the parameter is absent.
func (q queryValues) flagOr(k string, def bool) bool {
	if !q.has(k) {
		return def
	}
	return q.flag(k)
}

// integer parses an optional integer parameter.
func (q queryValues) integer(k string) (n int, set bool, err error) {
	s := q.get(k)
	if s == "" {
		return 0, false, nil
	}
	n, err = strconv.Atoi(s)
	if err != nil {
		return 0, false, invalidf("invalid value for %q: %q is not an integer", k, s)
	}
	return n, true, nil
}

// dimension parses a terminal height or width (empty is 0).
func (q queryValues) dimension(k string) (uint, error) {
	s := q.get(k)
	if s == "" {
		return 0, nil
	}
	n, err := strconv.ParseUint(s, 10, 32)
	if err != nil {
		return 0, invalidf("invalid value for %q: %q is not an unsigned integer", k, s)
	}
	return uint(n), nil
}

// filters decodes the `filters` parameter.
func (q queryValues) filters() (Filters, error) { return parseFilters(q.get("filters")) }

// jsonMap decodes a parameter holding a JSON object of strings (build's
// labels).
func (q queryValues) jsonMap(k string) (map[string]string, error) {
	s := q.get(k)
	if s == "" {
		return nil, nil
	}
	var m map[string]string
	if err := json.Unmarshal([]byte(s), &m); err != nil {
		return nil, invalidf("invalid value for %q: %v", k, err)
	}
	return m, nil
}

// parseFilters decodes the `filters` query parameter. Two encodings are
// accepted: the current {"key":{"value":true}} and the legacy
// {"key":["value"]}. Values come out sorted; "" gives nil.
func parseFilters(s string) (Filters, error) {
	if strings.TrimSpace(s) == "" {
		return nil, nil
	}
	var raw map[string]json.RawMessage
	if err := json.Unmarshal([]byte(s), &raw); err != nil {
		return nil, invalidf("invalid filters %q: want a JSON object like {\"label\":{\"a=b\":true}}", s)
	}
	f := make(Filters, len(raw))
	for k, v := range raw {
		var set map[string]bool
		if err := json.Unmarshal(v, &set); err == nil {
			vals := make([]string, 0, len(set))
			for val := range set {
				vals = append(vals, val)
			}
			slices.Sort(vals)
			f[k] = vals
			continue
		}
		var list []string
		if err := json.Unmarshal(v, &list); err != nil {
			return nil, invalidf("invalid filters: the value of %q must be an object of strings to booleans or a list of strings", k)
		}
		slices.Sort(list)
		f[k] = slices.Compact(list)
	}
	return f, nil
}

// parseUnixTime parses Docker's "seconds[.nanoseconds]" timestamps (the
// CLI converts "10m" or RFC 3339 to this form). "" is the zero time.
func parseUnixTime(s string) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	secs, frac, hasFrac := strings.Cut(s, ".")
	sec, err := strconv.ParseInt(secs, 10, 64)
	if err != nil || secs == "" || secs[0] == '+' {
		return time.Time{}, invalidf("invalid timestamp %q: want seconds since the epoch, optionally with .nanoseconds", s)
	}
	var nsec int64
	if hasFrac && frac != "" {
		if len(frac) > 20 || strings.Trim(frac, "0123456789") != "" {
			return time.Time{}, invalidf("invalid timestamp %q: bad fraction of a second", s)
		}
		frac = (frac + "000000000")[:9]
		nsec, _ = strconv.ParseInt(frac, 10, 64)
	}
	return time.Unix(sec, nsec).UTC(), nil
}

// readJSON decodes r's body into v strictly: unknown fields, trailing
// data, a non-JSON content type or a body over maxJSONBody are 400 (413).
// An empty body leaves v alone.
//
// Fields that older clients still send but the current types dropped are
// named in legacy by path ("Detach", "HostConfig.KernelMemory"); they are
// taken out before decoding and returned (by path) for the caller to
// honour or ignore.
func readJSON(w http.ResponseWriter, r *http.Request, v any, legacy ...string) (map[string]json.RawMessage, error) {
	if r.Body == nil || r.ContentLength == 0 {
		return nil, nil
	}
	if ct := r.Header.Get("Content-Type"); ct != "" {
		mt, _, err := mime.ParseMediaType(ct)
		if err != nil {
			return nil, invalidf("malformed Content-Type header (%s)", ct)
		}
		if mt != "application/json" {
			return nil, invalidf("unsupported Content-Type header (%s): must be 'application/json'", ct)
		}
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxJSONBody))
	if err != nil {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			return nil, err
		}
		return nil, invalidf("reading the request body: %v", err)
	}
	if len(bytes.TrimSpace(body)) == 0 {
		return nil, nil
	}
	var removed map[string]json.RawMessage
	if len(legacy) > 0 {
		body, removed = dropFields(body, legacy)
	}
	return removed, decodeStrict(body, v)
}

// decodeStrict decodes one JSON value with no unknown fields and nothing
// after it.
func decodeStrict(body []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			return invalidf("invalid JSON: unexpected end of the request body")
		}
		return invalidf("invalid JSON: %s", strings.TrimPrefix(err.Error(), "json: "))
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return invalidf("invalid JSON: unexpected content after the JSON value")
	}
	return nil
}

// dropFields removes the fields at paths (matched case-insensitively, as
// encoding/json matches names) from a JSON object. A body that is not an
// object is returned as it is, for the decoder to reject.
func dropFields(body []byte, paths []string) ([]byte, map[string]json.RawMessage) {
	var obj map[string]json.RawMessage
	if json.Unmarshal(body, &obj) != nil {
		return body, nil
	}
	removed := map[string]json.RawMessage{}
	changed := false
	for _, p := range paths {
		if dropPath(obj, strings.Split(p, "."), p, removed) {
			changed = true
		}
	}
	if !changed {
		return body, nil
	}
	out, err := json.Marshal(obj)
	if err != nil {
		return body, nil
	}
	return out, removed
}

func dropPath(obj map[string]json.RawMessage, path []string, full string, removed map[string]json.RawMessage) bool {
	for k, v := range obj {
		if !strings.EqualFold(k, path[0]) {
			continue
		}
		if len(path) == 1 {
			removed[full] = v
			delete(obj, k)
			return true
		}
		var inner map[string]json.RawMessage
		if json.Unmarshal(v, &inner) != nil || !dropPath(inner, path[1:], full, removed) {
			return false
		}
		b, err := json.Marshal(inner)
		if err != nil {
			return false
		}
		obj[k] = b
		return true
	}
	return false
}
