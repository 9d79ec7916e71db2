package proxy

import (
	"io"
	"net/http"
	"strings"
	"sync"
)

// tunnel completes an upgrade (WebSocket and the like): it hands the
// client the upstream's 101 and copies bytes both ways until either side
// closes.
func (p *Proxy) tunnel(w http.ResponseWriter, res *http.Response, info *RequestInfo, upgrade string) {
	got := res.Header.Get("Upgrade")
	back, ok := res.Body.(io.ReadWriteCloser)
	if !ok || !strings.EqualFold(got, upgrade) {
		_ = res.Body.Close()
		info.Flags |= FlagUpstreamConnectionTermination
		localReply(w, http.StatusBadGateway, "upstream switched to an unexpected protocol\n")
		return
	}
	defer back.Close()
	conn, brw, err := http.NewResponseController(w).Hijack()
	if err != nil {
		info.Flags |= FlagUpstreamConnectionTermination
		localReply(w, http.StatusBadGateway, "cannot upgrade this connection\n")
		return
	}
	defer conn.Close()
	untrack := p.track(conn, back)
	defer untrack()

	removeHopByHop(res.Header)
	res.Header["Connection"] = connectionUpgrade
	res.Header["Upgrade"] = []string{got}
	info.route.respHeaders.apply(res.Header)
	_, _ = brw.WriteString("HTTP/1.1 101 Switching Protocols\r\n")
	_ = res.Header.Write(brw)
	_, _ = brw.WriteString("\r\n")
	if err := brw.Flush(); err != nil {
		info.Flags |= FlagDownstreamConnectionTermination
		return
	}
	info.Status = http.StatusSwitchingProtocols

	var up, down int64
	done := make(chan struct{}, 2)
	go func() {
		up, _ = io.Copy(back, brw.Reader) // what the client had buffered comes first
		done <- struct{}{}
	}()
	go func() {
		down, _ = io.Copy(conn, back)
		done <- struct{}{}
	}()
	<-done
	_ = conn.Close()
	_ = back.Close()
	<-done
	info.BytesReceived += up
	info.BytesSent += down
}

// tunnels are the hijacked connections in use, closed when Run stops (the
// HTTP server no longer knows them).
type tunnels struct {
	mu  sync.Mutex
	set map[*[2]io.Closer]struct{}
	wg  sync.WaitGroup
	// closed: the proxy is stopping; new tunnels are closed at once.
	closed bool
}

func (p *Proxy) track(a, b io.Closer) (untrack func()) {
	t := &p.tunnels
	pair := &[2]io.Closer{a, b}
	t.mu.Lock()
	if t.set == nil {
		t.set = map[*[2]io.Closer]struct{}{}
	}
	t.set[pair] = struct{}{}
	t.wg.Add(1)
	if t.closed {
		_ = a.Close()
		_ = b.Close()
	}
	t.mu.Unlock()
	return func() {
		t.mu.Lock()
		delete(t.set, pair)
		t.mu.Unlock()
		t.wg.Done()
	}
}

// closeAll ends every tunnel and waits for their handlers.
func (t *tunnels) closeAll() {
	t.mu.Lock()
	t.closed = true
	for pair := range t.set {
		_ = pair[0].Close()
		_ = pair[1].Close()
	}
	t.mu.Unlock()
	t.wg.Wait()
}

func (t *tunnels) open() {
	t.mu.Lock()
	t.closed = false
	t.mu.Unlock()
}
