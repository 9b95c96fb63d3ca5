// Command box is the program inside the test images (built FROM scratch):
//
//	box run [--ignore-term] [--log FILE]  run until SIGTERM (or forever), appending "start" and "stop" lines with times to FILE
//	box echo WORDS...                      print WORDS to stdout and "err" to stderr
//	box write FILE TEXT                    write TEXT into FILE
//	box exit N                             exit with status N
//	box id                                 print the user id
//	box get URL                            exit 0 when URL answers 200 (a HEALTHCHECK)
//
// Installed as /bin/sh too, `sh -c "box CMD ARGS"` runs CMD ARGS split at
// spaces, so command labels run in images without a shell.
package main

import (
	"fmt"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "box: want run, echo, write, exit or id")
		os.Exit(2)
	}
	args := os.Args[1:]
	if filepath.Base(os.Args[0]) == "sh" && len(args) == 2 && args[0] == "-c" {
		args = strings.Fields(args[1])
		if len(args) > 0 && filepath.Base(args[0]) == "box" {
			args = args[1:]
		}
	}
	if len(args) == 0 {
		os.Exit(2)
	}
	switch cmd, args := args[0], args[1:]; cmd {
	case "run":
		run(args)
	case "echo":
		fmt.Println(strings.Join(args, " "))
		fmt.Fprintln(os.Stderr, "err")
	case "write":
		if err := os.WriteFile(args[0], []byte(strings.Join(args[1:], " ")), 0o644); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
	case "exit":
		n, _ := strconv.Atoi(args[0])
		os.Exit(n)
	case "id":
		fmt.Println(os.Getuid())
	case "get":
		resp, err := http.Get(args[0])
		if err != nil || resp.StatusCode != http.StatusOK {
			os.Exit(1)
		}
	default:
		fmt.Fprintf(os.Stderr, "box: unknown command %q\n", cmd)
		os.Exit(127)
	}
}

func run(args []string) {
	ignore, logFile := false, ""
	for i := 0; i < len(args); i++ {
		switch args[i] {
		case "--ignore-term":
			ignore = true
		case "--log":
			i++
			logFile = args[i]
		}
	}
	note := func(what string) {
		if logFile == "" {
			return
		}
		f, err := os.OpenFile(logFile, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
		if err == nil {
			fmt.Fprintf(f, "%s %s %s\n", what, os.Getenv("HOSTNAME"), time.Now().UTC().Format(time.RFC3339Nano))
			f.Close()
		}
	}
	note("start")
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
	for range sig {
		if !ignore {
			note("stop")
			return
		}
	}
}
