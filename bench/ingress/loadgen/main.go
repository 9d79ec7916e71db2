// Command loadgen is the ingress benchmark's HTTP/1.1 load generator, for
// what Debian's wrk cannot do (it has no fixed rate, unlike wrk2): it sends
// GETs over persistent connections either open-loop at a fixed rate or
// closed-loop as fast as the connections go, and prints one JSON line.
//
// Latency is from writing a request to reading the whole response. At a
// fixed rate it also counts requests sent more than 2 ms after they were
// due ("late"): many late requests mean the target (or the machine) did
// not keep up, which the service-time percentiles alone would hide. (The
// schedule itself is only as precise as the Go timer on this machine,
// about 1 ms, which is why latency is not measured from the due time.)
package main

import (
	"bufio"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"sort"
	"sync"
	"sync/atomic"
	"time"
)

type result struct {
	Label    string  `json:"label"`
	Rate     int     `json:"target_rps"`
	Conns    int     `json:"conns"`
	RPS      float64 `json:"rps"`
	Requests int     `json:"requests"`
	Errors   int64   `json:"errors"`
	Late     int64   `json:"late"`
	P50      float64 `json:"p50_ms"`
	P90      float64 `json:"p90_ms"`
	P99      float64 `json:"p99_ms"`
	Max      float64 `json:"max_ms"`
}

func main() {
	target := flag.String("url", "http://127.0.0.1:18081/ui/x", "URL to GET")
	rate := flag.Int("rate", 1000, "requests per second; 0 runs closed-loop (saturation)")
	conns := flag.Int("conns", 16, "connections")
	duration := flag.Duration("duration", 20*time.Second, "measured time")
	warmup := flag.Duration("warmup", 3*time.Second, "unmeasured time first")
	label := flag.String("label", "", "name in the output")
	flag.Parse()
	u, err := url.Parse(*target)
	if err != nil {
		fail(err)
	}
	req := []byte(fmt.Sprintf("GET %s HTTP/1.1\r\nHost: %s\r\nUser-Agent: skiff-loadgen\r\n\r\n", u.RequestURI(), u.Host))

	start := time.Now()
	measureFrom := start.Add(*warmup)
	end := measureFrom.Add(*duration)
	var due chan time.Time
	if *rate > 0 {
		due = make(chan time.Time, 1<<20)
		go func() { // the schedule: request i is due at start + i/rate
			interval := time.Second / time.Duration(*rate)
			sent := 0
			for {
				now := time.Now()
				if now.After(end) {
					close(due)
					return
				}
				for n := int(now.Sub(start) / interval); sent < n; sent++ {
					due <- start.Add(time.Duration(sent) * interval)
				}
				time.Sleep(100 * time.Microsecond)
			}
		}()
	}
	var errs, late atomic.Int64
	lats := make([][]time.Duration, *conns)
	var wg sync.WaitGroup
	for i := range *conns {
		wg.Go(func() {
			var c *conn
			for {
				var t0 time.Time
				if due != nil {
					var ok bool
					if t0, ok = <-due; !ok {
						return
					}
				} else {
					t0 = time.Now()
					if t0.After(end) {
						return
					}
				}
				if c == nil {
					var derr error
					if c, derr = dial(u.Host); derr != nil {
						errs.Add(1)
						time.Sleep(10 * time.Millisecond)
						continue
					}
				}
				sent := time.Now()
				if err := c.do(req); err != nil {
					errs.Add(1)
					c.close()
					c = nil
					continue
				}
				if t0.After(measureFrom) {
					lats[i] = append(lats[i], time.Since(sent))
					if sent.Sub(t0) > 2*time.Millisecond {
						late.Add(1)
					}
				}
			}
		})
	}
	wg.Wait()
	var all []time.Duration
	for _, l := range lats {
		all = append(all, l...)
	}
	sort.Slice(all, func(i, j int) bool { return all[i] < all[j] })
	res := result{Label: *label, Rate: *rate, Conns: *conns, Requests: len(all), Errors: errs.Load(), Late: late.Load(),
		RPS: float64(len(all)) / duration.Seconds()}
	if len(all) > 0 {
		pct := func(p float64) float64 { return ms(all[min(len(all)-1, int(p*float64(len(all))))]) }
		res.P50, res.P90, res.P99, res.Max = pct(0.50), pct(0.90), pct(0.99), ms(all[len(all)-1])
	}
	_ = json.NewEncoder(os.Stdout).Encode(res)
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

func fail(err error) {
	fmt.Fprintln(os.Stderr, "loadgen:", err)
	os.Exit(1)
}

type conn struct {
	c  net.Conn
	br *bufio.Reader
}

func dial(addr string) (*conn, error) {
	c, err := net.Dial("tcp", addr)
	if err != nil {
		return nil, err
	}
	return &conn{c: c, br: bufio.NewReaderSize(c, 16<<10)}, nil
}

func (c *conn) do(req []byte) error {
	if _, err := c.c.Write(req); err != nil {
		return err
	}
	res, err := http.ReadResponse(c.br, nil)
	if err != nil {
		return err
	}
	_, err = io.Copy(io.Discard, res.Body)
	res.Body.Close()
	if err == nil && res.StatusCode != http.StatusOK {
		err = fmt.Errorf("status %d", res.StatusCode)
	}
	return err
}

func (c *conn) close() { _ = c.c.Close() }
