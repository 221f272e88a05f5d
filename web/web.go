// Package web is superapp's web app for people: its built files (dist/,
// made from src/ by `npm run build` and committed, so that the binary
// serves the app on a machine without Node.js) and the handler that serves
// them. The gateway hands it every path that is not the API's.
//
// Every answer carries a strict Content-Security-Policy: scripts, styles
// and fonts from the node's own origin only (no inline script), images
// also from blob: and data: (previews made in the page), connections to
// the node itself and to the cluster's other DCs (the app fails over to
// them), no frames, no plugins, no forms to elsewhere.
package web

import (
	"bytes"
	"embed"
	"io/fs"
	"net/http"
	"path"
	"strings"
	"time"
)

//go:embed all:dist
var dist embed.FS

// Files is the built app.
func Files() fs.FS {
	sub, err := fs.Sub(dist, "dist")
	if err != nil {
		panic(err) // the embed pattern names dist: it is there
	}
	return sub
}

// Handler serves the app. Files under /assets/ carry their content's hash
// in their names and are cached for good; every other path that names no
// file is a page of the app: index.html, never cached, whose router shows
// it. origins returns the other DCs' origins ("http://host:port") the app
// may connect to.
func Handler(origins func() []string) http.Handler {
	files := Files()
	index, err := fs.ReadFile(files, "index.html")
	if err != nil {
		panic("web: dist/index.html is missing; run npm run build in web/")
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		securityHeaders(w.Header(), origins())
		name := strings.TrimPrefix(path.Clean(r.URL.Path), "/")
		if name != "" && name != "index.html" {
			if st, err := fs.Stat(files, name); err == nil && !st.IsDir() {
				if strings.HasPrefix(name, "assets/") {
					w.Header().Set("Cache-Control", "public, max-age=31536000, immutable")
				} else {
					w.Header().Set("Cache-Control", "no-cache")
				}
				http.ServeFileFS(w, r, files, name)
				return
			}
			if strings.HasPrefix(name, "assets/") || path.Ext(name) != "" {
				http.NotFound(w, r) // a missing file, not a page
				return
			}
		}
		w.Header().Set("Cache-Control", "no-cache")
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		http.ServeContent(w, r, "index.html", time.Time{}, bytes.NewReader(index))
	})
}

func securityHeaders(h http.Header, origins []string) {
	connect := []string{"'self'"}
	for _, o := range origins {
		connect = append(connect, o, "ws"+strings.TrimPrefix(o, "http"))
	}
	h.Set("Content-Security-Policy", strings.Join([]string{
		"default-src 'self'",
		"script-src 'self'",
		"style-src 'self'",
		"img-src 'self' blob: data:",
		"media-src 'self' blob:",
		"font-src 'self'",
		"connect-src " + strings.Join(connect, " "),
		"object-src 'none'",
		"base-uri 'none'",
		"form-action 'self'",
		"frame-ancestors 'none'",
	}, "; "))
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Cross-Origin-Opener-Policy", "same-origin")
	h.Set("Permissions-Policy", "camera=(self), microphone=(), geolocation=()")
}
