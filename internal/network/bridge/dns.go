package bridge

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/netip"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/miekg/dns"
	"golang.org/x/sys/unix"

	"skiff.dev/skiff/internal/network/netns"
)

// TTL of the records the embedded DNS server answers with, as Docker's.
const recordTTL = 600

// zone is what a network's DNS server knows: container names and the reverse
// names of their addresses. It is replaced whole, never modified.
type zone struct {
	a   map[string][]netip.Addr // canonical name → addresses
	ptr map[string][]string     // canonical reverse name → FQDNs
}

// canonicalName lower-cases a DNS name and drops the trailing dot.
func canonicalName(s string) string {
	return strings.ToLower(strings.TrimSuffix(strings.TrimSpace(s), "."))
}

func buildZone(n *network) *zone {
	z := &zone{a: map[string][]netip.Addr{}, ptr: map[string][]string{}}
	for _, ep := range n.Endpoints {
		rev := ""
		if r, err := dns.ReverseAddr(ep.IP); err == nil {
			rev = canonicalName(r)
		}
		for _, name := range ep.Names {
			z.a[name] = append(z.a[name], ep.ip)
			if rev != "" {
				z.ptr[rev] = append(z.ptr[rev], dns.Fqdn(name))
			}
		}
	}
	return z
}

// dnsServer is one network's embedded DNS server, on its gateway, port 53,
// UDP and TCP.
type dnsServer struct {
	addr      string
	network   string
	forward   bool // false for internal networks: they reach nothing outside
	upstreams []string
	timeout   time.Duration
	log       *slog.Logger
	zone      atomic.Pointer[zone]
	udp, tcp  *dns.Server

	mu     sync.RWMutex // held for reading while forwarding; stop takes it to close ns
	ns     *os.File     // the host namespace, for dialing upstreams
	closed bool
}

