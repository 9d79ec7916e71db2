// Command coldstart measures how long `skiff server` takes from exec to a
// 200 on /readyz, on a fresh data dir (first start: CA, certificates, etcd
// bootstrap) and on an existing one (restart), and the server's idle RSS.
// It prints one JSON line. Run it through bench/run.sh.
package main

import (
	"crypto/tls"
	"encoding/json"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"
)

func main() {
	bin := flag.String("skiff", "bin/skiff", "skiff binary")
	runs := flag.Int("runs", 10, "starts per case")
	settle := flag.Duration("settle", 15*time.Second, "idle time before reading RSS")
	logPath := flag.String("server-log", os.DevNull, "file for the servers' output")
	flag.Parse()
	logFile, err := os.OpenFile(*logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	check(err)
	serverLog = logFile

	res := map[string]any{}
	var fresh, restart []time.Duration
	var rss []int
	for i := 0; i < *runs; i++ {
		dir, err := os.MkdirTemp("", "skiff-coldstart-")
		check(err)
		d, p := start(*bin, dir)
		fresh = append(fresh, d)
		stop(p)
		d, p = start(*bin, dir)
		restart = append(restart, d)
		if i == 0 {
			time.Sleep(*settle)
			rss = append(rss, rssKiB(p.Pid))
		}
		stop(p)
		os.RemoveAll(dir)
	}
	res["fresh_data_dir_ms"] = summary(fresh)
	res["existing_data_dir_ms"] = summary(restart)
	res["idle_rss_mib"] = float64(rss[0]) / 1024
	res["runs"] = *runs
	out, _ := json.Marshal(res)
	fmt.Println(string(out))
}

var serverLog *os.File

func start(bin, dir string) (time.Duration, *os.Process) {
	addr := freeAddr()
	cmd := exec.Command(bin, "server", "--data-dir", dir, "--listen", addr, "--registry-listen=", "--disable-agent", "--log-level", "error")
	cmd.Stdout, cmd.Stderr = serverLog, serverLog
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	client := &http.Client{Timeout: time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}, DisableKeepAlives: true}}
	t0 := time.Now()
	check(cmd.Start())
	for {
		resp, err := client.Get("https://" + addr + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return time.Since(t0), cmd.Process
			}
		}
		if time.Since(t0) > 60*time.Second {
			check(fmt.Errorf("server not ready after 60s"))
		}
		time.Sleep(2 * time.Millisecond)
	}
}

func stop(p *os.Process) {
	p.Signal(syscall.SIGTERM)
	done := make(chan struct{})
	go func() { p.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		p.Signal(syscall.SIGQUIT) // dumps goroutines to the server log
		check(fmt.Errorf("server %d did not stop within 30s of SIGTERM", p.Pid))
	}
}

func rssKiB(pid int) int {
	data, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "status"))
	check(err)
	for _, line := range strings.Split(string(data), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "VmRSS:" {
			n, _ := strconv.Atoi(f[1])
			return n
		}
	}
	return 0
}

func freeAddr() string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	check(err)
	defer ln.Close()
	return ln.Addr().String()
}

func summary(d []time.Duration) map[string]float64 {
	sort.Slice(d, func(i, j int) bool { return d[i] < d[j] })
	ms := func(x time.Duration) float64 { return float64(x.Microseconds()) / 1000 }
	return map[string]float64{"min": ms(d[0]), "p50": ms(d[len(d)/2]), "max": ms(d[len(d)-1])}
}

func check(err error) {
	if err != nil {
		fmt.Fprintln(os.Stderr, "coldstart:", err)
		os.Exit(1)
	}
}
