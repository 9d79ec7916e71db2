package registry

import (
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
)

// paginate applies the spec's n and last parameters to sorted items. It
// returns the page and whether more items follow.
func paginate(items []string, q url.Values) ([]string, int, bool, error) {
	if last := q.Get("last"); last != "" {
		i, _ := slices.BinarySearch(items, last)
		if i < len(items) && items[i] == last {
			i++
		}
		items = items[i:]
	}
	n := -1
	if s := q.Get("n"); s != "" {
		v, err := strconv.Atoi(s)
		if err != nil || v < 0 {
			return nil, 0, false, apiErr(http.StatusBadRequest, codePaginationInvalid, "invalid n %q", s)
		}
		n = v
	}
	if n >= 0 && n < len(items) {
		return items[:n], n, true, nil
	}
	return items, n, false, nil
}

// setNextLink adds the Link header that points at the page after page.
func setNextLink(w http.ResponseWriter, path string, page []string, n int) {
	if len(page) == 0 {
		return
	}
	v := url.Values{"n": {strconv.Itoa(n)}, "last": {page[len(page)-1]}}
	w.Header().Set("Link", "<"+path+"?"+v.Encode()+`>; rel="next"`)
}

func (rg *Registry) tagsList(w http.ResponseWriter, r *http.Request, name string) error {
	refs, err := rg.store.Refs(r.Context())
	if err != nil {
		return err
	}
	base := RefPrefix + name
	known := false
	tags := []string{}
	for ref := range refs {
		rest, ok := strings.CutPrefix(ref, base)
		if !ok || rest == "" {
			continue
		}
		switch rest[0] {
		case ':':
			tags = append(tags, rest[1:])
			known = true
		case '@', '#':
			known = true
		}
	}
	if !known {
		return apiErr(http.StatusNotFound, codeNameUnknown, "repository %s unknown", name).withDetail(map[string]string{"name": name})
	}
	slices.Sort(tags)
	page, n, more, err := paginate(tags, r.URL.Query())
	if err != nil {
		return err
	}
	if more {
		setNextLink(w, r.URL.Path, page, n)
	}
	return writeJSON(w, "application/json", struct {
		Name string   `json:"name"`
		Tags []string `json:"tags"`
	}{name, page})
}

// catalog lists repositories (GET /v2/_catalog, not part of the OCI spec
// but served by most registries).
func (rg *Registry) catalog(w http.ResponseWriter, r *http.Request) error {
	refs, err := rg.store.Refs(r.Context())
	if err != nil {
		return err
	}
	seen := map[string]bool{}
	repos := []string{}
	for ref := range refs {
		rest, ok := strings.CutPrefix(ref, RefPrefix)
		if !ok {
			continue
		}
		i := strings.IndexAny(rest, ":@#")
		if i <= 0 || seen[rest[:i]] {
			continue
		}
		seen[rest[:i]] = true
		repos = append(repos, rest[:i])
	}
	slices.Sort(repos)
	page, n, more, err := paginate(repos, r.URL.Query())
	if err != nil {
		return err
	}
	if more {
		setNextLink(w, r.URL.Path, page, n)
	}
	return writeJSON(w, "application/json", struct {
		Repositories []string `json:"repositories"`
	}{page})
}
