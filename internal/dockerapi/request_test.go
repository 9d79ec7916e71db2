package dockerapi

import (
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"
	"time"

	"skiff.dev/skiff/internal/errdefs"
)

func TestParseFilters(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    Filters
		wantErr bool
	}{
		{"empty", "", nil, false},
		{"blank", "  ", nil, false},
		{"current encoding", `{"label":{"b=2":true,"a=1":true},"status":{"running":true}}`, Filters{"label": {"a=1", "b=2"}, "status": {"running"}}, false},
		{"legacy encoding", `{"status":["exited","running","exited"]}`, Filters{"status": {"exited", "running"}}, false},
		{"mixed", `{"a":{"x":true},"b":["y"]}`, Filters{"a": {"x"}, "b": {"y"}}, false},
		{"false values still count", `{"dangling":{"true":false}}`, Filters{"dangling": {"true"}}, false},
		{"empty object", `{}`, Filters{}, false},
		{"not an object", `["a"]`, nil, true},
		{"string value", `{"status":"running"}`, nil, true},
		{"numbers", `{"status":[1]}`, nil, true},
		{"broken", `{"status":`, nil, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseFilters(tt.in)
			if (err != nil) != tt.wantErr {
				t.Fatalf("error %v, want error %v", err, tt.wantErr)
			}
			if err != nil && !errors.Is(err, errdefs.ErrInvalid) {
				t.Errorf("error %v is not ErrInvalid", err)
			}
			if !tt.wantErr && !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got %v, want %v", got, tt.want)
			}
		})
	}
}

func TestParseUnixTime(t *testing.T) {
	tests := []struct {
		name, in string
		want     time.Time
		wantErr  bool
	}{
		{"empty", "", time.Time{}, false},
		{"seconds", "1700000000", time.Unix(1700000000, 0), false},
		{"fraction", "1700000000.5", time.Unix(1700000000, 500000000), false},
		{"nanoseconds", "1700000000.000000001", time.Unix(1700000000, 1), false},
		{"too precise is cut", "1.1234567891234", time.Unix(1, 123456789), false},
		{"negative", "-5", time.Unix(-5, 0), false},
		{"empty fraction", "7.", time.Unix(7, 0), false},
		{"duration is the CLI's job", "10m", time.Time{}, true},
		{"letters in fraction", "1.5x", time.Time{}, true},
		{"plus sign", "+5", time.Time{}, true},
		{"only a dot", ".5", time.Time{}, true},
		{"huge fraction", "1." + strings.Repeat("1", 21), time.Time{}, true},
		{"overflow", "99999999999999999999", time.Time{}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseUnixTime(tt.in)
			if (err != nil) != tt.wantErr {
				t.Fatalf("error %v, want error %v", err, tt.wantErr)
			}
			if !got.Equal(tt.want) {
				t.Errorf("got %v, want %v", got, tt.want)
			}
		})
	}
}

func TestRouting(t *testing.T) {
	s := New(nil, Options{})
	tests := []struct {
		name, method, path string
		wantVersion        string
		wantVars           map[string]string
		wantFound          bool
	}{
		{"plain", "GET", "/containers/json", "", nil, true},
		{"versioned", "GET", "/v1.41/containers/json", "1.41", nil, true},
		{"var", "POST", "/containers/abc/start", "", map[string]string{"name": "abc"}, true},
		{"image with slashes", "GET", "/v1.50/images/localhost:5000/a/b:c/json", "1.50", map[string]string{"name": "localhost:5000/a/b:c"}, true},
		{"image delete", "DELETE", "/images/a/b", "", map[string]string{"name": "a/b"}, true},
		{"image named json", "GET", "/images/json/json", "", map[string]string{"name": "json"}, true},
		{"image list is not an image", "GET", "/images/json", "", nil, true},
		{"empty var", "POST", "/containers//start", "", nil, false},
		{"empty image segment", "GET", "/images/a//b/json", "", nil, false},
		{"trailing slash", "GET", "/containers/json/", "", nil, false},
		{"wrong method", "PUT", "/containers/json", "", nil, false},
		{"delete of a container named json", "DELETE", "/containers/json", "", map[string]string{"name": "json"}, true},
		{"version only", "GET", "/v1.41", "", nil, false},
		{"not a version", "GET", "/vx/containers/json", "", nil, false},
		{"root", "GET", "/", "", nil, false},
		{"no slash", "GET", "containers/json", "", nil, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v, rest := splitVersion(tt.path)
			h, vars := s.match(tt.method, rest)
			if v != tt.wantVersion || (h != nil) != tt.wantFound || tt.wantFound && !reflect.DeepEqual(vars, tt.wantVars) {
				t.Errorf("version %q, found %v, vars %v; want %q, %v, %v", v, h != nil, vars, tt.wantVersion, tt.wantFound, tt.wantVars)
			}
		})
	}
}

