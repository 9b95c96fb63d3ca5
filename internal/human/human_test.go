package human

import (
	"testing"
	"time"
)

func TestBytes(t *testing.T) {
	for n, want := range map[int64]string{0: "0 B", 1023: "1023 B", 1024: "1.0 KiB", 1536: "1.5 KiB",
		96 << 20: "96.0 MiB", 1043<<20 + 700<<10: "1.0 GiB", 3 << 40: "3.0 TiB"} {
		if got := Bytes(n); got != want {
			t.Errorf("Bytes(%d) = %q, want %q", n, got, want)
		}
	}
}

func TestDuration(t *testing.T) {
	for d, want := range map[time.Duration]string{
		1500 * time.Millisecond: "1.5s", 1549 * time.Millisecond: "1.5s", 45 * time.Second: "45s",
		90 * time.Second: "1m30s", 10 * time.Minute: "10m", 10*time.Minute + 400*time.Millisecond: "10m",
		48 * time.Hour: "48h", 25*time.Hour + 30*time.Minute: "25h30m", 250 * time.Millisecond: "250ms",
	} {
		if got := Duration(d); got != want {
			t.Errorf("Duration(%s) = %q, want %q", d, got, want)
		}
	}
}