// startDNS starts the DNS server of n. The sockets are opened in the host
// namespace; serving then happens on any thread.
func (m *Manager) startDNS(n *network) error {
	addr := net.JoinHostPort(n.Gateway, "53")
	var (
		pc net.PacketConn
		ln net.Listener
	)
	err := m.inHost(func() (err error) {
		if pc, err = net.ListenPacket("udp4", addr); err != nil {
			return err
		}
		if ln, err = net.Listen("tcp4", addr); err != nil {
			pc.Close()
			return err
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("network %s: dns server on %s: %w", n.Name, addr, err)
	}
	fd, err := unix.FcntlInt(m.nsFile.Fd(), unix.F_DUPFD_CLOEXEC, 0)
	if err != nil {
		pc.Close()
		ln.Close()
		return fmt.Errorf("network %s: dns server: %w", n.Name, err)
	}
	s := &dnsServer{
		addr:      addr,
		network:   n.Name,
		forward:   !n.Internal,
		upstreams: slices.DeleteFunc(slices.Clone(m.opts.Upstreams), func(u string) bool { return u == addr }),
		timeout:   m.opts.UpstreamTimeout,
		log:       m.log.With("network", n.Name, "dns", addr),
		ns:        os.NewFile(uintptr(fd), "host-netns"),
	}
	s.zone.Store(buildZone(n))
	s.udp = &dns.Server{PacketConn: pc, Handler: s}
	s.tcp = &dns.Server{Listener: ln, Handler: s, ReadTimeout: 5 * time.Second, WriteTimeout: 5 * time.Second}
	for _, srv := range []*dns.Server{s.udp, s.tcp} {
		started := make(chan error, 1)
		srv.NotifyStartedFunc = func() { started <- nil }
		go func() {
			if err := srv.ActivateAndServe(); err != nil {
				select {
				case started <- err:
				default:
					s.log.Warn("dns server stopped", "err", err)
				}
			}
		}()
		if err := <-started; err != nil {
			s.stop()
			return fmt.Errorf("network %s: dns server on %s: %w", n.Name, addr, err)
		}
	}
	m.dns[n.ID] = s
	return nil
}

// stop shuts the server down and waits for forwarded queries to finish.
func (s *dnsServer) stop() {
	for _, srv := range []*dns.Server{s.udp, s.tcp} {
		if err := srv.Shutdown(); err != nil {
			// Not started: close its socket ourselves.
			if srv.PacketConn != nil {
				srv.PacketConn.Close()
			}
			if srv.Listener != nil {
				srv.Listener.Close()
			}
		}
	}
	s.mu.Lock()
	s.closed = true
	s.ns.Close()
	s.mu.Unlock()
}

func (m *Manager) refreshDNS(n *network) {
	if s, ok := m.dns[n.ID]; ok {
		s.zone.Store(buildZone(n))
	}
}

// ServeDNS answers for the network's containers and forwards the rest.
func (s *dnsServer) ServeDNS(w dns.ResponseWriter, r *dns.Msg) {
	resp := s.answer(w, r)
	if resp == nil {
		return
	}
	if _, udp := w.RemoteAddr().(*net.UDPAddr); udp {
		size := dns.MinMsgSize
		if opt := r.IsEdns0(); opt != nil && int(opt.UDPSize()) > size {
			size = int(opt.UDPSize())
		}
		resp.Truncate(size)
	}
	if err := w.WriteMsg(resp); err != nil {
		s.log.Debug("write dns reply", "err", err)
	}
}

func (s *dnsServer) answer(w dns.ResponseWriter, r *dns.Msg) *dns.Msg {
	if r.Opcode != dns.OpcodeQuery || len(r.Question) != 1 {
		return new(dns.Msg).SetRcode(r, dns.RcodeNotImplemented)
	}
	q := r.Question[0]
	z := s.zone.Load()
	name := canonicalName(q.Name)
	if q.Qclass == dns.ClassINET {
		if addrs, ok := z.a[name]; ok {
			resp := s.reply(r)
			if q.Qtype == dns.TypeA || q.Qtype == dns.TypeANY {
				for _, a := range shuffled(addrs) {
					resp.Answer = append(resp.Answer, &dns.A{
						Hdr: dns.RR_Header{Name: q.Name, Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: recordTTL},
						A:   net.IP(a.AsSlice()),
					})
				}
			}
			return resp // AAAA and the rest: the name exists, with no such records
		}
		if names, ok := z.ptr[name]; ok && q.Qtype == dns.TypePTR {
			resp := s.reply(r)
			for _, target := range names {
				resp.Answer = append(resp.Answer, &dns.PTR{
					Hdr: dns.RR_Header{Name: q.Name, Rrtype: dns.TypePTR, Class: dns.ClassINET, Ttl: recordTTL},
					Ptr: target,
				})
			}
			return resp
		}
	}
	if !s.forward || len(s.upstreams) == 0 {
		return new(dns.Msg).SetRcode(r, dns.RcodeServerFailure)
	}
	proto := "udp"
	if _, tcp := w.RemoteAddr().(*net.TCPAddr); tcp {
		proto = "tcp"
	}
	if resp := s.forwardQuery(proto, r); resp != nil {
		return resp
	}
	return new(dns.Msg).SetRcode(r, dns.RcodeServerFailure)
}

func (s *dnsServer) reply(r *dns.Msg) *dns.Msg {
	resp := new(dns.Msg).SetReply(r)
	resp.Authoritative = true
	resp.RecursionAvailable = true
	if opt := r.IsEdns0(); opt != nil {
		resp.SetEdns0(dns.DefaultMsgSize, false)
	}
	return resp
}

// forwardQuery asks the upstreams in turn, within the server's timeout
// overall; nil when none gave a usable answer.
func (s *dnsServer) forwardQuery(proto string, r *dns.Msg) *dns.Msg {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), s.timeout)
	defer cancel()
	each := s.timeout / time.Duration(len(s.upstreams))
	for _, up := range s.upstreams {
		actx, acancel := context.WithTimeout(ctx, each)
		resp, err := s.exchange(actx, proto, up, r)
		acancel()
		if err != nil {
			s.log.Debug("upstream failed", "upstream", up, "err", err)
			continue
		}
		if resp.Rcode == dns.RcodeServerFailure || resp.Rcode == dns.RcodeRefused {
			continue
		}
		return resp
	}
	return nil
}

// exchange sends r to one upstream over a socket made in the host namespace
// (upstreams are reachable from the host, not from a container).
func (s *dnsServer) exchange(ctx context.Context, proto, upstream string, r *dns.Msg) (*dns.Msg, error) {
	var conn net.Conn
	err := netns.Do(fmt.Sprintf("/proc/self/fd/%d", s.ns.Fd()), func() (err error) {
		var d net.Dialer
		conn, err = d.DialContext(ctx, proto, upstream)
		return err
	})
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	c := &dns.Client{Net: proto, UDPSize: dns.DefaultMsgSize}
	resp, _, err := c.ExchangeWithConnContext(ctx, r, &dns.Conn{Conn: conn})
	if err != nil {
		return nil, err
	}
	if resp == nil {
		return nil, errors.New("empty reply")
	}
	return resp, nil
}

func shuffled(addrs []netip.Addr) []netip.Addr {
	out := slices.Clone(addrs)
	rand.Shuffle(len(out), func(i, j int) { out[i], out[j] = out[j], out[i] })
	return out
}

// DNSServer is the address containers on the network should use as their
// nameserver: the gateway for networks with DNS, "" otherwise.
func (m *Manager) DNSServer(networkID string) string {
	m.mu.Lock()
	defer m.mu.Unlock()
	n := m.lookup(networkID)
	if n == nil || !n.DNS {
		return ""
	}
	return n.Gateway
}
