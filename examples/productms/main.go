// Command productms serves the product catalogue. It reads its settings
// from a ConfigMap (env STORE_NAME, CURRENCY), its database credentials
// from a Secret (env DB_USER, DB_PASSWORD — only the user is ever shown),
// and asks productreviewms, through its Service DNS name, for the reviews
// of one product.
//
//	GET /productms/product/catalogue
//	GET /productms/product/catalogue/{id}   (with the review service's answer)
//	GET /productms/product/version
//	GET /productms/check/live, /productms/check/ready
package main

import (
	"context"
	"encoding/json"
	"net/http"
	"os"
	"strconv"
	"time"

	"skiff.dev/skiff/examples/internal/app"
)

// Product is one catalogue entry.
type Product struct {
	ID    int     `json:"id"`
	Name  string  `json:"name"`
	Price float64 `json:"price"`
}

var catalogue = []Product{
	{1, "Kettle", 29.90},
	{2, "Toaster", 24.50},
	{3, "Blender", 59.00},
}

// config is what the ConfigMap and Secret provide.
type config struct {
	Version, Store, Currency, DBUser, ReviewURL string
	dbPassword                                  string
}

func main() {
	c := config{
		Version:   app.Env("VERSION", "v1"),
		Store:     app.Env("STORE_NAME", "Skiff Store"),
		Currency:  app.Env("CURRENCY", "EUR"),
		DBUser:    app.Env("DB_USER", ""),
		ReviewURL: app.Env("REVIEW_URL", "http://productreviewms:8080"),
	}
	c.dbPassword = os.Getenv("DB_PASSWORD")
	log := app.Logger("productms", c.Version)
	srv := &app.Server{Addr: ":" + app.Env("PORT", "8080"), Log: log}
	srv.Handler = routes(c, app.NewClient(10*time.Second), srv.Ready)
	if err := srv.Run(context.Background()); err != nil {
		log.Error("serve", "err", err)
		os.Exit(1)
	}
}

func routes(c config, reviews *app.Client, ready func() bool) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /productms/product/catalogue", func(w http.ResponseWriter, r *http.Request) {
		app.WriteReply(w, c.Version, map[string]any{"store": c.Store, "currency": c.Currency, "products": catalogue})
	})
	mux.HandleFunc("GET /productms/product/catalogue/{id}", func(w http.ResponseWriter, r *http.Request) {
		id, err := strconv.Atoi(r.PathValue("id"))
		if err != nil || id < 1 || id > len(catalogue) {
			app.WriteJSON(w, http.StatusNotFound, app.Reply{Version: c.Version, Response: "no such product"})
			return
		}
		out := map[string]any{"product": catalogue[id-1], "currency": c.Currency}
		body, err := reviews.Get(r.Context(), r, c.ReviewURL+"/productreviewms/productreview/"+strconv.Itoa(id))
		var review any
		if err == nil && json.Unmarshal(body, &review) == nil {
			out["review"] = review
		} else {
			out["review"] = map[string]string{"error": errString(err, body)}
		}
		app.WriteReply(w, c.Version, out)
	})
	mux.HandleFunc("GET /productms/product/version", func(w http.ResponseWriter, r *http.Request) {
		app.WriteReply(w, c.Version, map[string]string{"store": c.Store, "db": dbStatus(c)})
	})
	mux.HandleFunc("GET /productms/check/live", func(w http.ResponseWriter, r *http.Request) {
		app.WriteReply(w, c.Version, "productms "+c.Version+" is live")
	})
	mux.HandleFunc("GET /productms/check/ready", app.Probe(ready))
	return mux
}

// dbStatus shows whether credentials came from the Secret, never the password.
func dbStatus(c config) string {
	if c.DBUser == "" || c.dbPassword == "" {
		return "no credentials"
	}
	return "credentials for " + c.DBUser
}

func errString(err error, body []byte) string {
	if err == nil {
		return "review service answered something that is not JSON: " + string(body)
	}
	return err.Error()
}
