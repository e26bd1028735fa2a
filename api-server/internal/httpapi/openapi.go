package httpapi

import (
	"bytes"
	_ "embed"
	"net/http"
)

// openAPI is the OpenAPI 3.1 document of every route in routes.go.
// api-server/openapi_test.go keeps it true: it validates real requests and
// responses of the running server against it, and fails on a route the
// document does not describe.
//
//go:embed openapi.json
var openAPI []byte

// OpenAPI returns a copy of the OpenAPI document the server serves at
// GET /openapi.json.
func OpenAPI() []byte { return bytes.Clone(openAPI) }

func handleOpenAPI() http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, openAPI)
	}
}
