package seal_test

import (
	"bytes"
	"io"
	"testing"

	"github.com/vwstream/vwstream/internal/objstore"
	"github.com/vwstream/vwstream/internal/objstore/storetest"
	"github.com/vwstream/vwstream/internal/seal"
)

const benchSize = 64 << 20

// BenchmarkKey_Encrypt measures sealing throughput (MB/s) on a 64 MiB object.
func BenchmarkKey_Encrypt(b *testing.B) {
	k := mustKey(b)
	plain := randomBytes(b, benchSize)
	b.SetBytes(benchSize)
	for b.Loop() {
		w, err := k.Encrypt(io.Discard, "files/x")
		if err != nil {
			b.Fatal(err)
		}
		if _, err := w.Write(plain); err != nil {
			b.Fatal(err)
		}
		if err := w.Close(); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkKey_Decrypt measures opening throughput (MB/s) on a 64 MiB object.
func BenchmarkKey_Decrypt(b *testing.B) {
	k := mustKey(b)
	sealed := sealBytes(b, k, randomBytes(b, benchSize))
	b.SetBytes(benchSize)
	for b.Loop() {
		r, err := k.Decrypt(bytes.NewReader(sealed), "files/x")
		if err != nil {
			b.Fatal(err)
		}
		if _, err := io.Copy(io.Discard, r); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkStore_GetRange measures a 1 MiB ranged read from a 64 MiB sealed
// object: Stat, header, final chunk and span requests included.
func BenchmarkStore_GetRange(b *testing.B) {
	for _, be := range backends[1:] { // local folder and S3
		b.Run(be.name, func(b *testing.B) {
			inner := storetest.NewCounting(be.open(b))
			s := seal.NewStore(inner, mustKey(b))
			if _, err := s.Put(b.Context(), "db/big", bytes.NewReader(randomBytes(b, benchSize)), objstore.PutOptions{}); err != nil {
				b.Fatal(err)
			}
			_, _ = takeGetsStats(inner)
			b.SetBytes(1 << 20)
			for b.Loop() {
				rc, err := s.Get(b.Context(), "db/big", 30<<20+12345, 1<<20)
				if err != nil {
					b.Fatal(err)
				}
				if _, err := io.Copy(io.Discard, rc); err != nil {
					b.Fatal(err)
				}
				rc.Close()
			}
			gets, stats := takeGetsStats(inner)
			b.ReportMetric(float64(gets+stats)/float64(b.N), "requests/op")
		})
	}
}
