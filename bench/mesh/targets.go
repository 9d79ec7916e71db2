package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"runtime"

	"skiff.dev/skiff/internal/mesh/meshconfig"
	"skiff.dev/skiff/internal/mesh/proxy"
)

// startTarget starts the proxies of one path and says where the load
// generator connects.
func startTarget(ctx context.Context, o options, ps *procSet, name string) (*target, error) {
	pairproxy := filepath.Join(o.bin, "pairproxy")
	t := &target{name: name}
	add := func(pname, bin string, args ...string) error {
		p, err := ps.start(ctx, o, pname, bin, args...)
		if err != nil {
			return err
		}
		t.procs = append(t.procs, p)
		return nil
	}
	switch name {
	case "direct":
		t.addr = backendAddr
		return t, nil
	case "pair", "pair+telemetry":
		// A sidecar pair on loopback: plain listeners on explicit ports
		// stand in for capture.
		out, in := "127.0.0.1:18091", "127.0.0.1:18092"
		var extra []string
		if name == "pair+telemetry" {
			out, in = "127.0.0.1:18093", "127.0.0.1:18094"
			extra = []string{"-telemetry"}
		}
		t.addr = out
		if err := add(name+"-outbound", pairproxy, append([]string{"-role", "outbound", "-listen", out, "-upstream", in}, extra...)...); err != nil {
			return nil, err
		}
		return t, add(name+"-inbound", pairproxy, append([]string{"-role", "inbound", "-listen", in, "-upstream", backendAddr}, extra...)...)
	case "skiff":
		t.addr = "127.0.0.1:18081"
		return t, add(name, pairproxy, "-role", "single", "-listen", t.addr, "-upstream", backendAddr)
	case "nginx":
		t.addr = "127.0.0.1:18082"
		conf, err := nginxConf(o.tmp, t.addr)
		if err != nil {
			return nil, err
		}
		return t, add(name, "nginx", "-c", conf)
	case "haproxy":
		t.addr = "127.0.0.1:18083"
		conf := filepath.Join(o.tmp, "haproxy.cfg")
		if err := os.WriteFile(conf, fmt.Appendf(nil, haproxyCfg, runtime.NumCPU(), t.addr, backendAddr), 0o644); err != nil {
			return nil, err
		}
		return t, add(name, "haproxy", "-db", "-f", conf)
	case "mesh-direct", "mesh", "mesh-notelemetry", "sidecar":
		return startMeshTarget(ctx, o, ps, name)
	}
	return nil, fmt.Errorf("unknown target %q", name)
}

// meshTargets number the pod pairs (each mesh path has its own two
// network namespaces, so that every pair of proxies owns 15001/15006).
var meshTargets = map[string]int{"mesh-direct": 1, "mesh": 2, "mesh-notelemetry": 3, "sidecar": 4}

