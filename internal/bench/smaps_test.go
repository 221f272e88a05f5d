package bench

import (
	"os"
	"runtime"
	"testing"
)

// TestSplitResident: the test's own process has anonymous memory (it holds
// the buffer below), an executable, and a resident set the split adds up
// to.
func TestSplitResident(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("reads /proc")
	}
	buf := make([]byte, 32<<20)
	for i := range buf {
		buf[i] = 1
	}
	s := splitResident(os.Getpid())
	rss := residentBytes(os.Getpid())
	runtime.KeepAlive(buf)
	if s.Anon < 32<<20 {
		t.Errorf("anonymous memory %d MiB, want the 32 MiB this test holds", s.Anon>>20)
	}
	if s.Files == 0 {
		t.Error("no file-backed memory: the executable is missing")
	}
	if sum := s.Anon + s.Files; sum < rss/2 || sum > 2*rss {
		t.Errorf("split adds up to %d MiB, resident %d MiB", sum>>20, rss>>20)
	}
}
