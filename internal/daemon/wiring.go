package daemon

import (
	"log/slog"

	"skiff.dev/skiff/internal/apiserver"
	"skiff.dev/skiff/internal/resources"
	"skiff.dev/skiff/internal/store"
	"skiff.dev/skiff/internal/version"
)

// newAPIServer wires the API server with Skiff's resource table,
// admission, tables and OpenAPI documents.
func newAPIServer(st store.Interface, c *certs, log *slog.Logger) (*apiserver.Server, error) {
	var rs []resources.Resource
	for _, r := range resources.All {
		if r.StorageVersion == "" {
			rs = append(rs, r)
		}
	}
	return apiserver.New(apiserver.Config{
		Store:         st,
		Resources:     rs,
		Authenticator: apiserver.Authenticators{apiserver.ClientCertAuthenticator{}},
		Version:       version.Info(),
		Logger:        log.With("component", "apiserver"),
	})
}