func TestReadJSON(t *testing.T) {
	type target struct {
		A int
		B struct{ C string }
	}
	tests := []struct {
		name, ct, body string
		legacy         []string
		want           target
		wantRemoved    string
		wantErr        string
	}{
		{"ok", "application/json", `{"A":1,"B":{"C":"x"}}`, nil, target{A: 1, B: struct{ C string }{"x"}}, "", ""},
		{"no content type", "", `{"A":1}`, nil, target{A: 1}, "", ""},
		{"charset", "application/json; charset=utf-8", `{"A":1}`, nil, target{A: 1}, "", ""},
		{"empty", "application/json", ``, nil, target{}, "", ""},
		{"null", "application/json", `null`, nil, target{}, "", ""},
		{"unknown", "application/json", `{"A":1,"Z":2}`, nil, target{}, "", `invalid JSON: unknown field "Z"`},
		{"unknown nested", "application/json", `{"B":{"D":1}}`, nil, target{}, "", `invalid JSON: unknown field "D"`},
		{"legacy top level", "application/json", `{"A":1,"Old":true}`, []string{"Old"}, target{A: 1}, "Old=true", ""},
		{"legacy nested, any case", "application/json", `{"b":{"old":"v","C":"x"}}`, []string{"B.Old"}, target{B: struct{ C string }{"x"}}, `B.Old="v"`, ""},
		{"legacy absent", "application/json", `{"A":1}`, []string{"Old", "B.Old"}, target{A: 1}, "", ""},
		{"wrong type", "application/json", `{"A":"one"}`, nil, target{}, "", "cannot unmarshal"},
		{"truncated", "application/json", `{"A":1`, nil, target{}, "", "unexpected end"},
		{"two values", "application/json", `{"A":1}{"A":2}`, nil, target{}, "", "after the JSON value"},
		{"array", "application/json", `[1]`, nil, target{}, "", "cannot unmarshal array"},
		{"text", "text/plain", `{"A":1}`, nil, target{}, "", "unsupported Content-Type"},
		{"bad content type", "a/b; ;", `{"A":1}`, nil, target{}, "", "malformed Content-Type"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest("POST", "/x", strings.NewReader(tt.body))
			if tt.ct != "" {
				r.Header.Set("Content-Type", tt.ct)
			}
			var got target
			removed, err := readJSON(httptest.NewRecorder(), r, &got, tt.legacy...)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) || statusOf(err) != http.StatusBadRequest {
					t.Fatalf("error %v (status %d), want 400 with %q", err, statusOf(err), tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got != tt.want {
				t.Errorf("decoded %+v, want %+v", got, tt.want)
			}
			var rm []string
			for k, v := range removed {
				rm = append(rm, k+"="+string(v))
			}
			if strings.Join(rm, ",") != tt.wantRemoved {
				t.Errorf("removed %v, want %q", rm, tt.wantRemoved)
			}
		})
	}
}

func TestStatusOf(t *testing.T) {
	tests := []struct {
		err  error
		want int
	}{
		{errdefs.ErrNotFound, 404},
		{errdefs.ErrConflict, 409},
		{errdefs.ErrAlreadyExists, 409},
		{errdefs.ErrInvalid, 400},
		{errdefs.ErrNotModified, 304},
		{errdefs.ErrUnavailable, 503},
		{errdefs.ErrUnauthorized, 401},
		{errNotImplemented, 501},
		{&http.MaxBytesError{Limit: 1}, 413},
		{errors.New("other"), 500},
	}
	for _, tt := range tests {
		t.Run(tt.err.Error(), func(t *testing.T) {
			wrapped := errors.Join(errors.New("context"), tt.err)
			if got := statusOf(wrapped); got != tt.want {
				t.Errorf("status %d, want %d", got, tt.want)
			}
		})
	}
}

func FuzzParseFilters(f *testing.F) {
	for _, s := range []string{"", `{"a":{"b":true}}`, `{"a":["b"]}`, `{"a":null}`, `{"a":{"b":1}}`, `[`, `{"":[""]}`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got, err := parseFilters(s)
		if err != nil {
			if !errors.Is(err, errdefs.ErrInvalid) {
				t.Fatalf("error %v is not ErrInvalid", err)
			}
			return
		}
		// What decoded re-encodes in the current form and decodes the same.
		enc := map[string]map[string]bool{}
		for k, vs := range got {
			enc[k] = map[string]bool{}
			for _, v := range vs {
				enc[k][v] = true
			}
		}
		b, _ := json.Marshal(enc)
		again, err := parseFilters(string(b))
		if err != nil || len(again) != len(got) {
			t.Fatalf("re-encoded %s: %v, %v", b, again, err)
		}
	})
}

func FuzzParseUnixTime(f *testing.F) {
	for _, s := range []string{"", "0", "1700000000.123", "-1", "1.", "x", "1.1.1", "9999999999999999999"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if _, err := parseUnixTime(s); err != nil && !errors.Is(err, errdefs.ErrInvalid) {
			t.Fatalf("error %v is not ErrInvalid", err)
		}
	})
}

func FuzzRouting(f *testing.F) {
	for _, s := range []string{"/v1.41/images/a/b/json", "/containers//x", "/v/", "/v1./x", "//", "/images/a/b/c/tag", "/v99999999999.1/_ping"} {
		f.Add("GET", s)
	}
	s := New(nil, Options{})
	f.Fuzz(func(t *testing.T, method, path string) {
		v, rest := splitVersion(path)
		if v != "" {
			_, _ = parseAPIVersion(v)
		}
		_, _ = s.match(method, rest)
	})
}
