// Command ui is the shop's web front end under /ui/: it asks productms for
// the catalogue (through its Service DNS name) and renders it. v1 and v2
// look different, so a canary split is visible in a browser and to curl
// (the page names its version).
package main

import (
	"context"
	"encoding/json"
	"html/template"
	"net/http"
	"os"
	"time"

	"skiff.dev/skiff/examples/internal/app"
)

var page = template.Must(template.New("ui").Parse(`<!doctype html>
<html><head><title>{{.Store}}</title>
<style>body{font-family:sans-serif;background:{{.Color}};color:#222;margin:2em}
table{border-collapse:collapse}td,th{padding:.3em 1em;border-bottom:1px solid #999}</style></head>
<body><h1>{{.Store}}</h1>
<p class="version">ui {{.Version}} on {{.Pod}}{{if .Banner}} — {{.Banner}}{{end}}</p>
{{if .Error}}<p class="error">catalogue unavailable: {{.Error}}</p>{{else}}
<table><tr><th>Product</th><th>Price</th></tr>
{{range .Products}}<tr><td><a href="/productms/product/catalogue/{{.ID}}">{{.Name}}</a></td><td>{{printf "%.2f" .Price}} {{$.Currency}}</td></tr>
{{end}}</table>{{end}}
</body></html>
`))

type view struct {
	Version, Pod, Color, Banner, Store, Currency, Error string
	Products                                            []struct {
		ID    int
		Name  string
		Price float64
	}
}

func main() {
	version := app.Env("VERSION", "v1")
	log := app.Logger("ui", version)
	srv := &app.Server{Addr: ":" + app.Env("PORT", "8080"), Log: log}
	srv.Handler = routes(version, app.Env("POD_NAME", app.Hostname()), app.Env("PRODUCT_URL", "http://productms:8080"),
		app.NewClient(5*time.Second), srv.Ready)
	if err := srv.Run(context.Background()); err != nil {
		log.Error("serve", "err", err)
		os.Exit(1)
	}
}

func routes(version, pod, productURL string, client *app.Client, ready func() bool) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /ui/{$}", func(w http.ResponseWriter, r *http.Request) {
		v := view{Version: version, Pod: pod, Color: "#e8f0ff", Store: "Skiff Store"}
		if version != "v1" {
			v.Color, v.Banner = "#e9ffe8", "our new look"
		}
		body, err := client.Get(r.Context(), r, productURL+"/productms/product/catalogue")
		var reply struct {
			Response struct {
				Store, Currency string
				Products        []struct {
					ID    int
					Name  string
					Price float64
				}
			}
		}
		if err == nil {
			err = json.Unmarshal(body, &reply)
		}
		if err != nil {
			v.Error = err.Error()
		} else {
			v.Store, v.Currency, v.Products = reply.Response.Store, reply.Response.Currency, reply.Response.Products
		}
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		page.Execute(w, v)
	})
	mux.Handle("GET /ui", http.RedirectHandler("/ui/", http.StatusMovedPermanently))
	mux.HandleFunc("GET /ui/check/live", app.Probe(func() bool { return true }))
	mux.HandleFunc("GET /ui/check/ready", app.Probe(ready))
	return mux
}
