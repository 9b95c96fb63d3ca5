package coldstart_test

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// cpu is the CPU time (user + system) one timed cold start cost each part of
// the rig: the side's own processes, the S3 server and this test process (the
// latency proxy, when there is one, and the /alive polling).
type cpu struct {
	client, server, rig time.Duration
}

// meter measures the server's and this process's CPU over one cold start.
type meter struct {
	b           *bench
	server, rig time.Duration
}

func (b *bench) meter() meter {
	return meter{b: b, server: procCPU(b.serverPID), rig: selfCPU()}
}

// end returns the server's and the rig's CPU since meter; the caller adds
// the client's from its processes' rusage.
func (m meter) end() cpu {
	return cpu{server: procCPU(m.b.serverPID) - m.server, rig: selfCPU() - m.rig}
}

func selfCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// clockTick is USER_HZ, the unit of /proc/<pid>/stat's times (100 on Linux
// everywhere this runs).
const clockTick = 100

// procCPU reads utime + stime of pid from /proc/<pid>/stat; 0 when unknown.
func procCPU(pid int) time.Duration {
	if pid == 0 {
		return 0
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	// The command name (field 2) may hold spaces: fields count from after its ")".
	i := strings.LastIndexByte(string(b), ')')
	if i < 0 {
		return 0
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 13 {
		return 0
	}
	utime, _ := strconv.ParseInt(f[11], 10, 64)
	stime, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(utime+stime) * time.Second / clockTick
}

// serverPID finds the versitygw process listening at endpoint (started by
// scripts/test): a process whose command line names versitygw and the port.
func serverPID(endpoint string) int {
	_, port, ok := strings.Cut(strings.TrimPrefix(endpoint, "http://"), ":")
	if !ok {
		return 0
	}
	port = strings.TrimSuffix(port, "/")
	dirs, _ := filepath.Glob("/proc/[0-9]*")
	for _, d := range dirs {
		b, err := os.ReadFile(filepath.Join(d, "cmdline"))
		if err != nil {
			continue
		}
		args := strings.Split(string(b), "\x00")
		if len(args) == 0 || filepath.Base(args[0]) != "versitygw" {
			continue
		}
		if slices.ContainsFunc(args, func(a string) bool { return strings.HasSuffix(a, ":"+port) }) {
			pid, _ := strconv.Atoi(filepath.Base(d))
			return pid
		}
	}
	return 0
}

// medianCPU is the median of each part over runs.
func medianCPU(c []cpu) cpu {
	pick := func(f func(cpu) time.Duration) time.Duration {
		var d []time.Duration
		for _, x := range c {
			d = append(d, f(x))
		}
		return median(d)
	}
	return cpu{client: pick(func(x cpu) time.Duration { return x.client }),
		server: pick(func(x cpu) time.Duration { return x.server }),
		rig:    pick(func(x cpu) time.Duration { return x.rig })}
}

func (c cpu) String() string {
	return fmt.Sprintf("%.2f / %.2f / %.2f s", c.client.Seconds(), c.server.Seconds(), c.rig.Seconds())
}

func cpuList(c []cpu) string {
	var parts []string
	for _, x := range c {
		parts = append(parts, fmt.Sprintf("%.2f+%.2f+%.2f", x.client.Seconds(), x.server.Seconds(), x.rig.Seconds()))
	}
	return strings.Join(parts, ", ")
}
