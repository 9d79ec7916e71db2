package dns

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"time"

	"github.com/miekg/dns"

	"skiff.dev/skiff/internal/errdefs"
)

// ednsSize is the UDP payload size offered to upstreams (the DNS flag
// day's value: no fragmentation on common paths).
const ednsSize = 1232

// forwarder answers names outside the zone from the upstream resolvers,
// through the cache.
type forwarder struct {
	upstreams atomic.Pointer[[]string] // "host:port"
	timeout   time.Duration
	cache     *answerCache // nil: nothing is kept
	loopID    []byte
	preferred atomic.Int32 // index of the upstream that answered last
}

var _ resolver = (*forwarder)(nil)

func (f *forwarder) setUpstreams(list []string) { f.upstreams.Store(&list) }

func (f *forwarder) list() []string {
	if p := f.upstreams.Load(); p != nil {
		return *p
	}
	return nil
}

func (f *forwarder) resolve(ctx context.Context, q dns.Question, dnssecOK bool) (*dns.Msg, error) {
	k := keyOf(q, dnssecOK)
	if f.cache != nil {
		if m, ok := f.cache.get(k); ok {
			return m, nil
		}
	}
	m, err := f.exchange(ctx, q, dnssecOK)
	if err != nil {
		return nil, err
	}
	if f.cache != nil {
		f.cache.put(k, m)
	}
	return m, nil
}

// exchange asks the upstreams in turn, starting with the one that answered
// last, until one answers.
func (f *forwarder) exchange(ctx context.Context, q dns.Question, dnssecOK bool) (*dns.Msg, error) {
	ups := f.list()
	if len(ups) == 0 {
		return nil, fmt.Errorf("forward %s: no upstream resolvers: %w", q.Name, errdefs.ErrUnavailable)
	}
	req := new(dns.Msg)
	req.Id = dns.Id()
	req.RecursionDesired = true
	req.Question = []dns.Question{q}
	req.SetEdns0(ednsSize, dnssecOK)
	opt := req.IsEdns0()
	opt.Option = append(opt.Option, &dns.EDNS0_LOCAL{Code: loopOption, Data: f.loopID})

	start := int(f.preferred.Load())
	var errs []error
	for i := range ups {
		n := (start + i) % len(ups)
		m, err := f.try(ctx, ups[n], req)
		if err == nil {
			f.preferred.Store(int32(n))
			return m, nil
		}
		errs = append(errs, err)
		if ctx.Err() != nil {
			break
		}
	}
	return nil, fmt.Errorf("forward %s: %w: %w", q.Name, errors.Join(errs...), errdefs.ErrUnavailable)
}

// try asks one upstream over UDP, and again over TCP when the answer was
// truncated.
func (f *forwarder) try(ctx context.Context, upstream string, req *dns.Msg) (*dns.Msg, error) {
	ctx, cancel := context.WithTimeout(ctx, f.timeout)
	defer cancel()
	c := &dns.Client{Net: "udp", UDPSize: ednsSize, Timeout: f.timeout}
	m, _, err := c.ExchangeContext(ctx, req, upstream)
	if err == nil && m.Truncated {
		c.Net = "tcp"
		m, _, err = c.ExchangeContext(ctx, req, upstream)
	}
	if err != nil {
		return nil, fmt.Errorf("%s: %w", upstream, err)
	}
	if len(m.Question) != 1 || !strings.EqualFold(m.Question[0].Name, req.Question[0].Name) || m.Question[0].Qtype != req.Question[0].Qtype {
		return nil, fmt.Errorf("%s: answer to another question", upstream)
	}
	if m.Rcode == dns.RcodeRefused || m.Rcode == dns.RcodeNotImplemented || m.Rcode == dns.RcodeFormatError {
		return nil, fmt.Errorf("%s: %s", upstream, dns.RcodeToString[m.Rcode])
	}
	extra := m.Extra[:0]
	for _, rr := range m.Extra {
		if rr.Header().Rrtype != dns.TypeOPT {
			extra = append(extra, rr)
		}
	}
	m.Extra = extra
	return m, nil
}
