package node

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"testing"
)

func TestSameHost(t *testing.T) {
	local := &net.TCPAddr{IP: net.ParseIP("10.0.0.5"), Port: 8081}
	for _, tc := range []struct {
		remote string
		want   bool
	}{
		{"127.0.0.1:40000", true},
		{"[::1]:40000", true},
		{"10.0.0.5:40000", true}, // this host, through the interface STATUS_ADDR is bound to
		{"10.0.0.6:40000", false},
		{"garbage", false},
	} {
		r := httptest.NewRequest(http.MethodPost, "/promote", nil)
		r.RemoteAddr = tc.remote
		r = r.WithContext(context.WithValue(r.Context(), http.LocalAddrContextKey, net.Addr(local)))
		if got := sameHost(r); got != tc.want {
			t.Errorf("sameHost(%s) = %t, want %t", tc.remote, got, tc.want)
		}
	}
}
