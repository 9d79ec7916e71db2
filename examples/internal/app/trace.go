package app

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"time"
)

// TraceHeaders are propagated from an incoming request to the calls made
// while serving it, so a mesh or tracer can join the spans (Istio asks
// applications to do exactly this).
var TraceHeaders = []string{
	"X-Request-Id", "Traceparent", "Tracestate", "B3",
	"X-B3-Traceid", "X-B3-Spanid", "X-B3-Parentspanid", "X-B3-Sampled", "X-B3-Flags",
	"X-Ot-Span-Context", "End-User", "User-Agent",
}

// Client calls other services with the incoming request's trace headers.
type Client struct {
	HTTP *http.Client
}

// NewClient returns a client with the given per-call timeout.
func NewClient(timeout time.Duration) *Client {
	return &Client{HTTP: &http.Client{Timeout: timeout}}
}

// Get fetches url on behalf of in and returns the body of a 2xx answer.
func (c *Client) Get(ctx context.Context, in *http.Request, url string) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	for _, h := range TraceHeaders {
		if v := in.Header.Get(h); v != "" {
			req.Header.Set(h, v)
		}
	}
	resp, err := c.HTTP.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return nil, err
	}
	if resp.StatusCode/100 != 2 {
		return body, fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	return body, nil
}
