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
	"net/http"
	"os"
	"os/signal"
	"regexp"
	"sort"
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
}

// run sends the requests and counts the answers by kind.
func run(ctx context.Context, url string, workers, total int, re *regexp.Regexp) map[string]int {
	client := &http.Client{Timeout: 10 * time.Second}
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
