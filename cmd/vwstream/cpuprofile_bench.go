//go:build vwstreambench

// Built only with -tags vwstreambench (bench/coldstart's profiling runs): a CPU
// profile from the process start to SIGTERM, the command's return or
// VWSTREAM_BENCH_CPUPROFILE_SECONDS (default 60), whichever comes first, written to VWSTREAM_BENCH_CPUPROFILE, and
// with VWSTREAM_BENCH_TRACE=1 an execution trace beside it (<profile>.trace:
// `go tool trace -pprof=sync|syscall|net|sched` shows where a cold start waits).
// A release build has no such hook.

package main

import (
	"fmt"
	"os"
	"os/signal"
	"runtime/pprof"
	"runtime/trace"
	"strconv"
	"sync"
	"syscall"
	"time"
)

func init() {
	path := os.Getenv("VWSTREAM_BENCH_CPUPROFILE")
	if path == "" {
		return
	}
	secs, err := strconv.Atoi(os.Getenv("VWSTREAM_BENCH_CPUPROFILE_SECONDS"))
	if err != nil || secs <= 0 {
		secs = 60
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
	var tf *os.File
	if os.Getenv("VWSTREAM_BENCH_TRACE") == "1" {
		if tf, err = os.Create(path + ".trace"); err == nil {
			err = trace.Start(tf)
		}
		if err != nil {
			fmt.Fprintf(os.Stderr, "vwstream: trace: %v\n", err)
			tf = nil
		}
	}
	// main's own handler sees the signal too and shuts down; its shutdown
	// (the child stopped, a final flush) outlasts writing the profile.
	term := make(chan os.Signal, 1)
	signal.Notify(term, syscall.SIGTERM, os.Interrupt)
	var once sync.Once
	end := func() {
		once.Do(func() {
			pprof.StopCPUProfile()
			_ = f.Close()
			if tf != nil {
				trace.Stop()
				_ = tf.Close()
			}
		})
	}
	beforeExit = end // a command that returns by itself (backup, restore)
	go func() {
		select {
		case <-term:
		case <-time.After(time.Duration(secs) * time.Second):
		}
		end()
	}()
}
