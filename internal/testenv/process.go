package testenv

import (
	"os"
	"syscall"
	"time"
)

// CPUTime is what an exited process used, user plus system time, with the
// children it waited for; 0 for nil.
func CPUTime(ps *os.ProcessState) time.Duration {
	if ps == nil {
		return 0
	}
	return ps.UserTime() + ps.SystemTime()
}

// MaxRSS is an exited process's peak resident set in bytes; 0 when unknown.
func MaxRSS(ps *os.ProcessState) int64 {
	if ps == nil {
		return 0
	}
	if ru, ok := ps.SysUsage().(*syscall.Rusage); ok {
		return ru.Maxrss * 1024
	}
	return 0
}
