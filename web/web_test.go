package web_test

import (
	"bytes"
	"compress/gzip"
	"io/fs"
	"regexp"
	"testing"

	"superapp/web"
)

// The first page's JavaScript and CSS (what index.html loads before the
// app runs: its script, stylesheets and module preloads) stay within
// 150 KB gzipped; screens loaded later (the QR scanner) do not count.
const firstPageBudget = 150 << 10

func TestFirstPageBudget(t *testing.T) {
	files := web.Files()
	index, err := fs.ReadFile(files, "index.html")
	if err != nil {
		t.Fatal(err)
	}
	refs := regexp.MustCompile(`(?:src|href)="/(assets/[^"]+\.(?:js|css))"`).FindAllSubmatch(index, -1)
	if len(refs) < 2 {
		t.Fatalf("index.html loads %d scripts and stylesheets; want the app's script and styles", len(refs))
	}
	total := 0
	for _, m := range refs {
		b, err := fs.ReadFile(files, string(m[1]))
		if err != nil {
			t.Fatalf("index.html loads %s, which the build lacks: %v", m[1], err)
		}
		var buf bytes.Buffer
		z, _ := gzip.NewWriterLevel(&buf, gzip.BestCompression)
		z.Write(b)
		z.Close()
		t.Logf("%s: %d bytes, %d gzipped", m[1], len(b), buf.Len())
		total += buf.Len()
	}
	t.Logf("first page: %d bytes gzipped (budget %d)", total, firstPageBudget)
	if total > firstPageBudget {
		t.Fatalf("first page is %d bytes gzipped, over the %d budget", total, firstPageBudget)
	}
}

// No inline script: the CSP allows none, so the build must have none.
func TestNoInlineScript(t *testing.T) {
	index, err := fs.ReadFile(web.Files(), "index.html")
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range regexp.MustCompile(`<script[^>]*>([^<]*)</script>`).FindAllSubmatch(index, -1) {
		if len(bytes.TrimSpace(m[1])) > 0 {
			t.Fatalf("inline script in index.html: %.80s", m[1])
		}
	}
	if bytes.Contains(index, []byte(" style=")) {
		t.Fatal("inline style attribute in index.html")
	}
}
