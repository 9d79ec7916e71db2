package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"skiff.dev/skiff/internal/mesh/meshconfig"
)

// fakeNode is the node's side of one sidecar's unix socket
// (meshconfig.ConfigPath long poll and StatusPath), serving one fixed
// document, for the real skiff-proxy binary.
type fakeNode struct {
	doc    []byte
	ver    string
	status chan meshconfig.Status
}

// serveNode listens on dir/agent.sock (readable by the proxy's uid)
// until ctx ends.
func serveNode(ctx context.Context, dir string, doc *meshconfig.Sidecar) (*fakeNode, string, error) {
	b, err := json.Marshal(doc)
	if err != nil {
		return nil, "", err
	}
	n := &fakeNode{doc: b, ver: doc.Version, status: make(chan meshconfig.Status, 16)}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, "", err
	}
	sock := filepath.Join(dir, meshconfig.SocketName)
	ln, err := net.Listen("unix", sock)
	if err != nil {
		return nil, "", err
	}
	if err := os.Chmod(sock, 0o777); err != nil {
		ln.Close()
		return nil, "", err
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET "+meshconfig.ConfigPath, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Query().Get("version") == n.ver {
			select { // nothing new: hold the poll, as the node does
			case <-r.Context().Done():
				return
			case <-time.After(30 * time.Second):
				w.WriteHeader(http.StatusNotModified)
				return
			}
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(n.doc)
	})
	mux.HandleFunc("POST "+meshconfig.StatusPath, func(w http.ResponseWriter, r *http.Request) {
		var st meshconfig.Status
		if err := json.NewDecoder(r.Body).Decode(&st); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		select {
		case n.status <- st:
		default:
		}
		w.WriteHeader(http.StatusNoContent)
	})
	srv := &http.Server{Handler: mux}
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Print(err)
		}
	}()
	go func() {
		<-ctx.Done()
		_ = srv.Close()
	}()
	return n, sock, nil
}

// applied waits for the sidecar's status report.
func (n *fakeNode) applied(ctx context.Context) error {
	select {
	case st := <-n.status:
		if st.Error != "" {
			return fmt.Errorf("document %s rejected: %s", st.Version, st.Error)
		}
		return nil
	case <-time.After(20 * time.Second):
		return fmt.Errorf("no status from the sidecar in 20s")
	case <-ctx.Done():
		return ctx.Err()
	}
}
