package objstore

import (
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// bufferIdle is how long unused part buffers stay resident before their
// memory is returned to the system.
const bufferIdle = time.Minute

// bufferPool recycles part buffers. Up to keep buffers are mapped outside
// the Go heap: a streamed upload reuses the same Concurrency+1 buffers
// (sync.Pool would strand some in per-P caches and allocate more), and the
// GC's heap goal is not doubled by tens of MiB of long-lived buffers, which
// keeps a 1 GiB upload near (Concurrency+1)*PartSize of RSS. Buffers beyond
// keep, needed only by concurrent Puts, come from the heap and are dropped.
// Mapped buffers are never unmapped (the HTTP transport may still be
// reading a body after a request returns); when idle they are madvised away.
type bufferPool struct {
	size   int
	keep   int
	free   chan *[]byte
	mu     sync.Mutex
	mapped map[*[]byte]bool
	idle   *time.Timer
}

func newBufferPool(size, keep int) *bufferPool {
	return &bufferPool{size: size, keep: keep, free: make(chan *[]byte, keep), mapped: map[*[]byte]bool{}}
}

func (p *bufferPool) get() *[]byte {
	select {
	case b := <-p.free:
		return b
	default:
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.mapped) < p.keep {
		if b, err := unix.Mmap(-1, 0, p.size, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_ANON|unix.MAP_PRIVATE); err == nil {
			p.mapped[&b] = true
			return &b
		}
	}
	b := make([]byte, p.size)
	return &b
}

func (p *bufferPool) put(b *[]byte) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.mapped[b] {
		return // a heap buffer: let the GC have it
	}
	p.free <- b // never blocks: at most keep buffers are mapped
	if p.idle == nil {
		p.idle = time.AfterFunc(bufferIdle, p.release)
	} else {
		p.idle.Reset(bufferIdle)
	}
}

// release returns the memory of idle buffers to the system; they stay
// mapped and read as zeros until written again.
func (p *bufferPool) release() {
	for range len(p.free) {
		select {
		case b := <-p.free:
			_ = unix.Madvise(*b, unix.MADV_DONTNEED)
			p.free <- b
		default:
			return
		}
	}
}
