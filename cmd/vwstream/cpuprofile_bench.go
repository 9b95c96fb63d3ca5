//go:build vwstreambench

// Built only with -tags vwstreambench (bench/coldstart's profiling runs): a CPU
// profile of the first VWSTREAM_BENCH_CPUPROFILE_SECONDS (default 10) of the
// process, written to VWSTREAM_BENCH_CPUPROFILE. A release build has no such hook.

package main

import (
	"fmt"
	"os"
	"runtime/pprof"
	"strconv"
	"time"
)

func init() {
	path := os.Getenv("VWSTREAM_BENCH_CPUPROFILE")
	if path == "" {
		return
	}
	secs, err := strconv.Atoi(os.Getenv("VWSTREAM_BENCH_CPUPROFILE_SECONDS"))
	if err != nil || secs <= 0 {
		secs = 10
	}
	f, err := os.Create(path)
	if err != nil {
		fmt.Fprintf(os.Stderr, "vwstream: cpu profile: %v\n", err)
		return
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		fmt.Fprintf(os.Stderr, "vwstream: cpu profile: %v\n", err)
		_ = f.Close()
		return
	}
	go func() {
		time.Sleep(time.Duration(secs) * time.Second)
		pprof.StopCPUProfile()
		_ = f.Close()
	}()
}
