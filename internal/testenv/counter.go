package testenv

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
)

// Counter is a reverse proxy in front of the S3 test server that counts the
// requests passing through it by kind (GET, PUT, HEAD, DELETE, LIST), for the
// benchmarks' request figures. SigV4 signs the Host header, which the proxy
// passes on unchanged.
type Counter struct {
	URL string // point the client under test here
	mu  sync.Mutex
	n   Counts
}

// Counts are requests by kind.
type Counts map[string]int

// NewCounter starts a counting proxy to target for the length of the test.
func NewCounter(t testing.TB, target string) *Counter {
	t.Helper()
	u, err := url.Parse(target)
	if err != nil {
		t.Fatal(err)
	}
	rp := httputil.NewSingleHostReverseProxy(u)
	c := &Counter{n: Counts{}}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		kind := r.Method
		if r.Method == http.MethodGet && r.URL.Query().Has("list-type") {
			kind = "LIST"
		}
		c.mu.Lock()
		c.n[kind]++
		c.mu.Unlock()
		rp.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	c.URL = srv.URL
	return c
}

// Take returns the counts since the last Take and resets them.
func (c *Counter) Take() Counts {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := c.n
	c.n = Counts{}
	return n
}

// Total is the number of requests of every kind.
func (n Counts) Total() int {
	s := 0
	for _, v := range n {
		s += v
	}
	return s
}

// String renders "12 (GET 2, PUT 10)".
func (n Counts) String() string {
	var parts []string
	for _, k := range slices.Sorted(func(yield func(string) bool) {
		for k := range n {
			if !yield(k) {
				return
			}
		}
	}) {
		parts = append(parts, fmt.Sprintf("%s %d", k, n[k]))
	}
	return fmt.Sprintf("%d (%s)", n.Total(), strings.Join(parts, ", "))
}
