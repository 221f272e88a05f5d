// Package api holds superapp's public API description, served by every node
// at /v1/openapi.yaml and checked against the routes by the gateway's tests.
package api

import _ "embed"

// OpenAPI is api/openapi.yaml.
//
//go:embed openapi.yaml
var OpenAPI []byte
