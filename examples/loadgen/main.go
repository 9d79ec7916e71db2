// Command loadgen is the workshop's `while true; do wget -q -O- URL; done`
// as a program: it sends GET requests with a few workers and, at the end
// (or on SIGTERM), prints how many answers of each kind came back — the
// first line of each body — so a canary split can be counted.
//
//	loadgen -url http://hello/burn?ms=50 -c 4           # until stopped
//	loadgen -url http://ui/ui/ -n 200 -match 'ui v[0-9]' # 200 requests, count versions
package main

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"io"
	"math"
	"net/http"
	"os"
	"os/signal"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

func main() {
	url := flag.String("url", "", "URL to GET")
	workers := flag.Int("c", 2, "concurrent workers")
	total := flag.Int("n", 0, "requests in all (0: until stopped)")
	dur := flag.Duration("d", 0, "stop after this long (0: no limit)")
	match := flag.String("match", "", "count the first match of this regexp in each body instead of its first line")
	expect := flag.String("expect", "", "check the split: KIND=SHARE,... in percent (e.g. 'ui v1=75,ui v2=25'); exit 1 when off")
	tolerance := flag.Float64("tolerance", 15, "with -expect: allowed difference in percentage points")
	flag.Parse()
	if *url == "" || *workers < 1 {
		fmt.Fprintln(os.Stderr, "usage: loadgen -url URL [-c N] [-n N] [-d DURATION] [-match REGEXP]")
		os.Exit(2)
	}
	var re *regexp.Regexp
	if *match != "" {
		var err error
		if re, err = regexp.Compile(*match); err != nil {
			fmt.Fprintln(os.Stderr, "loadgen: -match:", err)
			os.Exit(2)
		}
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	if *dur > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, *dur)
		defer cancel()
	}
	counts := run(ctx, *url, *workers, *total, re)
	keys := make([]string, 0, len(counts))
	for k := range counts {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		fmt.Printf("%6d %s\n", counts[k], k)
	}
	if *expect != "" {
		if err := checkSplit(counts, *expect, *tolerance); err != nil {
			fmt.Println("split off:", err)
			os.Exit(1)
		}
		fmt.Printf("split within %g points of %s\n", *tolerance, *expect)
	}
}

// checkSplit compares the shares of counts with want ("kind=percent,...").
func checkSplit(counts map[string]int, want string, tolerance float64) error {
	total := 0
	for _, n := range counts {
		total += n
	}
	if total == 0 {
		return fmt.Errorf("no answers")
	}
	for _, part := range strings.Split(want, ",") {
		kind, share, ok := strings.Cut(part, "=")
		pct, err := strconv.ParseFloat(share, 64)
		if !ok || err != nil {
			return fmt.Errorf("-expect %q: want KIND=PERCENT,...", part)
		}
		got := 100 * float64(counts[kind]) / float64(total)
		if math.Abs(got-pct) > tolerance {
			return fmt.Errorf("%s: %.1f%%, want %g%% ± %g", kind, got, pct, tolerance)
		}
	}
	return nil
}

// run sends the requests and counts the answers by kind.
func run(ctx context.Context, url string, workers, total int, re *regexp.Regexp) map[string]int {
	// A new connection per request, as the workshop's wget loop: Services
	// balance connections, so keep-alive would pin each worker to one pod.
	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	var (
		mu     sync.Mutex
		counts = map[string]int{}
		sent   atomic.Int64
		wg     sync.WaitGroup
	)
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil && (total == 0 || sent.Add(1) <= int64(total)) {
				kind := get(ctx, client, url, re)
				mu.Lock()
				counts[kind]++
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	return counts
}

func get(ctx context.Context, client *http.Client, url string, re *regexp.Regexp) string {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return "error: " + err.Error()
	}
	resp, err := client.Do(req)
	if err != nil {
		return "error"
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		io.Copy(io.Discard, resp.Body)
		return resp.Status
	}
	if re != nil {
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		if m := re.Find(body); m != nil {
			return string(m)
		}
		return "no match"
	}
	line, _ := bufio.NewReader(resp.Body).ReadString('\n')
	io.Copy(io.Discard, resp.Body)
	return line[:len(line)-min(1, len(line))]
}