// startMeshTarget starts a path between two pods (podPair): the client
// pod's load generator calls the server pod's address, through the two
// pods' sidecars (pairproxy with a sidecar document, or the real
// skiff-proxy fed by a fake node) or, for mesh-direct, on the port the
// capture leaves alone.
func startMeshTarget(ctx context.Context, o options, ps *procSet, name string) (*target, error) {
	pp, err := newPodPair(ctx, o, ps, name, meshTargets[name])
	if err != nil {
		return nil, err
	}
	t := &target{name: name, ns: pp.clientNS, addr: fmt.Sprintf("%s:%d", pp.svrIP, appPort)}
	if name == "mesh-direct" {
		t.addr = fmt.Sprintf("%s:%d", pp.svrIP, directPort)
		return t, nil
	}
	var cid, sid *proxy.Identity
	if o.mtls {
		if cid, err = o.ca.identity("spiffe://cluster.local/ns/bench/sa/client", 2); err != nil {
			return nil, err
		}
		if sid, err = o.ca.identity("spiffe://cluster.local/ns/bench/sa/server", 3); err != nil {
			return nil, err
		}
	}
	docs := []struct {
		side string
		ns   string
		doc  *meshconfig.Sidecar
	}{
		{"client", pp.clientNS, clientDoc(pp.clientIP, pp.svrIP, cid, o.mtls)},
		{"server", pp.svrNS, serverDoc(pp.svrIP, sid, o.mtls)},
	}
	for _, d := range docs {
		pname := name + "-" + d.side
		var p *proc
		if name == "sidecar" {
			node, sock, err := serveNode(ctx, filepath.Join(o.tmp, pname), d.doc)
			if err != nil {
				return nil, err
			}
			if p, err = ps.startInNS(ctx, o, d.ns, true, pname, filepath.Join(o.bin, "skiff-proxy"), "--socket", sock, "--log-level", "warn"); err != nil {
				return nil, err
			}
			if err := node.applied(ctx); err != nil {
				return nil, fmt.Errorf("%s: %w", pname, err)
			}
		} else {
			file := filepath.Join(o.tmp, pname+".json")
			b, err := json.Marshal(d.doc)
			if err != nil {
				return nil, err
			}
			if err := os.WriteFile(file, b, 0o644); err != nil {
				return nil, err
			}
			args := []string{"-document", file}
			if name == "mesh" {
				args = append(args, "-telemetry")
			}
			if o.profile != "" {
				args = append(args, "-cpuprofile", filepath.Join(o.profile, pname+".pprof"))
			}
			if p, err = ps.startInNS(ctx, o, d.ns, true, pname, filepath.Join(o.bin, "pairproxy"), args...); err != nil {
				return nil, err
			}
		}
		t.procs = append(t.procs, p)
	}
	return t, nil
}

// checkStrict makes sure the server pod refuses plaintext on appPort
// (so the mesh path's requests did go over mTLS): a request from the
// client pod as the proxy's uid, which the client's capture leaves
// alone, must fail.
func checkStrict(ctx context.Context, t *target) error {
	err := command(ctx, "", nil, "nsenter", "--net="+t.ns, "--setuid=1337", "--setgid=1337",
		"curl", "-fsS", "-o", "/dev/null", "--max-time", "2", "http://"+t.addr+path)
	if err == nil {
		return fmt.Errorf("plaintext to %s bypassing the client's sidecar was answered: no mTLS", t.addr)
	}
	return nil
}

// nginx and haproxy forward everything to the backend over kept-alive
// connections, setting the headers Skiff's proxy sets (X-Forwarded-For,
// X-Forwarded-Proto, X-Request-ID), as bench/ingress configures them.
func nginxConf(tmp, listen string) (string, error) {
	dir := filepath.Join(tmp, "nginx")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	conf := filepath.Join(tmp, "nginx.conf")
	return conf, os.WriteFile(conf, fmt.Appendf(nil, nginxTemplate, dir, dir, backendAddr, listen, dir, dir, dir, dir, dir), 0o644)
}

const nginxTemplate = `worker_processes auto;
pid %s/nginx.pid;
error_log %s/error.log warn;
daemon off;
events { worker_connections 4096; }
http {
  access_log off;
  keepalive_requests 1000000;
  upstream app { server %s; keepalive 320; keepalive_requests 10000; }
  server {
    listen %s backlog=4096;
    location / {
      proxy_pass http://app;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header Host $host;
      proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
      proxy_set_header X-Forwarded-Proto $scheme;
      proxy_set_header X-Request-ID $request_id;
    }
  }
  client_body_temp_path %s/body;
  proxy_temp_path %s/proxy;
  fastcgi_temp_path %s/fastcgi;
  uwsgi_temp_path %s/uwsgi;
  scgi_temp_path %s/scgi;
}
`

const haproxyCfg = `global
  nbthread %d
  maxconn 4096
defaults
  mode http
  timeout connect 5s
  timeout client 60s
  timeout server 60s
  option forwardfor
  http-reuse always
frontend fe
  bind %s
  http-request set-header X-Forwarded-Proto http
  http-request set-header X-Request-ID %%[uuid]
  default_backend app
backend app
  server s1 %s
`
